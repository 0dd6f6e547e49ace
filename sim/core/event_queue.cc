#include "sim/core/event_queue.h"

#include <utility>

namespace moesim {

EventId EventQueue::push(Time t, Callback cb, EventTag tag) {
  std::uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  const std::uint64_t seq = next_seq_++;
  Slot& s = slots_[slot];
  s.cb = std::move(cb);
  s.seq = seq;
  s.tag = tag;
  heap_.push_back(Entry{t.time_since_epoch().count(), seq, slot});
  sift_up(heap_.size() - 1);
  ++live_;
  return EventId{seq, slot};
}

bool EventQueue::pending(EventId id) const {
  return id.seq != 0 && id.slot < slots_.size() && slots_[id.slot].seq == id.seq;
}

bool EventQueue::cancel(EventId id) {
  if (!pending(id)) return false;
  Slot& s = slots_[id.slot];
  s.cb = nullptr;
  s.seq = 0;
  free_.push_back(id.slot);
  --live_;
  return true;
}

void EventQueue::sift_up(std::size_t i) {
  const Entry e = heap_[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / 4;
    if (!before(e, heap_[parent])) break;
    heap_[i] = heap_[parent];
    i = parent;
  }
  heap_[i] = e;
}

void EventQueue::sift_down(std::size_t i) {
  const std::size_t n = heap_.size();
  const Entry e = heap_[i];
  while (true) {
    const std::size_t first = 4 * i + 1;
    if (first >= n) break;
    std::size_t best = first;
    const std::size_t last = first + 4 < n ? first + 4 : n;
    for (std::size_t c = first + 1; c < last; ++c) {
      if (before(heap_[c], heap_[best])) best = c;
    }
    if (!before(heap_[best], e)) break;
    heap_[i] = heap_[best];
    i = best;
  }
  heap_[i] = e;
}

void EventQueue::pop_top() {
  heap_.front() = heap_.back();
  heap_.pop_back();
  if (!heap_.empty()) sift_down(0);
}

void EventQueue::drop_stale() {
  while (!heap_.empty() && slots_[heap_.front().slot].seq != heap_.front().seq) pop_top();
}

Time EventQueue::next_time() {
  drop_stale();
  return heap_.empty() ? kTimeMax : Time{Duration{heap_.front().t}};
}

bool EventQueue::pop_until(Time until, Popped& out) {
  drop_stale();
  if (heap_.empty()) return false;
  const Entry top = heap_.front();
  if (top.t > until.time_since_epoch().count()) return false;
  pop_top();
  Slot& s = slots_[top.slot];
  out.time = Time{Duration{top.t}};
  out.seq = top.seq;
  out.tag = s.tag;
  out.cb = std::move(s.cb);
  s.cb = nullptr;
  s.seq = 0;
  free_.push_back(top.slot);
  --live_;
  return true;
}

}  // namespace moesim
