// The scenario's "dispatcher" reaches the step simulator: a staged dispatcher (library all-to-all with its
// quantise / regroup / gather copies, sim/model/ops.h) makes every MoE layer of an EP deployment slower than the
// fused default, and nothing else changes.
#include <gtest/gtest.h>

#include "sim/obs/report.h"
#include "sim/serve/serving_sim.h"
#include "sim/serve/step_timers.h"
#include "tests/unit/serve/serve_fixture.h"

namespace moesim {
namespace {

using test::ScenarioFile;
using test::ScenarioText;

obs::Summary run(const std::string& dispatcher) {
  ScenarioText t;
  t.pools = R"([{"name": "main", "role": "aggregated", "instances": 1, "plan": "tp=1,ep=8",
                 "scheduler": {"max_batch_size": 64, "max_tokens_per_step": 2048}}])";
  t.deployment_extra = dispatcher.empty() ? "" : R"(, "dispatcher": ")" + dispatcher + "\"";
  t.workload = R"({"arrivals": {"kind": "closed-loop", "concurrency": 256}, "input_tokens": 256,
                   "output_tokens": 64, "requests": 512, "seed": 3})";
  ScenarioFile f(t);
  const ScenarioSpec sc = f.load();
  EXPECT_EQ(sc.staged_dispatch, dispatcher == "staged");
  serve::ServingOptions o;
  o.progress = false;
  serve::ServingResult r =
      serve::run_serving(sc, serve::moe_step_timers(serve::StepFidelity::kFast, CostModelKind::kCalibrated), o);
  return obs::summarize_run(sc, r);
}

TEST(Dispatcher, StagedCopiesSlowTheEpSteps) {
  const obs::Summary fused = run("");
  const obs::Summary named = run("fused");
  const obs::Summary staged = run("staged");
  EXPECT_EQ(fused.tpot_ms.p50, named.tpot_ms.p50);  // "fused" is the default
  ASSERT_EQ(staged.finished, fused.finished);
  // At a full batch each GPU owns 64 tokens and receives ~64 x 8 = 512 routed rows per MoE layer: regroup
  // 512 x 14,576 B + gather 512 x 28,672 B + quantisation 64 x 21,744 B = 23.5 MB, ~5.5 us at 4.3 TB/s, ~0.3 ms
  // over 58 MoE layers: a step of tens of ms gets slower by a few percent, not more.
  EXPECT_GT(staged.tpot_ms.p50, fused.tpot_ms.p50);
  EXPECT_LT(staged.tpot_ms.p50, 1.2 * fused.tpot_ms.p50);
}

}  // namespace
}  // namespace moesim
