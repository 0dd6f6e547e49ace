#include "sim/core/simulator.h"

#include <stdexcept>
#include <string>

namespace moesim {

void EventFingerprint::mix(std::uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h_ ^= (v >> (8 * i)) & 0xffu;
    h_ *= 1099511628211ull;
  }
}

void EventFingerprint::add(Time t, EventTag tag) {
  mix(static_cast<std::uint64_t>(t.time_since_epoch().count()));
  mix(tag.kind);
  mix(tag.entity);
  ++n_;
}

EventId Simulator::at(Time t, Callback cb, EventTag tag) {
  if (t < now_) {
    throw std::logic_error("Simulator::at: time " + std::to_string(t.time_since_epoch().count()) +
                           " ps is before now (" + std::to_string(now_.time_since_epoch().count()) + " ps)");
  }
  return queue_.push(t, std::move(cb), tag);
}

EventId Simulator::after(Duration d, Callback cb, EventTag tag) {
  if (d < Duration::zero()) throw std::logic_error("Simulator::after: negative delay");
  if (d > kTimeMax - now_) throw std::overflow_error("Simulator::after: time beyond the range of engine time");
  return queue_.push(now_ + d, std::move(cb), tag);
}

RunStats Simulator::run(Time until) {
  RunStats stats;
  stop_ = false;
  EventQueue::Popped ev;
  while (!stop_ && queue_.pop_until(until, ev)) {
    if (ev.time < now_) throw std::logic_error("Simulator::run: time went backwards");
    now_ = ev.time;
    ++stats.events;
    if (hook_) hook_(now_, ev.tag);
    ev.cb();
  }
  executed_ += stats.events;
  stats.stopped = stop_;
  stop_ = false;
  stats.drained = queue_.empty();
  if (!stats.stopped && until != kTimeMax && now_ < until) now_ = until;
  stats.end = now_;
  return stats;
}

}  // namespace moesim
