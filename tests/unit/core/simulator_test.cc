#include "sim/core/simulator.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace moesim {
namespace {

Time ps(std::int64_t v) { return Time{Duration{v}}; }

TEST(Simulator, RunsEventsAndAdvancesClock) {
  Simulator sim;
  std::vector<std::int64_t> seen;
  sim.at(ps(100), [&] { seen.push_back(sim.now().time_since_epoch().count()); });
  sim.after(Duration{50}, [&] {
    seen.push_back(sim.now().time_since_epoch().count());
    // Scheduled from inside an event: 50 + 25 = 75.
    sim.after(Duration{25}, [&] { seen.push_back(sim.now().time_since_epoch().count()); });
  });
  const RunStats st = sim.run();
  EXPECT_EQ(seen, (std::vector<std::int64_t>{50, 75, 100}));
  EXPECT_EQ(st.events, 3u);
  EXPECT_TRUE(st.drained);
  EXPECT_EQ(sim.now(), ps(100));
}

TEST(Simulator, RunUntilStopsAndAdvancesClockToLimit) {
  Simulator sim;
  int ran = 0;
  sim.at(ps(10), [&] { ++ran; });
  sim.at(ps(30), [&] { ++ran; });
  RunStats st = sim.run(ps(20));
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(sim.now(), ps(20));
  EXPECT_FALSE(st.drained);
  st = sim.run(ps(30));
  EXPECT_EQ(ran, 2);
  EXPECT_EQ(sim.now(), ps(30));
}

TEST(Simulator, RejectsEventsInThePast) {
  Simulator sim;
  sim.at(ps(10), [] {});
  sim.run();
  EXPECT_THROW(sim.at(ps(5), [] {}), std::logic_error);
  EXPECT_THROW(sim.after(Duration{-1}, [] {}), std::logic_error);
  EXPECT_NO_THROW(sim.at(ps(10), [] {}));  // now is allowed
}

TEST(Simulator, CancelPreventsExecution) {
  Simulator sim;
  int ran = 0;
  const EventId id = sim.at(ps(10), [&] { ran += 1; });
  sim.at(ps(5), [&] { EXPECT_TRUE(sim.cancel(id)); });
  sim.run();
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(sim.now(), ps(5));
}

TEST(Simulator, StopReturnsAfterCurrentEvent) {
  Simulator sim;
  int ran = 0;
  sim.at(ps(1), [&] { ++ran; sim.stop(); });
  sim.at(ps(2), [&] { ++ran; });
  RunStats st = sim.run(ps(100));
  EXPECT_TRUE(st.stopped);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(sim.now(), ps(1));  // not advanced to the limit when stopped
  st = sim.run(ps(100));
  EXPECT_EQ(ran, 2);
}

TEST(Simulator, EqualTimeEventsRunInInsertionOrder) {
  Simulator sim;
  std::vector<int> order;
  for (int i = 0; i < 10; ++i) sim.at(ps(7), [&order, i] { order.push_back(i); });
  sim.run();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

// A small stochastic workload: jobs arrive with exponential gaps, each
// scheduling a completion after a lognormal service time; some get cancelled.
std::uint64_t run_workload(std::uint64_t seed, std::uint64_t* count = nullptr) {
  Simulator sim(seed);
  EventFingerprint fp;
  sim.set_event_hook([&](Time t, EventTag tag) { fp.add(t, tag); });
  Rng arrivals = sim.stream("workload");
  Rng service = sim.stream("service");
  std::vector<EventId> done;
  std::function<void(std::uint64_t)> arrive = [&](std::uint64_t job) {
    done.push_back(sim.after(duration_from_seconds_ceil(service.lognormal(-13.0, 0.5)), [] {}, {2, job}));
    if (job % 7 == 3) sim.cancel(done[job / 2]);
    if (job < 2000) {
      sim.after(duration_from_seconds_ceil(arrivals.exponential(1e6)), [&arrive, job] { arrive(job + 1); },
                {1, job + 1});
    }
  };
  sim.at(kTimeZero, [&] { arrive(0); }, {1, 0});
  sim.run();
  if (count) *count = fp.count();
  return fp.value();
}

TEST(Simulator, SameSeedGivesIdenticalEventSequence) {
  std::uint64_t n1 = 0;
  std::uint64_t n2 = 0;
  const std::uint64_t a = run_workload(42, &n1);
  const std::uint64_t b = run_workload(42, &n2);
  EXPECT_EQ(a, b);
  EXPECT_EQ(n1, n2);
  EXPECT_GT(n1, 3000u);  // 2001 arrivals + completions minus cancellations
  EXPECT_NE(a, run_workload(43));
}

TEST(Simulator, TwoSimulatorsInOneTestAreIndependent) {
  Simulator a(1);
  Simulator b(1);
  std::vector<int> log_a;
  std::vector<int> log_b;
  a.at(ps(10), [&] { log_a.push_back(1); });
  b.at(ps(5), [&] { log_b.push_back(2); });
  b.at(ps(20), [&] { log_b.push_back(3); });
  a.run();
  EXPECT_EQ(a.now(), ps(10));
  EXPECT_EQ(b.now(), ps(0));  // b untouched by a's run
  b.run(ps(6));
  EXPECT_EQ(b.now(), ps(6));
  b.run();
  EXPECT_EQ(log_a, (std::vector<int>{1}));
  EXPECT_EQ(log_b, (std::vector<int>{2, 3}));
  // Same seed, same stream name: same numbers, without shared state.
  Rng ra = a.stream("workload");
  Rng rb = b.stream("workload");
  EXPECT_EQ(ra.next_u64(), rb.next_u64());
}

}  // namespace
}  // namespace moesim
