// StepSimulator::rebatch: one simulator moved across batch shapes gives
// exactly what a new simulator per shape gives (the serving step timer relies
// on it), through per-token and aggregate routing, TBO and prefill.
#include <gtest/gtest.h>

#include "sim/config/error.h"
#include "sim/config/hardware_load.h"
#include "sim/config/model_load.h"
#include "sim/step/step.h"
#include "tests/unit/test_util.h"

namespace moesim {
namespace {

using test::source_path;

StepSetup ep16(const std::string& routing, StepMode mode) {
  StepSetup s;
  s.model = load_model(source_path("models/deepseek-r1.json"));
  s.cluster = ClusterSpec{load_system(source_path("hardware/systems/hgx-h200.json")), 2};
  s.plan = parse_plan("tp=1,ep=16,redundant=16", "test", "");
  s.routing = parse_routing(routing, "test");
  s.eplb = true;
  s.mode = mode;
  s.network = NetworkMode::kAnalytic;
  s.seed = 7;
  s.batch = BatchShape::decode(16, 1000);
  return s;
}

void expect_same(const StepResult& a, const StepResult& b) {
  EXPECT_EQ(a.step_time, b.step_time);
  EXPECT_EQ(a.per_token_routing, b.per_token_routing);
  EXPECT_EQ(a.critical_gpu, b.critical_gpu);
  EXPECT_EQ(a.max_expert_rows, b.max_expert_rows);
  EXPECT_EQ(a.expert_load_max_over_mean, b.expert_load_max_over_mean);
  EXPECT_EQ(a.mean_distinct_experts, b.mean_distinct_experts);
  EXPECT_EQ(a.events, b.events);
  ASSERT_EQ(a.layer_types.size(), b.layer_types.size());
  for (std::size_t t = 0; t < a.layer_types.size(); ++t)
    EXPECT_EQ(a.layer_types[t].seconds_per_layer, b.layer_types[t].seconds_per_layer);
  ASSERT_EQ(a.comms.size(), b.comms.size());
  for (std::size_t c = 0; c < a.comms.size(); ++c) EXPECT_EQ(a.comms[c].bytes, b.comms[c].bytes);
}

TEST(StepRebatch, SameResultsAsANewSimulatorPerShape) {
  for (const char* routing : {"uniform", "zipf:1.2"}) {
    for (const StepMode mode : {StepMode::kFast, StepMode::kDetailed}) {
      const StepSetup base = ep16(routing, mode);
      StepSimulator moved(base);
      // Per-token (16 and 64 tokens), aggregate with dedup ratios (4096), TBO, back to per-token, prefill.
      const struct {
        BatchShape batch;
        Overlap overlap;
      } shapes[] = {{BatchShape::decode(64, 3000), Overlap::kNone},
                    {BatchShape::decode(4096, 500), Overlap::kNone},
                    {BatchShape::decode(2048, 1500), Overlap::kTbo},
                    {BatchShape::decode(16, 1000), Overlap::kNone},
                    {BatchShape::prefill(16, 1024, 0), Overlap::kNone}};
      for (const auto& [batch, overlap] : shapes) {
        SCOPED_TRACE(std::string(routing) + (mode == StepMode::kFast ? " fast " : " detailed ") +
                     std::to_string(batch.tokens()) + " tokens");
        moved.rebatch(batch, overlap);
        StepSetup fresh_setup = base;
        fresh_setup.batch = batch;
        fresh_setup.overlap = overlap;
        StepSimulator fresh(fresh_setup);
        for (std::uint64_t step = 0; step < 2; ++step) expect_same(moved.run(step), fresh.run(step));
      }
    }
  }
}

TEST(StepRebatch, TboWithOneSequenceThrowsAndLeavesTheSimulatorUsable) {
  StepSimulator sim(ep16("uniform", StepMode::kFast));
  const StepResult before = sim.run(0);
  EXPECT_THROW(sim.rebatch(BatchShape::decode(1, 1000), Overlap::kTbo), ConfigError);
  expect_same(sim.run(0), before);
}

}  // namespace
}  // namespace moesim
