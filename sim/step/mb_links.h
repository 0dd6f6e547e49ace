// Internal to sim/step: the analytic network rule's contention between the two micro-batches of a step with
// two-batch overlap (TBO). Pure bookkeeping over integer picoseconds; the fast path (fast_path.cc) and the
// event engine (engine.cc) apply it identically.
//
// A collective c of micro-batch m starts at S_c, when its last source sends, and loads each link l of its routes
// for b_l = bytes_l / bandwidth_l. While the other micro-batch's last collective c' still holds a link (it ends
// there at e'_l > S_c), the two share it (processor sharing, as max-min flows would): c ends on l at
// S_c + b_l + min(e'_l - S_c, b_l) and c' is held longer there by the same min(e'_l - S_c, b_l). A collective's
// delay is how much later its last link ends than without the other micro-batch; a delivery of c that would
// arrive at a > S_c arrives that much later. c' gets a delay event at threshold S_c: its deliveries still due
// after S_c are later by how much its own last link end moved. Collectives of one micro-batch do not hold links
// against each other (their order is set by data). One micro-batch: no events, no change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace moesim::step_detail {

using LinkBusy = std::vector<std::pair<std::uint32_t, std::int64_t>>;  // (link, busy ps) of one collective

struct DelayEvent {
  std::int64_t threshold = 0;  // deliveries due after this time ...
  std::int64_t delay = 0;      // ... are this much later
};

class MicroBatchLinks {
 public:
  void reset(std::size_t links, std::size_t comms);
  // Collective c of micro-batch mb (0 or 1) starts at s with link loads `busy` (which must outlive the run).
  void reserve(std::size_t c, int mb, std::int64_t s, const LinkBusy& busy);
  [[nodiscard]] const std::vector<DelayEvent>& events(std::size_t c) const { return events_[c]; }
  // When a delivery of c that would arrive at `a` without the other micro-batch arrives.
  [[nodiscard]] std::int64_t arrival(std::size_t c, std::int64_t a) const {
    for (const DelayEvent& e : events_[c]) a += a > e.threshold ? e.delay : 0;
    return a;
  }

 private:
  static constexpr std::size_t kNone = ~std::size_t{0};
  std::vector<std::int64_t> load_;       // scratch per link: the reserving collective's busy time
  std::vector<std::int64_t> shared_;     // scratch per link: its overlap with the other's last collective
  const LinkBusy* last_[2] = {nullptr, nullptr};
  std::vector<std::int64_t> last_end_[2];  // per link of last_[m]: where that collective ends now
  std::size_t last_comm_[2] = {kNone, kNone};
  std::vector<std::vector<DelayEvent>> events_;
};

}  // namespace moesim::step_detail
