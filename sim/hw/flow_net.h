// Fluid flows over a Topology, sharing link bandwidth max-min fairly.
//
// A flow first waits its route's latency (no bandwidth used), then joins the
// shared phase; it completes when its bytes have drained at its current rate.
// Events happen only at flow boundaries, never per packet:
//   - activations at the same instant are batched into one rate solve (one
//     event scheduled at that instant, after the activations);
//   - at a completion the finished flows leave their links; the old rates stay
//     if every flow on those links still has a bottleneck (a saturated link on
//     which no flow gets more, or its own cap), which by the bottleneck theorem
//     means they are still the max-min allocation. Only links that were
//     saturated can have been someone's bottleneck, and only flows at such a
//     link's largest rate can have lost it: those are checked (per-link flows,
//     rates and exact largest rate in a LinkFlowIndex). Otherwise a local
//     repair: the flows without a bottleneck form a set, grown at once by the
//     faster flows on saturated links that hold them back; the set is re-solved
//     on the capacity the others leave (a small MaxMinSolver problem; a link
//     only one set flow crosses enters as that flow's cap), the bottleneck
//     condition is checked again on the links whose saturation or largest rate
//     changed and on the constraint that fixed each set flow, and flows that
//     fail it (with the faster flows on their links) join the set until it
//     holds -- the result is exactly the max-min allocation (up to rounding:
//     tests and links compare with a relative tolerance of 1e-9, and a new
//     rate within 1e-12 of the old one is not applied). A set beyond half of
//     the active flows falls back to a full solve (MaxMinSolver,
//     O(F*k + L*steps)). Only flows whose rate changed get their remaining
//     bytes advanced and, once per completion instant, a new predicted finish;
//   - one simulator event is kept for the earliest predicted finish
//     (a 4-ary indexed heap of predicted finishes, updated in place).
// Finish times are rounded up to the picosecond (a flow never ends early).
// The FlowNetwork must outlive the events it schedules (it captures `this`).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "sim/core/ids.h"
#include "sim/core/simulator.h"
#include "sim/hw/indexed_heap.h"
#include "sim/hw/link_flow_index.h"
#include "sim/hw/maxmin.h"
#include "sim/hw/topology.h"

namespace moesim {

using FlowId = Id<struct FlowTag>;

// Event kinds this module schedules (EventTag::kind); entity = flow slot.
inline constexpr std::uint32_t kEventFlowActivate = 0x100;
inline constexpr std::uint32_t kEventFlowComplete = 0x101;
inline constexpr std::uint32_t kEventRateSolve = 0x102;

class FlowNetwork {
 public:
  // Called with the flow's completion time.
  using DoneCallback = std::function<void(Time)>;
  struct Stats {
    std::uint64_t started = 0;
    std::uint64_t finished = 0;
    std::uint64_t solves = 0;                  // full max-min solves
    std::uint64_t completions_kept_rates = 0;  // completion instants that needed no solve
    std::uint64_t repairs = 0;                 // completion instants settled by a local repair
    std::uint64_t repair_rounds = 0;           // sub-problem solves of the repairs
    std::uint64_t repair_flows = 0;            // flows in those sub-problems, summed
    std::uint64_t rate_changes = 0;            // flows given a new rate (solves and repairs)
  };
  struct Options {
    bool local_repair = true;  // false: a full solve whenever the old rates are not max-min
  };
  static constexpr std::size_t kMaxHops = LinkFlowIndex::kMaxHops;
  // Relative tolerance of the "saturated" and "largest rate" tests.
  static constexpr double kRelTol = 1e-9;
  // Relative rate change below which a re-solved flow keeps its rate (rounding noise).
  static constexpr double kRateNoise = 1e-12;

  FlowNetwork(Simulator& sim, const Topology& topo);
  FlowNetwork(Simulator& sim, const Topology& topo, Options options);
  FlowNetwork(const FlowNetwork&) = delete;
  FlowNetwork& operator=(const FlowNetwork&) = delete;

  // Starts a transfer of `size` bytes from src to dst now. on_done(finish time)
  // runs when the last byte arrives. rate_cap (bytes/s) limits the flow's rate.
  // The id is valid until on_done runs (ids are reused afterwards).
  FlowId start(NodeId src, NodeId dst, Bytes size, DoneCallback on_done, double rate_cap = kNoRateCap);
  FlowId start(GpuId src, GpuId dst, Bytes size, DoneCallback on_done, double rate_cap = kNoRateCap) {
    return start(topo_.gpu(src), topo_.gpu(dst), size, std::move(on_done), rate_cap);
  }

  // Makes room for `more` flows beyond those under way (avoids regrowing the per-flow arrays).
  void reserve(std::size_t more);

  // Current rate in bytes/s of a flow in its shared phase; 0 while in its latency phase.
  [[nodiscard]] double rate(FlowId id) const;
  // Flows in their shared phase.
  [[nodiscard]] std::size_t active_flows() const { return active_.size(); }
  [[nodiscard]] const Stats& stats() const { return stats_; }
  [[nodiscard]] const Topology& topology() const { return topo_; }
  [[nodiscard]] Simulator& simulator() const { return sim_; }

 private:
  enum class State : std::uint8_t { kFree, kLatency, kActive };
  struct Flow {
    std::span<const LinkId> route;
    double remaining = 0;  // bytes left at t_last
    double rate = 0;       // bytes/s
    double cap = kNoRateCap;
    std::int64_t t_last = 0;
    std::uint32_t active_index = 0;
    State state = State::kFree;
    bool changed = false;  // its rate changed in the repair under way (in changed_)
  };

  void activate(std::uint32_t slot);
  void solve_event();
  void completion_event();
  void solve();
  void advance(Flow& f, std::int64_t now) const;
  void predict(std::uint32_t slot, std::int64_t now);
  // Gives a flow a new rate (advancing its bytes first); false, changing nothing,
  // when r is within rounding (kRateNoise) of its current rate.
  bool set_rate(std::uint32_t slot, double r, std::int64_t now);
  // Predicts the finish of every flow in changed_ and empties it.
  void predict_changed(std::int64_t now);
  void remove_from_links(std::uint32_t slot);
  // Re-solves the flows in set_ (marked in in_set_) on residual capacities until
  // every flow on the links they cross has a bottleneck; may fall back to solve().
  void repair();
  void add_to_set(std::uint32_t slot);
  // Adds to the set the flows on link l faster than rate.
  void add_faster(std::uint32_t l, double rate);
  void clear_set();
  [[nodiscard]] bool has_bottleneck(const Flow& f);
  [[nodiscard]] bool saturated(std::uint32_t l) const { return links_.used(l) >= capacity_[l] * (1 - kRelTol); }
  // Adds to the set the flows on link l that are not in it, run at least `threshold` and have no bottleneck.
  void check_link(std::uint32_t l, double threshold);
  void schedule_next();
  std::uint32_t alloc_slot();

  Simulator& sim_;
  const Topology& topo_;
  std::vector<double> capacity_;  // per link, bytes/s
  LinkFlowIndex links_;           // per link: active flows, their rates, sum and largest rate
  std::vector<Flow> flows_;
  std::vector<DoneCallback> on_done_;  // per flow slot (apart: the hot loops read flows_)
  std::vector<std::uint32_t> free_;
  std::vector<std::uint32_t> active_;
  IndexedMinHeap due_;  // flow slot -> predicted finish (ps)
  EventId next_event_{};
  std::int64_t next_event_time_ = -1;
  bool solve_pending_ = false;
  MaxMinSolver solver_;
  // Scratch for solves and completions.
  std::vector<std::uint32_t> offsets_;
  std::vector<std::uint32_t> flat_links_;
  std::vector<double> caps_;
  std::vector<double> rates_;
  std::vector<std::uint32_t> touched_;  // links that lost flows at this completion
  std::vector<std::uint8_t> touched_mark_;
  std::vector<double> touched_max_;       // per touched link: its largest rate before the flows left
  std::vector<std::uint32_t> changed_;    // flows whose rate a repair changed (Flow::changed)
  std::vector<std::uint32_t> set_;        // flows being repaired
  std::vector<std::uint8_t> in_set_;      // per flow slot
  std::vector<std::int32_t> link_local_;  // per link: index in the repair sub-problem, -1 if none
  std::vector<double> set_max_;           // per link: largest rate of the set's flows (scratch, kept 0)
  std::vector<std::uint32_t> sub_links_;
  std::vector<double> sub_capacity_;
  std::vector<double> sub_old_max_;          // per sub-problem link: its largest rate before the re-solve
  std::vector<std::uint32_t> sub_count_;     // per sub-problem link: set flows on it, then its solver index
  std::vector<double> solver_capacity_;      // capacities of the sub-problem links given to the solver
  std::vector<std::uint32_t> solver_links_;  // the links given to the solver, by solver index
  std::vector<std::uint32_t> cap_link_;      // per set flow: the single-flow link that set its cap, or kNoLink
  static constexpr std::uint32_t kSingleFlowLink = 0xffffffffu;
  static constexpr std::uint32_t kNoLink = 0xffffffffu;
  Options options_;
  Stats stats_;
};

}  // namespace moesim
