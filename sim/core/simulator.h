// The simulator: one clock, one event queue, a master seed for named random
// streams. A value you construct; no global state, so several simulators can
// live in one process (and one test).
//
// Invariants checked on every event (cheap): an event's time is never before
// now() (at() rejects the past; run() re-checks what it pops).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "sim/core/event_queue.h"
#include "sim/core/rng.h"
#include "sim/core/time.h"

namespace moesim {

struct RunStats {
  std::uint64_t events = 0;  // events executed by this run() call
  Time end;                  // now() when run() returned
  bool stopped = false;      // stop() was called
  bool drained = false;      // no pending event was left
};

// Order-sensitive 64-bit fingerprint over (time, kind, entity) of executed
// events (FNV-1a over the fields' bytes). Two runs with identical event
// sequences have identical fingerprints.
class EventFingerprint {
 public:
  void add(Time t, EventTag tag);
  [[nodiscard]] std::uint64_t value() const { return h_; }
  [[nodiscard]] std::uint64_t count() const { return n_; }

 private:
  void mix(std::uint64_t v);
  std::uint64_t h_ = 14695981039346656037ull;
  std::uint64_t n_ = 0;
};

class Simulator {
 public:
  using Callback = EventQueue::Callback;
  // Observer called before each event runs.
  using EventHook = std::function<void(Time, EventTag)>;

  explicit Simulator(std::uint64_t seed = 0) : seed_(seed) {}
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  [[nodiscard]] Time now() const { return now_; }
  [[nodiscard]] std::uint64_t seed() const { return seed_; }

  // Schedules f (a void() callable) at absolute time t >= now(); throws
  // std::logic_error for a time in the past.
  template <class F>
  EventId at(Time t, F&& f, EventTag tag = {}) {
    check_at(t);
    return queue_.push(t, std::forward<F>(f), tag);
  }
  // Schedules f d >= 0 after now().
  template <class F>
  EventId after(Duration d, F&& f, EventTag tag = {}) {
    check_after(d);
    return queue_.push(now_ + d, std::forward<F>(f), tag);
  }
  // Lazy cancellation; false when the event already ran or was cancelled.
  bool cancel(EventId id) { return queue_.cancel(id); }
  [[nodiscard]] bool pending(EventId id) const { return queue_.pending(id); }
  [[nodiscard]] std::size_t pending_events() const { return queue_.size(); }

  // Runs events with time <= until in (time, seq) order. When it returns
  // because no event is left before `until` (and until is finite), the clock
  // is advanced to `until`. Throws std::logic_error if time would go backwards.
  RunStats run(Time until = kTimeMax);
  // Makes the current run() return after the event that calls it.
  void stop() { stop_ = true; }

  void set_event_hook(EventHook hook) { hook_ = std::move(hook); }

  // A fresh generator at the start of the named stream of this simulator's seed.
  [[nodiscard]] Rng stream(std::string_view name) const { return Rng::stream(seed_, name); }

  [[nodiscard]] std::uint64_t events_executed() const { return executed_; }

 private:
  void check_at(Time t) const;
  void check_after(Duration d) const;

  EventQueue queue_;
  Time now_ = kTimeZero;
  std::uint64_t seed_;
  std::uint64_t executed_ = 0;
  bool stop_ = false;
  EventHook hook_;
};

}  // namespace moesim
