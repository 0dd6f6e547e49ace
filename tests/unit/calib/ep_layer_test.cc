// The ep_layer records and their simulated counterpart (sim/calib/ep_layer_*.h).
#include <gtest/gtest.h>

#include <numeric>

#include "sim/calib/ep_layer_check.h"
#include "sim/calib/ep_layer_record.h"
#include "sim/config/error.h"
#include "sim/config/hardware_load.h"
#include "sim/config/model_load.h"
#include "sim/model/routing.h"
#include "tests/unit/test_util.h"

namespace moesim::calib {
namespace {

using test::source_path;

std::string line(const std::string& routing, int gpus, int tokens, const std::string& phases) {
  return R"({"gpu":"NVIDIA H200","kernel":"ep_layer","dtype":"fp8","shape":{"gpus":)" + std::to_string(gpus) +
         R"(,"tokens_per_gpu":)" + std::to_string(tokens) +
         R"(,"hidden":7168,"experts":256,"topk":8,"expert_ffn":2048,"routing":")" + routing +
         R"(","shared_expert":false},"median_us":1000,"p10_us":950,"p90_us":1100,"reps":40,"check_rel_err":0,)"
         R"("skew_bias":0.1,"hot_experts":8,"dedup":"per_token_expert","dispatch_row_bytes":7392,)"
         R"("combine_row_bytes":14336,"recv_max_over_mean":1.7)" + phases + "}";
}
const std::string kPhases =
    R"(,"phases_gpu0_us":{"router":30,"permute":12,"counts":60,"dispatch":100,"experts":700,"combine":90,"unpermute":6})";

TEST(EpLayerRecord, ReadsTheLayerLinesOnly) {
  const std::string other = R"({"gpu":"NVIDIA H200","kernel":"copy","dtype":"u8","shape":{"bytes":1}})";
  const auto rs = parse_ep_layer_records(other + "\n" + line("skewed", 8, 256, kPhases) + "\n", "x.jsonl");
  ASSERT_EQ(rs.size(), 1u);
  const EpLayerRecord& r = rs[0];
  EXPECT_EQ(r.where, "x.jsonl:2");
  EXPECT_EQ(r.gpus, 8);
  EXPECT_EQ(r.tokens_per_gpu, 256);
  EXPECT_EQ(r.routing, "skewed");
  EXPECT_EQ(r.hot_experts, 8);
  EXPECT_DOUBLE_EQ(r.skew_bias, 0.1);
  EXPECT_DOUBLE_EQ(r.phases_us.at("counts"), 60);
  // router = 30 + 12 (permute) + 6 (unpermute) = 48; the host round trip is kept apart.
  const auto g = measured_phase_groups(r);
  EXPECT_DOUBLE_EQ(g.at("router"), 48);
  EXPECT_DOUBLE_EQ(g.at("dispatch"), 100);
  EXPECT_DOUBLE_EQ(g.at("experts"), 700);
  EXPECT_DOUBLE_EQ(g.at("combine"), 90);
  EXPECT_DOUBLE_EQ(g.at("counts"), 60);
}

TEST(EpLayerRecord, BadLinesNameTheLineAndMember) {
  try {
    parse_ep_layer_records("\n" + line("uniform", 8, 1, ""), "y.jsonl");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), "y.jsonl:2");
    EXPECT_EQ(e.pointer(), "/phases_gpu0_us");
  }
  try {
    parse_ep_layer_records(line("zipf", 8, 1, kPhases), "z.jsonl");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.pointer(), "/shape/routing");
  }
}

class EpLayerPredict : public ::testing::Test {
 protected:
  EpLayerSetup setup{load_model(source_path("models/deepseek-r1.json")),
                     load_system(source_path("hardware/systems/hgx-h200.json")), nullptr};  // roofline costs
};

TEST_F(EpLayerPredict, DispatchIsBoundByTheNvlinkBytes) {
  // EP8, 4096 tokens per GPU, one FP8 row (7168 B + 56 x 4 B scales = 7392 B) per (token, expert): each GPU sends
  // 4096 x 8 x 7392 B, 7/8 of it to other GPUs (uniform) = 211.9 MB; at 450 GB/s per direction x 0.82 achieved
  // (hardware/systems/hgx-h200.json) = 369 GB/s that is 574.3 us (+ latency). The combine sends 14336 B per row
  // back: 411.0 MB -> 1113.8 us.
  const auto r = parse_ep_layer_records(line("uniform", 8, 4096, kPhases), "u.jsonl").at(0);
  const auto p = predict_ep_layer(r, setup, ep_layer_routing(r, setup.model));
  const double dispatch_floor_us = 4096.0 * 8 * 7392 * 7 / 8 / 369e9 * 1e6;
  const double combine_floor_us = 4096.0 * 8 * 14336 * 7 / 8 / 369e9 * 1e6;
  EXPECT_NEAR(dispatch_floor_us, 574.3, 0.1);
  // Multinomial routing makes the busiest link carry a little more than the mean: within 5 % above the floor.
  EXPECT_GE(p.phases_us.at("dispatch"), dispatch_floor_us);
  EXPECT_LE(p.phases_us.at("dispatch"), dispatch_floor_us * 1.05 + 10);
  EXPECT_GE(p.phases_us.at("combine"), combine_floor_us * 0.95);
  EXPECT_LE(p.phases_us.at("combine"), combine_floor_us * 1.05 + 10);
  EXPECT_NEAR(p.load_max_over_mean, 1.0, 0.05);
  double sum = 0;
  for (const auto& [k, v] : p.phases_us) sum += v;
  EXPECT_DOUBLE_EQ(p.layer_us, sum);
}

TEST_F(EpLayerPredict, SkewedRouterLoadsTheHotGpu) {
  // +0.1 on experts 0..7 (all on GPU 0 with contiguous placement) makes GPU 0 the most loaded; the uniform record
  // routes uniformly.
  const auto u = parse_ep_layer_records(line("uniform", 8, 1024, kPhases), "u.jsonl").at(0);
  const auto s = parse_ep_layer_records(line("skewed", 8, 1024, kPhases), "s.jsonl").at(0);
  EXPECT_EQ(ep_layer_routing(u, setup.model).kind, RoutingKind::kUniform);
  const RoutingSpec rs = ep_layer_routing(s, setup.model);
  ASSERT_EQ(rs.kind, RoutingKind::kFixed);
  const auto pi = inclusion_probabilities(rs.fixed_popularity, 8);
  const double gpu0 = std::accumulate(pi.begin(), pi.begin() + 32, 0.0);  // mean per GPU: 8 / 8 = 1
  // The hot GPU's share against the measured one (recv_max_over_mean at T = 16384 tokens per GPU, where
  // sampling noise is small: validate/data/h200-sxm-x{8,4,2}/ep_layer{8,4,2}.jsonl: 1.7264, 1.3115, 1.1119).
  // GPU 0 holds experts 0..31 at EP8, 0..63 at EP4, 0..127 at EP2; the mean GPU gets 8 / N of the k = 8 picks.
  const double ep4 = std::accumulate(pi.begin(), pi.begin() + 64, 0.0) / 2;
  const double ep2 = std::accumulate(pi.begin(), pi.begin() + 128, 0.0) / 4;
  EXPECT_NEAR(gpu0, 1.7264, 0.05 * 1.7264);
  EXPECT_NEAR(ep4, 1.3115, 0.05 * 1.3115);
  EXPECT_NEAR(ep2, 1.1119, 0.05 * 1.1119);
  const auto pu = predict_ep_layer(u, setup, ep_layer_routing(u, setup.model));
  const auto ps = predict_ep_layer(s, setup, rs);
  EXPECT_GT(ps.load_max_over_mean, pu.load_max_over_mean + 0.2);
  EXPECT_GT(ps.layer_us, pu.layer_us);
}

TEST_F(EpLayerPredict, ShapeMismatchIsAConfigError) {
  auto r = parse_ep_layer_records(line("uniform", 8, 16, kPhases), "u.jsonl").at(0);
  r.expert_ffn = 1536;
  try {
    predict_ep_layer(r, setup, RoutingSpec{});
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.pointer(), "/architecture/moe/expert_ffn");
  }
}

}  // namespace
}  // namespace moesim::calib
