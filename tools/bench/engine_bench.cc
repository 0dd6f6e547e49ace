// Event-engine throughput: the classic "hold" model. N events are pending;
// each executed event schedules one new event a uniform random 1..2^20 ps
// ahead, so the queue size stays at N. Reported: events per second (items/s).
#include <benchmark/benchmark.h>

#include "sim/core/rng.h"
#include "sim/core/simulator.h"

namespace {

using moesim::Duration;
using moesim::Rng;
using moesim::Simulator;

struct HoldContext {
  Simulator* sim;
  Rng rng{1};
  std::uint64_t executed = 0;
  std::uint64_t batch = 0;
  std::uint64_t until_stop = 0;  // countdown to the end of a batch (no per-event division in the measured loop)

  void count_and_maybe_stop() {
    ++executed;
    if (--until_stop == 0) {
      until_stop = batch;
      sim->stop();
    }
  }
};

// 8 bytes: stored inside std::function without a heap allocation.
struct HoldEvent {
  HoldContext* ctx;
  void operator()() const {
    HoldContext& c = *ctx;
    c.sim->after(Duration{1 + static_cast<std::int64_t>(c.rng.next_u64() >> 44)}, HoldEvent{ctx});
    c.count_and_maybe_stop();
  }
};

// Fills the queue with `pending` events of type Event, runs one warm-up batch, then
// times whole batches of ctx.batch events.
template <class Event>
void run_hold(benchmark::State& state) {
  const auto pending = static_cast<std::uint64_t>(state.range(0));
  Simulator sim;
  HoldContext ctx{&sim};
  ctx.batch = 1'000'000;
  ctx.until_stop = ctx.batch;
  for (std::uint64_t i = 0; i < pending; ++i) {
    sim.after(Duration{1 + static_cast<std::int64_t>(ctx.rng.next_u64() >> 44)}, Event{&ctx});
  }
  sim.run();  // warm up: one batch
  for (auto _ : state) {
    sim.run();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * ctx.batch));
  state.counters["pending"] = static_cast<double>(sim.pending_events());
}

void BM_EngineHold(benchmark::State& state) { run_hold<HoldEvent>(state); }

// Cancellation-heavy variant: every event also schedules a decoy and cancels it.
struct CancelEvent {
  HoldContext* ctx;
  void operator()() const {
    HoldContext& c = *ctx;
    const auto decoy = c.sim->after(Duration{1 + static_cast<std::int64_t>(c.rng.next_u64() >> 44)}, [] {});
    c.sim->cancel(decoy);
    c.sim->after(Duration{1 + static_cast<std::int64_t>(c.rng.next_u64() >> 44)}, CancelEvent{ctx});
    c.count_and_maybe_stop();
  }
};

void BM_EngineHoldWithCancel(benchmark::State& state) { run_hold<CancelEvent>(state); }

}  // namespace

BENCHMARK(BM_EngineHold)->Arg(10'000)->Arg(1'000'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EngineHoldWithCancel)->Arg(10'000)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
