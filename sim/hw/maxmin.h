// Max-min fair sharing of link bandwidth among flows (progressive filling /
// water-filling, as in SimGrid's lmm solver), with optional per-flow rate caps.
//
// The allocation is the unique one in which every flow has a bottleneck: a
// saturated link on which no other flow gets more, or its own cap.
// Algorithm: repeatedly take the link with the smallest fair share
// remaining_capacity / unfixed_flows (ties: lower link index), or the smallest
// cap if it is lower; fix those flows at that rate and subtract them from the
// other links on their routes. Cost O((F*k + L) log L) for F flows of k links
// on L links; deterministic (no hashing, ties by index).
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace moesim {

inline constexpr double kNoRateCap = std::numeric_limits<double>::infinity();

// Flow f uses links flow_links[flow_offsets[f] .. flow_offsets[f+1]).
struct MaxMinProblem {
  std::span<const double> capacity;             // per link, > 0
  std::span<const std::uint32_t> flow_offsets;  // size F + 1
  std::span<const std::uint32_t> flow_links;    // link indices
  std::span<const double> rate_cap;             // empty, or per flow (kNoRateCap = none)
};

// Reusable solver (keeps its scratch buffers between calls).
class MaxMinSolver {
 public:
  // Writes one rate per flow into rates (size F). A flow with no links gets its
  // cap (kNoRateCap when it has none).
  void solve(const MaxMinProblem& p, std::span<double> rates);
  // For each flow of the last solve, what fixed its rate: the index of the link
  // it saturated with the others there, or kFixedByCap (its cap; also for a flow
  // without links).
  [[nodiscard]] std::span<const std::uint32_t> fixed_by() const { return fixed_by_; }
  static constexpr std::uint32_t kFixedByCap = 0xffffffffu;

 private:
  struct HeapEntry {
    double share;
    std::uint32_t link;
    std::uint32_t stamp;
  };
  struct CapEntry {
    double cap;
    std::uint32_t flow;
  };
  std::vector<double> remaining_;
  std::vector<std::uint32_t> count_;
  std::vector<std::uint32_t> stamp_;
  std::vector<std::uint32_t> link_begin_;
  std::vector<std::uint32_t> cursor_;
  std::vector<std::uint32_t> link_flows_;
  std::vector<std::uint8_t> fixed_;
  std::vector<std::uint32_t> fixed_by_;
  std::vector<CapEntry> caps_;
  std::vector<HeapEntry> heap_;
  std::vector<double> share_;
  std::vector<std::uint32_t> active_;      // scan mode: links with unfixed flows
  std::vector<double> active_share_;       // their shares, parallel to active_
  std::vector<std::uint32_t> active_pos_;  // link -> index in active_
  // Up to this many links the bottleneck is found by scanning (see maxmin.cc).
  static constexpr std::size_t kScanLimit = 512;
  // Up to this many capped flows the smallest cap is found by scanning.
  static constexpr std::size_t kCapScanLimit = 64;
};

// Pure function form: the max-min fair rates of the problem's flows.
[[nodiscard]] std::vector<double> max_min_rates(const MaxMinProblem& p);

}  // namespace moesim
