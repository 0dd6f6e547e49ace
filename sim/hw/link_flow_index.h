// Per-link index of the active fluid flows (flow_net.h): which flows cross each
// link, at what rate, the sum of their rates and the largest rate.
//
// The rates are stored per link, contiguous and parallel to the flow entries,
// so the scans of the bottleneck checks read sequential memory instead of
// chasing flow records. A rate change writes the flow's copy on each of its k
// links (positions kept per flow and hop): O(k).
// Invariants (tests/unit/hw/link_flow_index_test.cc):
//   - rates(l)[i] is the rate of the flow entries(l)[i] crosses l with;
//   - max_rate(l) is exactly the largest rate on l (0 when empty): raised when
//     a flow goes above it; when a flow at the maximum slows down or leaves,
//     marked stale and recomputed by one sequential scan at the next query;
//   - used(l) is the sum of the rates on l up to rounding; recompute() sets it
//     (and the maxima) from the stored rates, removing the drift.
// Entries are flow * kMaxHops + hop, so flow ids must be below 2^29.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sim/core/ids.h"

namespace moesim {

class LinkFlowIndex {
 public:
  static constexpr std::uint32_t kHopBits = 3;
  static constexpr std::size_t kMaxHops = std::size_t{1} << kHopBits;

  explicit LinkFlowIndex(std::size_t links);

  // Adds a flow at `rate` on every link of its route (at most kMaxHops links, each once).
  void add(std::uint32_t flow, std::span<const LinkId> route, double rate);
  // Removes a flow that was added with this route and currently has `rate`.
  void remove(std::uint32_t flow, std::span<const LinkId> route, double rate);
  // Changes a flow's rate from old_rate (its current one) to new_rate.
  void set_rate(std::uint32_t flow, std::span<const LinkId> route, double old_rate, double new_rate);
  // Makes room for flow ids below n.
  void reserve_flows(std::size_t n) {
    if (pos_.size() < n * kMaxHops) pos_.resize(n * kMaxHops);
  }
  // Sets used() and max_rate() of every link from the stored rates.
  void recompute();

  // Flow entries on link l (flow_of(entry) is the flow), in no particular order, and their rates.
  [[nodiscard]] std::span<const std::uint32_t> entries(std::uint32_t l) const { return entries_[l]; }
  [[nodiscard]] std::span<const double> rates(std::uint32_t l) const { return rates_[l]; }
  [[nodiscard]] static std::uint32_t flow_of(std::uint32_t entry) { return entry >> kHopBits; }
  [[nodiscard]] double used(std::uint32_t l) const { return used_[l]; }
  // Exactly the largest rate on l; 0 when no flow crosses it.
  [[nodiscard]] double max_rate(std::uint32_t l) {
    if (stale_[l]) rescan(l);
    return max_[l];
  }
  [[nodiscard]] std::size_t link_count() const { return entries_.size(); }

 private:
  void rescan(std::uint32_t l);

  std::vector<std::vector<std::uint32_t>> entries_;  // per link: flow * kMaxHops + hop
  std::vector<std::vector<double>> rates_;           // per link, parallel to entries_
  std::vector<double> used_;
  std::vector<double> max_;  // exact, or an upper bound while stale_
  std::vector<std::uint8_t> stale_;
  std::vector<std::uint32_t> pos_;  // flow * kMaxHops + hop -> index in entries_[link]
};

}  // namespace moesim
