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

void Simulator::check_at(Time t) const {
  if (t < now_) {
    throw std::logic_error("Simulator::at: time " + std::to_string(t.time_since_epoch().count()) +
                           " ps is before now (" + std::to_string(now_.time_since_epoch().count()) + " ps)");
  }
}

void Simulator::check_after(Duration d) const {
  if (d < Duration::zero()) throw std::logic_error("Simulator::after: negative delay");
  if (d > kTimeMax - now_) throw std::overflow_error("Simulator::after: time beyond the range of engine time");
}

RunStats Simulator::run(Time until) {
  RunStats stats;
  stop_ = false;
  auto observe = [this, &stats](Time t, EventTag tag) {
    if (t < now_) throw std::logic_error("Simulator::run: time went backwards");
    now_ = t;
    ++stats.events;
    if (hook_) hook_(t, tag);
  };
  while (!stop_ && queue_.run_next(until, observe)) {
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
