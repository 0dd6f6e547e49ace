// The one event queue of a simulation: events ordered by (time, 64-bit
// insertion sequence), so events at equal times pop in insertion order.
//
// Layout (chosen for speed, see tools/bench/README.md):
//   - a 4-ary min-heap of 24-byte POD records {time, seq, slot};
//   - callbacks and tags live in a slab (vector) indexed by slot, so sifting
//     moves 24-byte records, never std::function objects;
//   - cancellation is lazy: cancel() frees the slot at once (the callback is
//     destroyed) and the heap record becomes stale; a stale record is recognised
//     because its seq no longer matches the slot's seq, and is dropped when it
//     reaches the top.
// Complexity: push O(log4 n), pop O(4 log4 n) comparisons, cancel O(1).
// Memory: 24 B per heap record (live or stale) + one slot per live event.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "sim/core/time.h"

namespace moesim {

// Handle to a scheduled event. seq is unique over the queue's lifetime (never 0).
struct EventId {
  std::uint64_t seq = 0;
  std::uint32_t slot = 0;
  friend constexpr bool operator==(EventId, EventId) = default;
};

// What an event is, for observers (fingerprints, traces): a kind chosen by the
// component that scheduled it and the id of the entity it concerns.
struct EventTag {
  std::uint32_t kind = 0;
  std::uint64_t entity = 0;
};

class EventQueue {
 public:
  using Callback = std::function<void()>;

  // Schedules cb at time t. Never fails; the caller checks t against its clock.
  EventId push(Time t, Callback cb, EventTag tag = {});
  // Cancels a pending event. Returns false when it already ran or was cancelled.
  bool cancel(EventId id);
  // True when the event is still pending.
  [[nodiscard]] bool pending(EventId id) const;

  // Number of live (not cancelled) pending events.
  [[nodiscard]] std::size_t size() const { return live_; }
  [[nodiscard]] bool empty() const { return live_ == 0; }
  // Heap records including stale (cancelled) ones.
  [[nodiscard]] std::size_t heap_size() const { return heap_.size(); }

  // Time of the earliest live event; kTimeMax when empty. Drops stale records.
  [[nodiscard]] Time next_time();

  struct Popped {
    Time time;
    std::uint64_t seq = 0;
    EventTag tag;
    Callback cb;
  };
  // Removes the earliest live event if its time is <= until; returns false
  // (and leaves out untouched) otherwise or when empty.
  bool pop_until(Time until, Popped& out);

 private:
  struct Entry {
    std::int64_t t;
    std::uint64_t seq;
    std::uint32_t slot;
  };
  struct Slot {
    Callback cb;
    std::uint64_t seq = 0;  // 0: free
    EventTag tag;
  };
  static bool before(const Entry& a, const Entry& b) { return a.t < b.t || (a.t == b.t && a.seq < b.seq); }
  void sift_up(std::size_t i);
  void sift_down(std::size_t i);
  void pop_top();
  void drop_stale();

  std::vector<Entry> heap_;
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_;
  std::uint64_t next_seq_ = 1;
  std::size_t live_ = 0;
};

}  // namespace moesim
