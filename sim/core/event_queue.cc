#include "sim/core/event_queue.h"

#include <bit>
#include <stdexcept>
#include <string>
#include <utility>

namespace moesim {
namespace {

// Bucket of a time t >= last relative to the current minimum `last`: 0 when
// equal, else 16 * d + v for the highest hexadecimal digit d where they differ
// and t's digit v there (1..15, above last's), so buckets in index order hold
// increasing times.
inline std::size_t bucket_of(std::uint64_t t, std::uint64_t last) {
  const std::uint64_t x = t ^ last;
  if (x == 0) return 0;
  const int d = (std::bit_width(x) - 1) >> 2;
  return static_cast<std::size_t>(d << 4) | static_cast<std::size_t>((t >> (4 * d)) & 15u);
}

}  // namespace

std::uint32_t EventQueue::claim(Time t, EventTag tag) {
  const std::int64_t ps = t.time_since_epoch().count();
  if (ps < 0 || static_cast<std::uint64_t>(ps) < floor_) {
    throw std::logic_error("EventQueue::push: time " + std::to_string(ps) + " ps is before the last event taken out (" +
                           std::to_string(floor_) + " ps)");
  }
  if (next_seq_ >> (64 - kSlotBits)) throw std::length_error("EventQueue: more than 2^40 events scheduled");
  std::uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    if (slot_count_ >= kSlotMask) throw std::length_error("EventQueue: more than 2^24 - 1 pending events");
    slot = slot_count_++;
    if ((slot >> kChunkBits) >= chunks_.size())
      chunks_.push_back(std::make_unique_for_overwrite<Slot[]>(std::size_t{1} << kChunkBits));
  }
  const auto ut = static_cast<std::uint64_t>(ps);
  if (ut < last_) rebase(ut);
  const std::uint64_t seq = next_seq_++;
  Slot& s = slot_at(slot);
  s.seq = seq;
  ::new (static_cast<void*>(&s.tag)) EventTag(tag);
  file(bucket_of(ut, last_), Entry{ut, seq << kSlotBits | slot});
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
    std::size_t i = 0;
    std::size_t w = 0;
    while (w < kMaskWords && nonempty_[w] == 0) ++w;
    if (w == kMaskWords) return false;
    i = w * 64 + static_cast<std::size_t>(std::countr_zero(nonempty_[w]));
    nonempty_[w] &= nonempty_[w] - 1;  // bucket i is emptied below
    std::vector<Entry>& bi = buckets_[i];
    if (bi.size() == 1) {  // the common case: one record, the new minimum (unless stale)
      const Entry e = bi[0];
      bi.clear();
      if (stale_ > 0 && stale(e)) {
        --stale_;
        --records_;
        continue;
      }
      last_ = e.t;
      b0.push_back(e);
      return true;
    }
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
      if (nb < 32) __builtin_prefetch(&slot_at(static_cast<std::uint32_t>(e.lo & kSlotMask)));
      file(nb, e);
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
  for (auto& m : nonempty_) m = 0;
  for (const Entry& e : scratch_) file(bucket_of(e.t, last_), e);
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
