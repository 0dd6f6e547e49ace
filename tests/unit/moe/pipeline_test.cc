// Pipeline stages (plan pp > 1): the layer split, the per-stage expansion and the chained step.
#include <gtest/gtest.h>

#include "sim/config/error.h"
#include "sim/config/hardware_load.h"
#include "sim/config/model_load.h"
#include "sim/hw/topology.h"
#include "sim/model/ops.h"
#include "sim/model/plan.h"
#include "sim/step/step.h"
#include "tests/unit/test_util.h"

namespace moesim {
namespace {

using test::source_path;

TEST(Pipeline, StageLayersSplitEvenlyFirstStagesTakeTheRemainder) {
  // 61 layers over 2 stages: 31 + 30; over 4: 16 + 15 + 15 + 15 (61 = 4 x 15 + 1).
  EXPECT_EQ(stage_layers(61, 2, 0).first, 0);
  EXPECT_EQ(stage_layers(61, 2, 0).count, 31);
  EXPECT_EQ(stage_layers(61, 2, 1).first, 31);
  EXPECT_EQ(stage_layers(61, 2, 1).count, 30);
  const int first[] = {0, 16, 31, 46}, count[] = {16, 15, 15, 15};
  for (int s = 0; s < 4; ++s) {
    EXPECT_EQ(stage_layers(61, 4, s).first, first[s]) << s;
    EXPECT_EQ(stage_layers(61, 4, s).count, count[s]) << s;
  }
  // pp = layers: one layer each, none empty.
  EXPECT_EQ(stage_layers(5, 5, 4).first, 4);
  EXPECT_EQ(stage_layers(5, 5, 4).count, 1);
  EXPECT_EQ(stage_layers(7, 1, 0).count, 7);
}

StepSetup setup(const std::string& plan, int domains) {
  StepSetup s;
  s.model = load_model(source_path("models/deepseek-r1.json"));
  s.cluster = ClusterSpec{load_system(source_path("hardware/systems/hgx-h200.json")), domains};
  s.plan = parse_plan(plan, "test", "");
  s.batch = BatchShape::decode(64, 2000);
  s.mode = StepMode::kFast;
  s.seed = 11;
  return s;
}

TEST(Pipeline, EachStageExpandsItsOwnLayersEmbeddingFirstLmHeadLast) {
  StepSetup s = setup("tp=8,pp=2,mtp=1", 2);
  StepSimulator sim(s);
  ASSERT_EQ(sim.stages(), 2);
  const ForwardPass& a = sim.forward_pass(0, 0);
  const ForwardPass& b = sim.forward_pass(0, 1);
  // DeepSeek-R1: 61 layers, the first 3 dense; stage 0 = layers 0-30 (3 dense + 28 MoE), stage 1 = layers 31-60
  // (30 MoE) + the MTP layer.
  EXPECT_EQ(a.first_layer, 0);
  EXPECT_EQ(a.layer_type.size(), 31u);
  EXPECT_EQ(a.moe_layers, 28);
  EXPECT_EQ(b.first_layer, 31);
  EXPECT_EQ(b.layer_type.size(), 31u);  // 30 + MTP
  EXPECT_EQ(b.moe_layers, 31);
  EXPECT_TRUE(b.types[static_cast<std::size_t>(b.layer_type.back())].mtp);
  for (int g = 0; g < 8; ++g) {
    EXPECT_EQ(a.head[g].size(), 1u);  // embedding
    EXPECT_TRUE(a.tail[g].empty());
    EXPECT_TRUE(b.head[g].empty());
    EXPECT_EQ(b.tail[g].size(), 6u);  // final norm, lm_head, sampling; and again for the MTP head
  }
  ExpansionOptions bad;
  bad.stage = 2;
  EXPECT_THROW(expand_forward(s.model, s.model.precisions.at(s.model.native_precision), s.cluster.system.gpu, s.plan,
                              s.batch, bad),
               ConfigError);
}

TEST(Pipeline, StagesChainWithTheActivationSendBetweenNodes) {
  // One HGX H200 node with tp=8 (one stage) against two nodes with tp=8,pp=2. Fast mode, so every stage is a
  // sequence of layers; the routing draws are keyed by the model's layer index, so each layer draws the same
  // experts in both runs: the two stages' times add up to the one-stage step (to rounding, one ps per op).
  const StepResult one = simulate_step(setup("tp=8", 1));
  StepSetup s2 = setup("tp=8,pp=2", 2);
  const StepResult two = simulate_step(s2);
  ASSERT_EQ(two.pipeline.size(), 2u);
  const auto a = two.pipeline[0].stage_time.count(), b = two.pipeline[1].stage_time.count();
  EXPECT_NEAR(static_cast<double>(a + b), static_cast<double>(one.step_time.count()), 1000.0);  // within 1 ns
  EXPECT_GT(a, 0);
  EXPECT_GT(b, 0);

  // The send: each of the 8 GPUs of node 0 sends the batch's 64 tokens' hidden state and residual (BF16:
  // 2 x 7168 x 2 = 28,672 B per token, 1.835 MB) to its peer on node 1 over its own 400 Gb/s NIC (rail-optimised:
  // GPU i of both nodes on rail i), of which transfers achieve 0.97 (hardware/systems/hgx-h200.json):
  // 1,835,008 B / 48.5 GB/s = 37.84 us, + the route's latency.
  const double bytes = 64.0 * 2 * 7168 * 2;
  EXPECT_DOUBLE_EQ(two.pipeline[0].send_bytes, 8 * bytes);
  const Topology topo = build_topology(s2.cluster);
  const double latency = to_seconds(topo.route_latency(GpuId(0), GpuId(8)));
  const double send = bytes / (400e9 / 8 * 0.97) + latency;
  EXPECT_NEAR(to_seconds(two.pipeline[0].send_time), send, 1e-9);
  EXPECT_EQ(two.pipeline[1].send_time.count(), 0);
  EXPECT_NEAR(to_seconds(two.step_time), to_seconds(Duration{a + b}) + send, 1e-9);
  // Pipelined: one batch per slowest stage.
  EXPECT_NEAR(two.pipelined_tokens_per_second, 64 / to_seconds(Duration{std::max(a, b)}), 1e-6);
  // The send is reported with the collectives, all of it between the nodes.
  bool found = false;
  for (const CommReport& c : two.comms) {
    if (c.kind != CommKind::kPipelineSend) continue;
    found = true;
    EXPECT_DOUBLE_EQ(c.bytes, 8 * bytes);
    EXPECT_DOUBLE_EQ(c.scale_out_bytes, 8 * bytes);
  }
  EXPECT_TRUE(found);
  // The stages' reports merge: 3 dense + 58 MoE layers in all.
  int layers = 0;
  for (const LayerTypeReport& lt : two.layer_types) layers += lt.layers;
  EXPECT_EQ(layers, 61);
  EXPECT_GE(two.critical_gpu, 8);  // the last stage finishes the step
}

TEST(Pipeline, DetailedModeMatchesFastOnTheSameChain) {
  StepSetup f = setup("tp=8,pp=2", 2);
  StepSetup d = f;
  d.mode = StepMode::kDetailed;
  d.network = NetworkMode::kAnalytic;
  const StepResult rf = simulate_step(f), rd = simulate_step(d);
  EXPECT_EQ(rf.step_time.count(), rd.step_time.count());
  EXPECT_GT(rd.events, 0u);
}

}  // namespace
}  // namespace moesim
