#include "sim/serve/serving_sim.h"

#include <gtest/gtest.h>

#include <set>

#include "sim/hw/topology.h"
#include "sim/model/plan.h"
#include "sim/obs/report.h"
#include "sim/serve/step_timers.h"
#include "tests/unit/serve/serve_fixture.h"

namespace moesim {
namespace {

using test::ScenarioFile;
using test::ScenarioText;

constexpr double kMs = 1e-3;
Duration ms(double v) { return duration_from_seconds_ceil(v * kMs); }
double s_of(Time t) { return to_seconds(t); }

serve::ServingOptions quiet() {
  serve::ServingOptions o;
  o.progress = false;
  return o;
}

// Two requests by hand: r0 (t=0, 100 in, 3 out), r1 (t=5 ms, 50 in, 2 out); every step 10 ms.
//   step [0,10]: prefill r0 -> r0 first token at 10
//   step [10,20]: decode r0 (token 2), prefill r1 -> r1 first token at 20 (TTFT 15)
//   step [20,30]: decode r0 (token 3, done), decode r1 (token 2, done)
TEST(Serving, HandWorkedTwoRequests) {
  ScenarioText t;
  t.workload = R"({"arrivals": {"kind": "trace", "file": "trace.csv"}})";
  ScenarioFile f(t, "0,100,3\n0.005,50,2\n");
  const ScenarioSpec sc = f.load();
  serve::ServingResult r = serve::run_serving(sc, serve::fixed_step_timers(ms(10)), quiet());
  const auto& recs = r.metrics.records();
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_NEAR(recs[0].ttft_s(), 10 * kMs, 1e-9);
  EXPECT_NEAR(recs[0].tpot_s(), 10 * kMs, 1e-9);
  EXPECT_NEAR(recs[0].e2e_s(), 30 * kMs, 1e-9);
  EXPECT_NEAR(recs[1].ttft_s(), 15 * kMs, 1e-9);
  EXPECT_NEAR(recs[1].tpot_s(), 10 * kMs, 1e-9);
  EXPECT_NEAR(recs[1].e2e_s(), 25 * kMs, 1e-9);
  EXPECT_EQ(r.pools[0].steps, 3);
}

// Pipeline stages: an aggregated instance with tp=8,pp=2 on two HGX H200 nodes keeps two batches in flight
// (two lanes, each with its own scheduler). max_batch_size 1, two requests at t=0 (100 in, 2 out), 10 ms steps:
//   pp=1 (one node, tp=8): [0,10] r0 prefill (first token 10); [10,20] r0 token 2 (done 20); [20,30] r1 prefill
//     (first token 30); [30,40] r1 token 2 (done 40).
//   pp=2: r0 on lane 0, r1 on lane 1, both: first token at 10, done at 20.
// Each lane has half of the rank's KV blocks: plan_memory's tokens per GPU (a stage's GPUs hold 31 of the 61 layers)
// / 64-token blocks / 2 lanes.
TEST(Serving, PipelineStagesKeepOneBatchInFlightPerStage) {
  auto run = [](const std::string& plan, int domains) {
    ScenarioText t;
    t.domains = domains;
    t.pools = R"([{"name": "main", "role": "aggregated", "instances": 1, "plan": ")" + plan + R"(",
                   "scheduler": {"max_batch_size": 1, "max_tokens_per_step": 1000, "chunk_size": 1000}}])";
    t.workload = R"({"arrivals": {"kind": "trace", "file": "trace.csv"}})";
    ScenarioFile f(t, "0,100,2\n0,100,2\n");
    const ScenarioSpec sc = f.load();
    serve::ServingResult r = serve::run_serving(sc, serve::fixed_step_timers(ms(10)), quiet());
    const MemoryPlan mp = plan_memory(sc.model, sc.precision_variant(), sc.cluster.system.gpu, sc.pools[0].plan,
                                      MemoryOptions{sc.kv.dtype, sc.kv.memory_fraction, sc.kv.reserve_bytes});
    return std::make_pair(std::move(r), mp);
  };
  auto [one, mp1] = run("tp=8", 1);
  auto [two, mp2] = run("tp=8,pp=2", 2);
  ASSERT_EQ(one.metrics.records().size(), 2u);
  ASSERT_EQ(two.metrics.records().size(), 2u);
  EXPECT_NEAR(one.metrics.records()[0].e2e_s(), 20 * kMs, 1e-9);
  EXPECT_NEAR(one.metrics.records()[1].ttft_s(), 30 * kMs, 1e-9);
  EXPECT_NEAR(one.metrics.records()[1].e2e_s(), 40 * kMs, 1e-9);
  for (const auto& rec : two.metrics.records()) {
    EXPECT_NEAR(rec.ttft_s(), 10 * kMs, 1e-9);
    EXPECT_NEAR(rec.e2e_s(), 20 * kMs, 1e-9);
  }
  EXPECT_EQ(two.instance_names.size(), 2u);
  EXPECT_EQ(two.instance_names[1], "main/0.1");
  EXPECT_EQ(one.pools[0].kv_blocks_per_rank, static_cast<int>(mp1.kv_tokens_per_gpu / 64));
  EXPECT_EQ(two.pools[0].kv_blocks_per_rank, static_cast<int>(mp2.kv_tokens_per_gpu / 64) / 2);
  // Each lane's 10 ms step holds the stages for half of it: 4 steps x 5 ms of GPU time over a 20 ms makespan.
  EXPECT_NEAR(to_seconds(two.pools[0].busy), 20 * kMs, 1e-9);
}

// The same with chunk 60: r0's prompt takes two steps (60 + 40).
//   [0,10] r0 60; [10,20] r0 40 (first token 20) + r1 50 (first token 20, TTFT 15);
//   [20,30] r0 token 2, r1 token 2 (done 30); [30,40] r0 token 3 (done 40).
TEST(Serving, HandWorkedChunkedPrefill) {
  ScenarioText t;
  t.pools = R"([{"name": "main", "role": "aggregated", "instances": 1, "plan": "tp=8",
                 "scheduler": {"max_batch_size": 8, "max_tokens_per_step": 1000, "chunk_size": 60}}])";
  t.workload = R"({"arrivals": {"kind": "trace", "file": "trace.csv"}})";
  ScenarioFile f(t, "0,100,3\n0.005,50,2\n");
  serve::ServingResult r = serve::run_serving(f.load(), serve::fixed_step_timers(ms(10)), quiet());
  const auto& recs = r.metrics.records();
  EXPECT_NEAR(recs[0].ttft_s(), 20 * kMs, 1e-9);
  EXPECT_NEAR(s_of(recs[0].finish), 40 * kMs, 1e-9);
  EXPECT_NEAR(recs[0].tpot_s(), 10 * kMs, 1e-9);
  EXPECT_NEAR(recs[1].ttft_s(), 15 * kMs, 1e-9);
  EXPECT_NEAR(s_of(recs[1].finish), 30 * kMs, 1e-9);
}

ScenarioText closed_loop(int concurrency, int requests, int warmup) {
  ScenarioText t;
  t.workload = R"({"arrivals": {"kind": "closed-loop", "concurrency": )" + std::to_string(concurrency) +
               R"(}, "input_tokens": 100, "output_tokens": {"distribution": "uniform", "min": 10, "max": 50},
                  "requests": )" + std::to_string(requests) + R"(, "warmup": {"requests": )" +
               std::to_string(warmup) + R"(}, "seed": 3})";
  return t;
}

TEST(Serving, LittlesLawOnClosedLoop) {
  ScenarioFile f(closed_loop(64, 10000, 640));
  const ScenarioSpec sc = f.load();
  serve::ServingResult r = serve::run_serving(sc, serve::fixed_step_timers(ms(10)), quiet());
  const obs::Summary s = obs::summarize_run(sc, r);
  const double little = s.requests_per_s * s.e2e_ms.mean * 1e-3;
  EXPECT_NEAR(little / 64.0, 1.0, 0.02) << "throughput " << s.requests_per_s << " req/s x latency "
                                         << s.e2e_ms.mean << " ms";
}

void expect_conserved(const serve::ServingResult& r, long long requests) {
  const auto& recs = r.metrics.records();
  ASSERT_EQ(static_cast<long long>(recs.size()), requests);
  std::set<std::uint32_t> ids;
  std::int64_t out = 0;
  for (const obs::RequestRecord& rec : recs) {
    EXPECT_TRUE(rec.finished) << rec.id;
    EXPECT_EQ(rec.output, rec.requested) << rec.id;
    EXPECT_LE(rec.arrival, rec.first_token);
    EXPECT_LE(rec.first_token, rec.finish);
    ids.insert(rec.id);
    out += rec.output;
  }
  EXPECT_EQ(static_cast<long long>(ids.size()), requests);
  EXPECT_EQ(out, r.metrics.tokens_emitted());
  EXPECT_EQ(out, r.emissions.back().output_tokens);
}

TEST(Serving, NoRequestLostOrDuplicatedUnderPoisson) {
  ScenarioText t;
  t.workload = R"({"arrivals": {"kind": "poisson", "rate": "200 req/s"},
                   "input_tokens": {"distribution": "normal", "mean": 300, "sd": 100, "min": 10, "max": 900},
                   "output_tokens": {"distribution": "uniform", "min": 1, "max": 80}, "requests": 3000, "seed": 9})";
  ScenarioFile f(t);
  serve::ServingResult r = serve::run_serving(f.load(), serve::fixed_step_timers(ms(5)), quiet());
  expect_conserved(r, 3000);
}

TEST(Serving, KvExhaustionPreemptsAndStillCompletes) {
  ScenarioText t = closed_loop(64, 600, 0);
  t.workload = R"({"arrivals": {"kind": "closed-loop", "concurrency": 64}, "input_tokens": 100,
                   "output_tokens": 500, "requests": 600, "seed": 4})";
  t.kv = R"({"dtype": "bf16", "memory_fraction": 0.01, "block_tokens": 16})";
  ScenarioFile f(t);
  const ScenarioSpec sc = f.load();
  serve::ServingResult r = serve::run_serving(sc, serve::fixed_step_timers(ms(10)), quiet());
  EXPECT_GT(r.pools[0].preemptions, 0);
  expect_conserved(r, 600);
  // The cache never held more blocks than it has.
  EXPECT_LE(r.pools[0].peak_kv_blocks, r.pools[0].kv_blocks_per_rank);
  // 64 x 600 tokens would not fit: the run proves it needed preemption to go on.
  EXPECT_LT(r.pools[0].kv_blocks_per_rank * 16, 64 * 600);
}

TEST(Serving, SameSeedSameReportBytes) {
  ScenarioText t;
  t.workload = R"({"arrivals": {"kind": "poisson", "rate": "100 req/s"},
                   "input_tokens": {"distribution": "uniform", "min": 10, "max": 400},
                   "output_tokens": {"distribution": "uniform", "min": 1, "max": 60}, "requests": 500, "seed": 11})";
  t.mtp = R"({"depth": 2})";
  ScenarioFile f(t);
  const ScenarioSpec sc = f.load();
  auto run = [&] {
    serve::ServingResult r = serve::run_serving(sc, serve::fixed_step_timers(ms(7)), quiet());
    return obs::report_json(sc, obs::summarize_run(sc, r)).dump(2) + obs::requests_csv(r);
  };
  const std::string a = run();
  EXPECT_EQ(a, run());
  const ScenarioSpec other = load_scenario(f.path(), 12);
  serve::ServingResult r2 = serve::run_serving(other, serve::fixed_step_timers(ms(7)), quiet());
  EXPECT_NE(a, obs::report_json(other, obs::summarize_run(other, r2)).dump(2) + obs::requests_csv(r2));
}

TEST(Serving, MtpDeliversSeveralTokensPerStep) {
  ScenarioText t;
  t.workload = R"({"arrivals": {"kind": "closed-loop", "concurrency": 32}, "input_tokens": 50,
                   "output_tokens": 2001, "requests": 32, "seed": 5})";
  t.mtp = R"({"depth": 3})";
  ScenarioFile f(t);
  serve::ServingResult r = serve::run_serving(f.load(), serve::fixed_step_timers(ms(10)), quiet());
  expect_conserved(r, 32);
  // 2000 decode tokens at a mean of 2.82 tokens per step: ~709 decode steps (plus 1 prefill step).
  EXPECT_NEAR(static_cast<double>(r.pools[0].steps), 1 + 2000 / 2.82, 30);
}

// Disaggregated: one prefill and one decode instance (tp=8 each) on two HGX H200 nodes.
// A single request of 1000 prompt tokens, 3 output tokens, 10 ms steps:
//   prefill [0,10] -> first token at 10 ms; KV moves node 0 -> node 1 in T;
//   decode steps [10+T, 20+T], [20+T, 30+T] -> finish at 30 ms + T,
// with T = bytes/8 over one 400 Gb/s NIC per GPU pair (8 pairs in parallel), of which transfers achieve 0.97
// (hardware/systems/hgx-h200.json /scale_out/achieved_fraction), + route latency.
TEST(Serving, DisaggregationPaysTheKvTransfer) {
  ScenarioText t;
  t.domains = 2;
  t.pools = R"([{"name": "prefill", "role": "prefill", "instances": 1, "plan": "tp=8",
                 "scheduler": {"max_batch_size": 8, "max_tokens_per_step": 4096}},
                {"name": "decode", "role": "decode", "instances": 1, "plan": "tp=8",
                 "scheduler": {"max_batch_size": 8, "max_tokens_per_step": 64}}])";
  t.workload = R"({"arrivals": {"kind": "trace", "file": "trace.csv"}})";
  ScenarioFile f(t, "0,1000,3\n");
  const ScenarioSpec sc = f.load();
  serve::ServingResult r = serve::run_serving(sc, serve::fixed_step_timers(ms(10)), quiet());
  const double bytes_per_token = kv_bytes_per_token(sc.model, KvDtype::kBf16, 1);
  EXPECT_NEAR(bytes_per_token, 61 * 576 * 2, 1e-9);  // MLA latent + rope, BF16, 61 layers
  const double nic = 400e9 / 8 * 0.97;                 // 400 Gb/s per GPU, bytes/s, x the achieved share
  const Topology topo = build_topology(sc.cluster);
  const double latency = to_seconds(topo.route_latency(GpuId(0), GpuId(8)));
  const double T = 1000 * bytes_per_token / 8 / nic + latency;
  const obs::RequestRecord& rec = r.metrics.records()[0];
  EXPECT_NEAR(to_seconds(rec.kv_transfer), T, 1e-9);
  EXPECT_NEAR(rec.ttft_s(), 10 * kMs, 1e-9);
  EXPECT_NEAR(s_of(rec.finish), 30 * kMs + T, 1e-9);
  EXPECT_EQ(r.kv_transfers, 1);
  EXPECT_NEAR(r.kv_transfer_bytes, 1000 * bytes_per_token, 1e-6);
  // The KV cache left node 0 over the prefill GPUs' NICs: the prefill pool sent it, all of it across domains;
  // its NIC busy = 70.27 MB / (8 GPUs x 50 GB/s x makespan); fixed step times move no step bytes.
  EXPECT_NEAR(r.pools[0].network_bytes, 1000 * bytes_per_token, 1e-3);
  EXPECT_NEAR(r.pools[0].scale_out_bytes, 1000 * bytes_per_token, 1e-3);
  EXPECT_EQ(r.pools[1].network_bytes, 0);
  const obs::Summary sum = obs::summarize_run(sc, r);
  EXPECT_NEAR(sum.pools[0].scale_out_link_busy, 1000 * bytes_per_token / (8 * 50e9 * sum.makespan_s), 1e-12);
  EXPECT_EQ(sum.pools[0].scale_up_link_busy, 0);
}

TEST(Serving, DisaggregatedRunConservesRequests) {
  ScenarioText t;
  t.domains = 3;
  t.pools = R"([{"name": "prefill", "role": "prefill", "instances": 2, "plan": "tp=8",
                 "scheduler": {"max_batch_size": 64, "max_tokens_per_step": 2048}},
                {"name": "decode", "role": "decode", "instances": 1, "plan": "tp=8",
                 "scheduler": {"max_batch_size": 32, "max_tokens_per_step": 64}}])";
  t.workload = R"({"arrivals": {"kind": "poisson", "rate": "50 req/s"}, "input_tokens": 500,
                   "output_tokens": {"distribution": "uniform", "min": 1, "max": 100}, "requests": 400, "seed": 2})";
  t.deployment_extra = R"(, "router": "round-robin")";
  ScenarioFile f(t);
  serve::ServingResult r = serve::run_serving(f.load(), serve::fixed_step_timers(ms(10)), quiet());
  expect_conserved(r, 400);
  // Every request with more than one output token moves its KV cache; one-token requests finish at prefill.
  long long multi = 0;
  for (const obs::RequestRecord& rec : r.metrics.records()) multi += rec.requested > 1 ? 1 : 0;
  EXPECT_EQ(r.kv_transfers, multi);
  EXPECT_LT(multi, 400);
}

}  // namespace
}  // namespace moesim
