// The one event queue of a simulation: events ordered by (time, 64-bit
// insertion sequence), so events at equal times pop in insertion order.
//
// Structure: a radix heap (Ahuja, Mehlhorn, Orlin, Tarjan 1990) over the
// integer picosecond time, with hexadecimal digits. A discrete-event
// simulation is monotone (nothing is scheduled before the last event taken
// out), which is exactly what a radix heap needs; it beats comparison heaps
// here because
//   - push appends a 16-byte record {time, seq << 24 | slot} to bucket
//     16 * d + v, where d is the highest hex digit in which the time differs
//     from the current minimum and v its digit there (O(1), sequential memory;
//     a 256-bit mask marks the non-empty buckets);
//   - pop takes from bucket 0 (records whose time equals the current minimum)
//     in FIFO order; when it is empty, the lowest non-empty bucket (found in
//     the mask) is redistributed around its minimum time: its records move to
//     lower digits, at most 16 times in their life and in practice about
//     log16 of the spread of pending times (4 at 10k pending over 2^20 ps; a
//     binary radix heap moved each record about 13 times). Moves are
//     sequential scans: no dependent, cache-missing comparisons as in a
//     binary/4-ary heap (measured: the 4-ary heap managed 8 M events/s at 10k
//     pending). A bucket of one record (the common case) is taken directly.
//   - equal times leave in insertion order: a record's bucket is a function
//     of its time and the current minimum, so records of equal time always
//     sit in one bucket, in sequence order (pushes append increasing seqs;
//     moves scan a bucket in order);
//   - a push earlier than the bucket-0 time (possible after a peek, e.g. when
//     run(until) stopped before the next event) re-buckets every record: O(n),
//     rare.
// Callbacks live in a slab indexed by slot (chunks of 4096 cache-line slots,
// never moved), so the buckets move 16-byte records, never std::function
// objects; a callback is constructed in its slot and run in place.
// Cancellation is lazy: cancel() frees the slot at once (the callback is
// destroyed); the record becomes stale (its seq no longer matches the slot's)
// and is dropped when reached.
// Cost: push O(1); pop O(1) amortised + O(bucket) per redistribution; cancel O(1).
// Memory: 16 B per record (live or stale) + one slot per live event.
// Limits (checked): a push before the last popped event's time throws std::logic_error;
// at most 2^24 - 1 pending events (16.7 M) and 2^40 events over a queue's life
// (std::length_error).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
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

  // Schedules f (any void() callable, or a Callback) at time t (t >= 0 and not
  // before the last popped event's time).
  template <class F>
  EventId push(Time t, F&& f, EventTag tag = {}) {
    const std::uint32_t slot = claim(t, tag);
    ::new (static_cast<void*>(&slot_at(slot).cb)) Callback(std::forward<F>(f));
    return EventId{slot_at(slot).seq, slot};
  }
  // Cancels a pending event. Returns false when it already ran or was cancelled.
  bool cancel(EventId id);
  // True when the event is still pending.
  [[nodiscard]] bool pending(EventId id) const;

  // Number of live (not cancelled) pending events.
  [[nodiscard]] std::size_t size() const { return live_; }
  [[nodiscard]] bool empty() const { return live_ == 0; }
  // Records including stale (cancelled) ones not yet dropped.
  [[nodiscard]] std::size_t heap_size() const { return records_; }

  // Time of the earliest live event; kTimeMax when empty.
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

  // Runs the earliest live event if its time is <= until: calls
  // observe(time, tag), then the callback in place. Returns false, doing
  // nothing, otherwise. The callback may push and cancel events.
  template <class Observe>
  bool run_next(Time until, Observe&& observe) {
    if (!refill()) return false;
    const Entry e = buckets_[0][head0_];
    if (static_cast<std::int64_t>(e.t) > until.time_since_epoch().count()) return false;
    ++head0_;
    --records_;
    floor_ = e.t;
    const auto slot = static_cast<std::uint32_t>(e.lo & kSlotMask);
    Slot& s = slot_at(slot);
    s.seq = 0;  // no longer pending (cancel() of itself is a no-op)
    --live_;
    struct Release {  // frees the slot even if the callback throws
      EventQueue* q;
      Slot* s;
      std::uint32_t slot;
      ~Release() {
        s->cb.~Callback();
        q->free_.push_back(slot);
      }
    } release{this, &s, slot};
    observe(Time{Duration{static_cast<std::int64_t>(e.t)}}, s.tag);
    s.cb();
    return true;
  }

 private:
  struct Entry {
    std::uint64_t t;   // picoseconds (non-negative)
    std::uint64_t lo;  // seq << 24 | slot
  };
  // One cache line: the one memory access of a pop outside the buckets. cb is
  // constructed while the slot is in use and destroyed when it is freed.
  // Slots are left uninitialised until first claimed (a fresh chunk is not
  // touched, so a small simulation does not fault in 256 KB of slots); only
  // slots below slot_count_ are ever read.
  struct alignas(64) Slot {
    union {
      Callback cb;
    };
    std::uint64_t seq;  // 0: not pending (set when the slot is first claimed)
    union {
      EventTag tag;
    };
    Slot() {}
    ~Slot() {}
  };
  static_assert(std::is_trivially_copyable_v<EventTag> && std::is_trivially_destructible_v<EventTag>);
  static constexpr int kChunkBits = 12;
  using Chunk = std::unique_ptr<Slot[]>;

  Slot& slot_at(std::uint32_t i) { return chunks_[i >> kChunkBits][i & ((1u << kChunkBits) - 1)]; }
  const Slot& slot_at(std::uint32_t i) const { return chunks_[i >> kChunkBits][i & ((1u << kChunkBits) - 1)]; }
  // Takes a free slot, assigns the sequence number and files the record; the caller constructs cb.
  std::uint32_t claim(Time t, EventTag tag);
  static constexpr int kSlotBits = 24;
  static constexpr std::uint64_t kSlotMask = (std::uint64_t{1} << kSlotBits) - 1;

  [[nodiscard]] bool stale(const Entry& e) const {
    return slot_at(static_cast<std::uint32_t>(e.lo & kSlotMask)).seq != e.lo >> kSlotBits;
  }
  // Makes buckets_[0][head0_] the earliest live record; false when there is none.
  bool refill();
  // Re-buckets every record around a new, earlier minimum time t.
  void rebase(std::uint64_t t);

  // Files a record in bucket b (> 0: marked non-empty).
  void file(std::size_t b, const Entry& e) {
    buckets_[b].push_back(e);
    if (b != 0) nonempty_[b >> 6] |= std::uint64_t{1} << (b & 63);
  }
  static constexpr std::size_t kBuckets = 256;  // 0, then 16 * digit + value (value 1..15)
  static constexpr std::size_t kMaskWords = kBuckets / 64;
  std::array<std::vector<Entry>, kBuckets> buckets_;
  std::array<std::uint64_t, kMaskWords> nonempty_{};  // bit b: buckets_[b] has records (b > 0)
  std::size_t head0_ = 0;                             // next unread record of bucket 0
  std::uint64_t last_ = 0;                            // time of bucket 0 (the current minimum)
  std::uint64_t floor_ = 0;                           // time of the last popped event: pushes must not be earlier
  std::vector<Entry> scratch_;
  std::size_t records_ = 0;  // records in the buckets, stale included
  std::size_t stale_ = 0;    // cancelled records still in the buckets
  std::vector<Chunk> chunks_;
  std::uint32_t slot_count_ = 0;  // slots ever created
  std::vector<std::uint32_t> free_;
  std::uint64_t next_seq_ = 1;
  std::size_t live_ = 0;

 public:
  EventQueue() = default;
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;
  ~EventQueue();
};

}  // namespace moesim
