// The per-token CSV of `moesim run --tokens` (obs::tokens_csv) on the hand-worked two-request case of
// tests/unit/serve/serving_test.cc: every step takes 10 ms; r0 (t = 0, 3 tokens out) gets its tokens at 10, 20 and
// 30 ms; r1 (t = 5 ms, 2 tokens out) at 20 and 30 ms, so its first gap is its TTFT, 15 ms.
#include <gtest/gtest.h>

#include <stdexcept>

#include "sim/obs/report.h"
#include "sim/serve/serving_sim.h"
#include "sim/serve/step_timers.h"
#include "tests/unit/serve/serve_fixture.h"

namespace moesim {
namespace {

serve::ServingResult run_two_requests(bool token_times) {
  test::ScenarioText t;
  t.workload = R"({"arrivals": {"kind": "trace", "file": "trace.csv"}})";
  test::ScenarioFile f(t, "0,100,3\n0.005,50,2\n");
  serve::ServingOptions o;
  o.progress = false;
  o.token_times = token_times;
  return serve::run_serving(f.load(), serve::fixed_step_timers(duration_from_seconds_ceil(0.010)), o);
}

TEST(TokensCsv, EveryDeliveryWithItsTimeAndGap) {
  const serve::ServingResult r = run_two_requests(true);
  EXPECT_EQ(obs::tokens_csv(r),
            "id,measured,delivery,time_s,tokens,gap_ms\n"
            "0,1,0,0.010000000,1,10.000000\n"
            "0,1,1,0.020000000,1,10.000000\n"
            "0,1,2,0.030000000,1,10.000000\n"
            "1,1,0,0.020000000,1,15.000000\n"
            "1,1,1,0.030000000,1,10.000000\n");
  // The deliveries agree with the per-request record: first = first token, last = finish, tokens sum to the output.
  for (const auto& rec : r.metrics.records()) {
    const auto d = r.metrics.deliveries(rec.id);
    ASSERT_FALSE(d.empty());
    EXPECT_EQ(d.front().time, rec.first_token);
    EXPECT_EQ(d.back().time, rec.finish);
    int tokens = 0;
    for (const auto& x : d) tokens += x.tokens;
    EXPECT_EQ(tokens, rec.output);
  }
}

TEST(TokensCsv, NeedsTheDeliveriesKept) {
  const serve::ServingResult r = run_two_requests(false);
  EXPECT_TRUE(r.metrics.deliveries(0).empty());
  EXPECT_THROW(obs::tokens_csv(r), std::logic_error);
}

}  // namespace
}  // namespace moesim
