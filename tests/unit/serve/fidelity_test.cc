// Issue #5: `moesim run`'s default fast step path (analytic all-to-all, per-layer aggregates) against
// --detailed (per-GPU programs on the event engine, fluid max-min network) at the serving level:
// throughput and the latency percentiles must agree within 2%. The same comparison over the shipped
// scenarios is tools/fast_vs_detailed.py (scenarios/FAST-VS-DETAILED.md); this is the CI-sized case.
#include <gtest/gtest.h>

#include <fmt/core.h>

#include "sim/obs/report.h"
#include "sim/serve/serving_sim.h"
#include "sim/serve/step_timers.h"
#include "tests/unit/serve/serve_fixture.h"

namespace moesim {
namespace {

using test::ScenarioFile;
using test::ScenarioText;

obs::Summary run(const ScenarioSpec& sc, serve::StepFidelity fidelity) {
  serve::ServingOptions o;
  o.progress = false;
  serve::ServingResult r = serve::run_serving(sc, serve::moe_step_timers(fidelity, CostModelKind::kCalibrated), o);
  return obs::summarize_run(sc, r);
}

double rel(double detailed, double fast) { return detailed / fast - 1; }
double pct(double detailed, double fast) { return 100 * rel(detailed, fast); }

// DeepSeek-R1 FP8, disaggregated over two HGX H200 nodes: prefill tp=8 on node 0, decode attention-DP + EP8
// on node 1 (dispatch/combine all-to-alls on NVLink; KV over InfiniBand), calibrated H200 costs, skewed routing.
// Measured at commit 4556b03: detailed/fast - 1 = +0.07% tok/s/GPU, TTFT p50 +0.05%, TPOT p50 -0.08%, E2E p50 -0.07%
// (26 step-grid points each); ~2.4 s for both runs.
TEST(Fidelity, FastAndDetailedServingAgreeWithinTwoPercent) {
  ScenarioText t;
  t.domains = 2;
  t.pools = R"([{"name": "prefill", "role": "prefill", "instances": 1, "plan": "tp=8",
                 "scheduler": {"max_batch_size": 16, "max_tokens_per_step": 8192}},
                {"name": "decode", "role": "decode", "instances": 1, "plan": "tp=1,ep=8",
                 "scheduler": {"max_batch_size": 256, "max_tokens_per_step": 256}}])";
  t.kv = R"({"dtype": "fp8", "memory_fraction": 0.9})";
  t.deployment_extra = R"(, "routing": "zipf:1.0")";
  t.workload = R"({"arrivals": {"kind": "closed-loop", "concurrency": 96}, "input_tokens": 1024,
                   "output_tokens": 128, "requests": 300, "warmup": {"requests": 40}, "seed": 5})";
  ScenarioFile f(t);
  const ScenarioSpec sc = f.load();
  const obs::Summary fast = run(sc, serve::StepFidelity::kFast);
  const obs::Summary det = run(sc, serve::StepFidelity::kDetailed);
  ASSERT_EQ(fast.finished, 300);
  ASSERT_EQ(det.finished, 300);
  // The two paths really ran different step simulations (the detailed one on the event engine), and
  // the runs are not trivially identical.
  EXPECT_GT(det.pools[1].step_evaluations, 0);
  EXPECT_NE(fast.tpot_ms.p50, det.tpot_ms.p50);
  fmt::print("detailed/fast - 1: tok/s/GPU {:+.3f}%, TTFT p50 {:+.3f}% p99 {:+.3f}%, TPOT p50 {:+.3f}% p99 {:+.3f}%, "
             "ITL p99 {:+.3f}%, E2E p50 {:+.3f}%; grid points {} / {}\n",
             pct(det.output_tokens_per_s_per_gpu, fast.output_tokens_per_s_per_gpu), pct(det.ttft_ms.p50, fast.ttft_ms.p50),
             pct(det.ttft_ms.p99, fast.ttft_ms.p99), pct(det.tpot_ms.p50, fast.tpot_ms.p50),
             pct(det.tpot_ms.p99, fast.tpot_ms.p99), pct(det.itl_ms.p99, fast.itl_ms.p99), pct(det.e2e_ms.p50, fast.e2e_ms.p50),
             fast.pools[1].step_evaluations, det.pools[1].step_evaluations);
  constexpr double kTol = 0.02;  // issue #5's target
  EXPECT_NEAR(rel(det.output_tokens_per_s_per_gpu, fast.output_tokens_per_s_per_gpu), 0, kTol);
  EXPECT_NEAR(rel(det.ttft_ms.p50, fast.ttft_ms.p50), 0, kTol);
  EXPECT_NEAR(rel(det.ttft_ms.p99, fast.ttft_ms.p99), 0, kTol);
  EXPECT_NEAR(rel(det.tpot_ms.p50, fast.tpot_ms.p50), 0, kTol);
  EXPECT_NEAR(rel(det.tpot_ms.p99, fast.tpot_ms.p99), 0, kTol);
  EXPECT_NEAR(rel(det.itl_ms.p99, fast.itl_ms.p99), 0, kTol);
  EXPECT_NEAR(rel(det.e2e_ms.p50, fast.e2e_ms.p50), 0, kTol);
}

}  // namespace
}  // namespace moesim
