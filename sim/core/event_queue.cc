#include "sim/core/event_queue.h"

#include <bit>
#include <stdexcept>
#include <string>
#include <utility>

namespace moesim {
namespace {

// Bucket of a time relative to the current minimum: 0 when equal, else the
// position of the highest differing bit + 1 (1..64).
inline std::size_t bucket_of(std::uint64_t t, std::uint64_t last) {
  return static_cast<std::size_t>(std::bit_width(t ^ last));
}

}  // namespace

std::uint32_t EventQueue::claim(Time t, EventTag tag) {
  const std::int64_t ps = t.time_since_epoch().count();
  if (ps < 0 || static_cast<std::uint64_t>(ps) < floor_) {
    throw std::logic_error("EventQueue::push: time " + std::to_string(ps) +
                           " ps is before the last event taken out (" + std::to_string(floor_) + " ps)");
  }
  if (next_seq_ >> (64 - kSlotBits)) throw std::length_error("EventQueue: more than 2^40 events scheduled");
  std::uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    if (slot_count_ >= kSlotMask) throw std::length_error("EventQueue: more than 2^24 - 1 pending events");
    slot = slot_count_++;
    if ((slot >> kChunkBits) >= chunks_.size()) chunks_.push_back(std::make_unique<Slot[]>(std::size_t{1} << kChunkBits));
  }
  const auto ut = static_cast<std::uint64_t>(ps);
  if (ut < last_) rebase(ut);
  const std::uint64_t seq = next_seq_++;
  Slot& s = slot_at(slot);
  s.seq = seq;
  s.tag = tag;
  buckets_[bucket_of(ut, last_)].push_back(Entry{ut, seq << kSlotBits | slot});
  ++records_;
  ++live_;
  return slot;
}

EventQueue::~EventQueue() {
  // Destroy the callbacks of pending events (free and running slots hold none).
  for (std::uint32_t i = 0; i < slot_count_; ++i) {
    Slot& s = slot_at(i);
    if (s.seq != 0) s.cb.~Callback();
  }
}

bool EventQueue::pending(EventId id) const {
  return id.seq != 0 && id.slot < slot_count_ && slot_at(id.slot).seq == id.seq;
}

bool EventQueue::cancel(EventId id) {
  if (!pending(id)) return false;
  Slot& s = slot_at(id.slot);
  s.cb.~Callback();
  s.seq = 0;
  free_.push_back(id.slot);
  --live_;
  ++stale_;
  return true;
}

bool EventQueue::refill() {
  while (true) {
    std::vector<Entry>& b0 = buckets_[0];
    if (stale_ > 0) {
      while (head0_ < b0.size() && stale(b0[head0_])) {
        ++head0_;
        --stale_;
        --records_;
      }
    }
    if (head0_ < b0.size()) return true;
    b0.clear();
    head0_ = 0;
    std::size_t i = 1;
    while (i < buckets_.size() && buckets_[i].empty()) ++i;
    if (i == buckets_.size()) return false;
    std::vector<Entry>& bi = buckets_[i];
    std::uint64_t m = UINT64_MAX;
    bool any_live = false;
    for (const Entry& e : bi) {
      if (stale_ > 0 && stale(e)) continue;
      any_live = true;
      m = e.t < m ? e.t : m;
    }
    if (any_live) last_ = m;
    for (const Entry& e : bi) {
      if (stale_ > 0 && stale(e)) {
        --stale_;
        --records_;
        continue;
      }
      const std::size_t nb = bucket_of(e.t, last_);
      // Records landing in the lowest buckets are popped soon: fetch their slots now.
      if (nb <= 2) __builtin_prefetch(&slot_at(static_cast<std::uint32_t>(e.lo & kSlotMask)));
      buckets_[nb].push_back(e);
    }
    bi.clear();
  }
}

void EventQueue::rebase(std::uint64_t t) {
  scratch_.clear();
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    auto& v = buckets_[b];
    scratch_.insert(scratch_.end(), v.begin() + static_cast<std::ptrdiff_t>(b == 0 ? head0_ : 0), v.end());
    v.clear();
  }
  head0_ = 0;
  last_ = t;
  for (const Entry& e : scratch_) buckets_[bucket_of(e.t, last_)].push_back(e);
}

Time EventQueue::next_time() {
  if (!refill()) return kTimeMax;
  return Time{Duration{static_cast<std::int64_t>(last_)}};
}

bool EventQueue::pop_until(Time until, Popped& out) {
  if (!refill()) return false;
  if (static_cast<std::int64_t>(last_) > until.time_since_epoch().count()) return false;
  const Entry e = buckets_[0][head0_++];
  --records_;
  floor_ = e.t;
  const auto slot = static_cast<std::uint32_t>(e.lo & kSlotMask);
  Slot& s = slot_at(slot);
  out.time = Time{Duration{static_cast<std::int64_t>(e.t)}};
  out.seq = e.lo >> kSlotBits;
  out.tag = s.tag;
  out.cb = std::move(s.cb);
  s.cb.~Callback();
  s.seq = 0;
  free_.push_back(slot);
  --live_;
  return true;
}

}  // namespace moesim
