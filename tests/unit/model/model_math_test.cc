// Per-token figures of the shipped models against shared/reference/specs.md
// (A.2, A.3, C.1, C.4), within 0.5%.
#include "sim/model/model_math.h"

#include <gtest/gtest.h>

#include "sim/config/error.h"
#include "sim/config/hardware_load.h"
#include "sim/config/model_load.h"
#include "sim/model/plan.h"
#include "tests/unit/test_util.h"

namespace moesim {
namespace {

using test::source_path;

ModelSpec model(const std::string& id) { return load_model(source_path("models/" + id + ".json")); }

void expect_within(double actual, double expected, double rel, const std::string& what) {
  EXPECT_NEAR(actual, expected, std::abs(expected) * rel) << what << ": " << actual << " vs " << expected;
}

TEST(ModelMath, DeepSeekR1ParametersMatchSpecs) {
  // specs.md A.2: 671.03B total, 37.55B active incl. input embedding, 36.62B active linear, 11.61B MTP.
  const ParamCounts c = count_params(model("deepseek-r1"));
  expect_within(c.total, 671.03e9, 0.005, "total");
  expect_within(c.active, 37.55e9, 0.005, "active");
  expect_within(c.active_linear, 36.62e9, 0.005, "active linear");
  expect_within(c.mtp, 11.61e9, 0.005, "mtp");
  // Per layer: MLA 187.1M, routed expert 44.04M, dense FFN 396.4M, router 1.835M.
  expect_within(c.attention_per_layer, 187.1e6, 0.005, "MLA per layer");
  expect_within(c.expert, 44.04e6, 0.005, "expert");
  expect_within(c.dense_ffn_layer, 396.4e6, 0.005, "dense FFN layer");
  expect_within(c.router_per_layer, 1.835e6, 0.005, "router");
}

TEST(ModelMath, KimiK2AndMistralLarge3ParametersMatchSpecs) {
  const ParamCounts k2 = count_params(model("kimi-k2-thinking"));
  expect_within(k2.total, 1026.4e9, 0.005, "K2 total");
  expect_within(k2.active, 32.86e9, 0.005, "K2 active");
  const ParamCounts ml3 = count_params(model("mistral-large-3"));
  expect_within(ml3.total, 673.4e9, 0.005, "ML3 total");
  expect_within(ml3.active, 39.95e9, 0.005, "ML3 active");
}

TEST(ModelMath, WiderSetTotalsMatchSpecs) {
  // specs.md A.3 computed totals / actives. gpt-oss's active is quoted excluding the input embedding, and its
  // total lacks the 39.8M expert biases the schema has no field for (0.03%).
  expect_within(count_params(model("gpt-oss-120b")).total, 116.83e9, 0.005, "gpt-oss total");
  expect_within(count_params(model("gpt-oss-120b")).active_linear, 5.13e9, 0.005, "gpt-oss active");
  expect_within(count_params(model("qwen3-235b-a22b")).total, 235.09e9, 0.005, "qwen3 total");
  expect_within(count_params(model("qwen3-235b-a22b")).active, 22.19e9, 0.005, "qwen3 active");
  expect_within(count_params(model("llama4-maverick")).total, 400.71e9, 0.005, "llama4 total");
  expect_within(count_params(model("llama4-maverick")).active, 17.18e9, 0.005, "llama4 active");
  expect_within(count_params(model("mixtral-8x22b")).total, 140.62e9, 0.005, "mixtral total");
  expect_within(count_params(model("mixtral-8x22b")).active, 39.15e9, 0.005, "mixtral active");
}

TEST(ModelMath, FlopsPerToken) {
  // specs.md A.2: 2 x active linear params = 73.2 GFLOP (DS-R1), 63.4 (K2), 78.0 (ML3);
  // attention 2·128·(576+512)·61 = 16.99 MFLOP per token per cached token.
  expect_within(linear_flops_per_token(model("deepseek-r1")), 73.2e9, 0.005, "DS linear");
  expect_within(linear_flops_per_token(model("kimi-k2-thinking")), 63.4e9, 0.005, "K2 linear");
  expect_within(linear_flops_per_token(model("mistral-large-3")), 78.0e9, 0.005, "ML3 linear");
  EXPECT_DOUBLE_EQ(attention_flops_per_token_per_cached_token(model("deepseek-r1")), 2.0 * 128 * 1088 * 61);
  EXPECT_DOUBLE_EQ(attention_flops_per_token_per_cached_token(model("kimi-k2-thinking")), 2.0 * 64 * 1088 * 61);
}

TEST(ModelMath, KvCacheBytesPerToken) {
  const ModelSpec ds = model("deepseek-r1");
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(ds, KvDtype::kBf16), 70272);         // (512+64)·2·61
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(ds, KvDtype::kFp8FlashMla), 40016);  // 656·61
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(ds, KvDtype::kFp8), 35136);          // 576·61
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(ds, KvDtype::kBf16, 8), 70272);      // MLA latent is replicated under TP
  // GQA: Qwen3 2·4·128·94·2 = 192,512 B; kv heads split by TP (4 heads over TP 4 -> 1 each).
  const ModelSpec qwen = model("qwen3-235b-a22b");
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(qwen, KvDtype::kBf16), 192512);
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(qwen, KvDtype::kBf16, 4), 192512 / 4);
  // gpt-oss: 18 full layers of 2·8·64·2 = 2,048 B -> 36,864 B (specs.md A.3).
  EXPECT_DOUBLE_EQ(kv_bytes_per_token_full_layers_only(model("gpt-oss-120b"), KvDtype::kBf16), 36864);
}

TEST(ModelMath, DispatchAndCombineBytes) {
  // specs.md C.4: DS-R1 dispatch 8·(7168 + 7168/128·4 + 16) = 59,264 B; combine 8·2·7168 = 114,688 B.
  const ModelSpec ds = model("deepseek-r1");
  EXPECT_DOUBLE_EQ(dispatch_bytes_per_token_per_layer(ds, DispatchDtype::kFp8), 59264);
  EXPECT_DOUBLE_EQ(combine_bytes_per_token_per_layer(ds), 114688);
  // NVFP4: 8·(3584 + 448 + 16) = 32,384 B.
  EXPECT_DOUBLE_EQ(dispatch_bytes_per_token_per_layer(ds, DispatchDtype::kNvfp4), 32384);
  // Mistral Large 3 (k=4): 29,632 / 57,344 B; Qwen3 33,920 / 65,536 B.
  EXPECT_DOUBLE_EQ(dispatch_bytes_per_token_per_layer(model("mistral-large-3"), DispatchDtype::kFp8), 29632);
  EXPECT_DOUBLE_EQ(combine_bytes_per_token_per_layer(model("mistral-large-3")), 57344);
  EXPECT_DOUBLE_EQ(dispatch_bytes_per_token_per_layer(model("qwen3-235b-a22b"), DispatchDtype::kFp8), 33920);
}

TEST(ModelMath, WeightBytesFollowTheFormats) {
  // Kimi K2 Thinking native: routed experts INT4 g32 at 0.5625 B/param, the rest BF16:
  // specs.md A.2: 570.8 GB INT4 experts + 23.4 GB BF16 rest ≈ 594 GB.
  const ModelSpec k2 = model("kimi-k2-thinking");
  expect_within(weight_bytes(k2, k2.precision(k2.native_precision)), 594e9, 0.005, "K2 Thinking weights");
  // DS-R1 FP8 with 128x128 FP32 scales and BF16 embedding/head/router ≈ 673 GB (specs.md A.2, approx.).
  const ModelSpec ds = model("deepseek-r1");
  expect_within(weight_bytes(ds, ds.precision("fp8")), 673e9, 0.01, "DS-R1 FP8 weights");
}

TEST(Plan, DeepSeekOnNvl72WithEp72) {
  const ModelSpec ds = model("deepseek-r1");
  const SystemSpec nvl = load_system(source_path("hardware/systems/gb200-nvl72.json"));
  const ParallelPlan p = parse_plan("ep=72", "test", "");
  check_plan(p, ds, "test", "");
  const MemoryPlan mem = plan_memory(ds, ds.precision("fp8"), nvl.gpu, p, MemoryOptions{});
  // 256 experts over 72 GPUs: at most ceil(256/72) = 4 per GPU; 58 layers x 4 x 44.05 MB = 10.22 GB of experts.
  EXPECT_EQ(mem.expert_slots_per_gpu, 4);
  expect_within(mem.weight_bytes_by_group.at(TensorGroup::kRoutedExperts), 58.0 * 4 * 44.04e6 * (1 + 4.0 / 16384),
                0.001, "experts per GPU");
  // Attention DP: every GPU holds all 61 layers of MLA in FP8 (11.41 GB) and the BF16 embedding + head (3.71 GB).
  EXPECT_TRUE(mem.fits);
  EXPECT_GT(mem.kv_tokens_per_gpu, 1e6);
}

TEST(Plan, RejectsPlansThatDoNotDivideTheModel) {
  const ModelSpec ds = model("deepseek-r1");
  EXPECT_THROW(check_plan(parse_plan("ep=512", "x", ""), ds, "x", ""), ConfigError);  // more ranks than experts
  EXPECT_NO_THROW(check_plan(parse_plan("ep=512,redundant=256", "x", ""), ds, "x", ""));
  EXPECT_THROW(check_plan(parse_plan("tp=3", "x", ""), ds, "x", ""), ConfigError);  // 128 heads
  EXPECT_THROW(parse_plan("ep=eight", "x", ""), ConfigError);
  EXPECT_THROW(parse_plan("foo=1", "x", ""), ConfigError);
}

TEST(Plan, ModelThatDoesNotFitSaysSo) {
  // DeepSeek-R1 in BF16 (≈1.34 TB) on one H100 with TP1: nowhere near 80 GB.
  const ModelSpec ds = model("deepseek-r1");
  const SystemSpec h100 = load_system(source_path("hardware/systems/hgx-h100.json"));
  const MemoryPlan mem = plan_memory(ds, ds.precision("bf16"), h100.gpu, parse_plan("tp=8", "x", ""), MemoryOptions{});
  EXPECT_FALSE(mem.fits);
  EXPECT_EQ(mem.kv_tokens_per_gpu, 0);
}

}  // namespace
}  // namespace moesim
