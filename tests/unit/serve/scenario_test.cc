#include "sim/config/scenario.h"

#include <gtest/gtest.h>

#include "sim/config/error.h"
#include "tests/unit/serve/serve_fixture.h"

namespace moesim {
namespace {

using test::ScenarioFile;
using test::ScenarioText;

const char* kClosed = R"({"arrivals": {"kind": "closed-loop", "concurrency": 8}, "input_tokens": 100,
                          "output_tokens": 10, "requests": 20})";

// Loads and returns the ConfigError's JSON pointer and message ("" when it loads).
std::pair<std::string, std::string> error_of(const ScenarioText& t, const std::string& trace = "") {
  ScenarioFile f(t, trace);
  try {
    (void)f.load();
  } catch (const ConfigError& e) {
    return {e.pointer(), e.what()};
  }
  return {"", ""};
}

TEST(Scenario, LoadsAndDerives) {
  ScenarioText t;
  t.workload = kClosed;
  t.mtp = R"({"depth": 2})";
  t.extra = R"("slo": {"ttft": {"percentile": 99, "max": "2 s"}}, "price": {"per_gpu_hour": "2.5 USD/h"}, )";
  ScenarioFile f(t);
  const ScenarioSpec sc = f.load();
  EXPECT_EQ(sc.model.id, "deepseek-r1");
  EXPECT_EQ(sc.cluster.total_gpus(), 8);
  EXPECT_EQ(sc.used_gpus(), 8);
  EXPECT_EQ(sc.pools[0].plan.tp, 8);
  EXPECT_TRUE(sc.pools[0].plan.mtp);
  EXPECT_TRUE(sc.mtp.acceptance_default);
  ASSERT_EQ(sc.mtp.acceptance.size(), 2u);
  EXPECT_NEAR(sc.mtp.acceptance[0], 0.92, 1e-12);
  EXPECT_EQ(sc.workload.concurrency, 8);
  EXPECT_EQ(*sc.workload.requests, 20);
  ASSERT_TRUE(sc.slo.ttft.has_value());
  EXPECT_EQ(sc.slo.ttft->max, duration_from_seconds_ceil(2.0));
  EXPECT_DOUBLE_EQ(*sc.price_per_gpu_hour, 2.5);
  EXPECT_EQ(sc.input_files.size(), 4u);
  EXPECT_NE(sc.input_hash, 0u);
  // The hash covers the bytes of the inputs: the same file loads to the same hash.
  EXPECT_EQ(f.load().input_hash, sc.input_hash);
}

TEST(Scenario, PoolLargerThanTheSystem) {
  ScenarioText t;
  t.workload = kClosed;
  t.pools = R"([{"name": "a", "role": "aggregated", "instances": 2, "plan": "tp=8",
                 "scheduler": {"max_batch_size": 8, "max_tokens_per_step": 100}}])";
  const auto [ptr, msg] = error_of(t);
  EXPECT_EQ(ptr, "/deployment/pools");
  EXPECT_NE(msg.find("need 16 GPUs"), std::string::npos) << msg;
  EXPECT_NE(msg.find("scenario.json"), std::string::npos) << msg;
}

TEST(Scenario, PlanThatDoesNotFit) {
  ScenarioText t;
  t.workload = kClosed;
  t.pools = R"([{"name": "a", "role": "aggregated", "instances": 1, "plan": "tp=2,ep=2",
                 "scheduler": {"max_batch_size": 8, "max_tokens_per_step": 100}}])";
  const auto [ptr, msg] = error_of(t);
  EXPECT_EQ(ptr, "/deployment/pools/0/plan");
  EXPECT_NE(msg.find("does not fit"), std::string::npos) << msg;
}

TEST(Scenario, SloWithoutPercentile) {
  ScenarioText t;
  t.workload = kClosed;
  t.extra = R"("slo": {"tpot": {"max": "50 ms"}}, )";
  EXPECT_EQ(error_of(t).first, "/slo/tpot/percentile");
}

TEST(Scenario, TraceWithNegativeLength) {
  ScenarioText t;
  t.workload = R"({"arrivals": {"kind": "trace", "file": "trace.csv"}})";
  const auto [ptr, msg] = error_of(t, "0,100,10\n0.5,-3,10\n");
  EXPECT_EQ(ptr, "line 2");
  EXPECT_NE(msg.find("trace.csv"), std::string::npos) << msg;
}

TEST(Scenario, TraceWithUnsortedArrivals) {
  ScenarioText t;
  t.workload = R"({"arrivals": {"kind": "trace", "file": "trace.csv"}})";
  const auto [ptr, msg] = error_of(t, "# arrival,input,output\n0,100,10\n2.0,10,10\n1.0,10,10\n");
  EXPECT_EQ(ptr, "line 4");
  EXPECT_NE(msg.find("sorted"), std::string::npos) << msg;
}

TEST(Scenario, UnknownKeysAndBadValues) {
  ScenarioText t;
  t.workload = R"({"arrivals": {"kind": "closed-loop", "concurrency": 8}, "input_tokens": 100,
                   "output_tokens": 10, "requests": 20, "warmpu": 3})";
  EXPECT_EQ(error_of(t).first, "/workload/warmpu");
  t.workload = R"({"arrivals": {"kind": "poisson", "rate": "fast"}, "input_tokens": 1, "output_tokens": 1,
                   "requests": 2})";
  EXPECT_EQ(error_of(t).first, "/workload/arrivals/rate");
  t.workload = R"({"arrivals": {"kind": "closed-loop", "concurrency": 8}, "input_tokens": 100, "output_tokens": 10})";
  EXPECT_EQ(error_of(t).first, "/workload");  // never ends
  t.workload = kClosed;
  t.deployment_extra = R"(, "routing": "zipf")";
  EXPECT_EQ(error_of(t).first, "/deployment/routing");
  t.deployment_extra = R"(, "dispatcher": "deepep")";
  EXPECT_EQ(error_of(t).first, "/deployment/dispatcher");
}

TEST(Scenario, PrefillPoolNeedsDecodePool) {
  ScenarioText t;
  t.workload = kClosed;
  t.pools = R"([{"name": "p", "role": "prefill", "instances": 1, "plan": "tp=8",
                 "scheduler": {"max_batch_size": 8, "max_tokens_per_step": 100}}])";
  EXPECT_EQ(error_of(t).first, "/deployment/pools");
}

TEST(Scenario, KvCacheTooSmallForTheLongestRequest) {
  ScenarioText t;
  t.workload = R"({"arrivals": {"kind": "closed-loop", "concurrency": 8}, "input_tokens": 100,
                   "output_tokens": 200000, "requests": 20})";
  t.kv = R"({"dtype": "bf16", "memory_fraction": 0.01})";
  EXPECT_EQ(error_of(t).first, "/deployment/pools/0/plan");
}

}  // namespace
}  // namespace moesim
