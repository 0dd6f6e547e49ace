// Op expansion: shapes, FLOPs and bytes of single ops against hand-worked
// numbers (specs.md A.1, C.2), and the structure of the layer programs.
#include "sim/model/ops.h"

#include <gtest/gtest.h>

#include "sim/config/error.h"
#include "sim/config/hardware_load.h"
#include "sim/config/model_load.h"
#include "tests/unit/test_util.h"

namespace moesim {
namespace {

using test::source_path;

ModelSpec model(const std::string& id) { return load_model(source_path("models/" + id + ".json")); }
GpuSpec h200() { return load_gpu(source_path("hardware/gpus/h200-sxm.json")); }

const PlannedOp& find(const LayerProgram& p, const std::string& name) {
  for (const auto& o : p.ops) {
    if (o.op.name == name) return o;
  }
  throw std::runtime_error("no op " + name);
}

bool has(const LayerProgram& p, const std::string& name) {
  for (const auto& o : p.ops) {
    if (o.op.name == name) return true;
  }
  return false;
}

ParallelPlan plan(const std::string& s) { return parse_plan(s, "test", ""); }

// The program's instructions in order: op names, "send:<collective>", "wait:<collective>".
std::vector<std::string> instr_names(const LayerProgram& p) {
  std::vector<std::string> seq;
  for (const Instr& i : p.seq) {
    if (i.type == Instr::Type::kCompute) seq.push_back(p.ops[i.index].op.name);
    else seq.push_back(std::string(i.type == Instr::Type::kSend ? "send:" : "wait:") + comm_kind_name(p.comms[i.index].kind));
  }
  return seq;
}

TEST(Ops, AttendedPairsByHand) {
  // Full causal, 4 new tokens on an empty cache: 1 + 2 + 3 + 4 = 10.
  EXPECT_DOUBLE_EQ(attended_pairs(AttnLayerKind::kFull, 0, 0, 4), 10);
  // After a prefix of 2: positions 2..5 attend 3 + 4 + 5 + 6 = 18.
  EXPECT_DOUBLE_EQ(attended_pairs(AttnLayerKind::kFull, 0, 2, 4), 18);
  // Sliding window 2: 1 + 2 + 2 + 2 = 7.
  EXPECT_DOUBLE_EQ(attended_pairs(AttnLayerKind::kSliding, 2, 0, 4), 7);
  // Chunks of 2: positions 0..3 attend 1, 2, 1, 2 = 6; position 5 alone (chunk 4..5) attends 2.
  EXPECT_DOUBLE_EQ(attended_pairs(AttnLayerKind::kChunked, 2, 0, 4), 6);
  EXPECT_DOUBLE_EQ(attended_pairs(AttnLayerKind::kChunked, 2, 5, 1), 2);
  // Decode over 1000 cached tokens with a 128 window: 128; full: 1001.
  EXPECT_DOUBLE_EQ(attended_pairs(AttnLayerKind::kSliding, 128, 1000, 1), 128);
  EXPECT_DOUBLE_EQ(attended_pairs(AttnLayerKind::kFull, 0, 1000, 1), 1001);
}

TEST(Ops, DeepSeekDecodeTp8MlaShapes) {
  const ModelSpec m = model("deepseek-r1");
  const GpuSpec gpu = h200();
  const ForwardPass fp = expand_forward(m, m.precision("fp8"), gpu, plan("tp=8"), BatchShape::decode(1, 1023), {});
  EXPECT_FALSE(fp.ep_mode);  // ep=1 with tp=8: tensor-parallel MoE
  ASSERT_EQ(fp.layer_type.size(), 61u);
  EXPECT_EQ(fp.moe_layers, 58);
  const LayerProgram& p = fp.programs[static_cast<std::size_t>(fp.layer_type[10])][3];
  // q_a: [1, 7168] x [7168, 1536], replicated across TP ranks.
  const Op& qa = find(p, "q_a_proj").op;
  EXPECT_EQ(qa.shape.m, 1);
  EXPECT_EQ(qa.shape.n, 1536);
  EXPECT_EQ(qa.shape.k, 7168);
  EXPECT_EQ(qa.precision, Precision::kFp8);
  // q_b: 16 heads per GPU x 192.
  EXPECT_EQ(find(p, "q_b_proj").op.shape.n, 16 * 192);
  // o_proj: k = 16 heads x 128.
  EXPECT_EQ(find(p, "o_proj").op.shape.k, 16 * 128);
  // Weight bytes of o_proj: 2048 x 7168 x (1 + 4/128^2) B, + 1·2048 B in (FP8) + 1·7168·2 B out.
  EXPECT_NEAR(find(p, "o_proj").op.bytes, 2048.0 * 7168 * (1 + 4.0 / 16384) + 2048 + 7168 * 2, 1e-6);
  // FlashMLA core: FLOPs 2·h·s_k·(576+512) = 2·16·1024·1088; bytes 1024·576·2 (latent read)
  // + 16·1088·2 (q, out) + 576·2 (new entry).
  const Op& core = find(p, "mla_decode").op;
  EXPECT_EQ(core.kind, OpKind::kAttentionDecode);
  EXPECT_DOUBLE_EQ(core.flops, 2.0 * 16 * 1024 * 1088);
  EXPECT_DOUBLE_EQ(core.bytes, 1024.0 * 576 * 2 + 16.0 * 1088 * 2 + 576 * 2);
  EXPECT_EQ(core.shape.context, 1023);
  EXPECT_EQ(core.shape.heads, 16);
  // Absorbed BMMs (aiconfigurator): 2·t·n·128·512 FLOPs.
  EXPECT_DOUBLE_EQ(find(p, "mla_absorb_uk").op.flops, 2.0 * 1 * 16 * 128 * 512);
  // TP-MoE: the routed experts are 1/8 slices (2048 / 8 = 256 wide), no all-to-all.
  const PlannedOp& gu = find(p, "experts.gate_up");
  EXPECT_TRUE(gu.routed);
  EXPECT_EQ(gu.op.kind, OpKind::kGroupedGemm);
  EXPECT_EQ(gu.op.shape.n, 2 * 256);
  for (const auto& c : p.comms) {
    EXPECT_NE(c.kind, CommKind::kDispatch);
  }
}

TEST(Ops, DeepSeekEpDecodeProgramOrder) {
  const ModelSpec m = model("deepseek-r1");
  const ForwardPass fp =
      expand_forward(m, m.precision("fp8"), h200(), plan("tp=1,ep=8"), BatchShape::decode(64, 2000), {});
  EXPECT_TRUE(fp.ep_mode);
  // 64 sequences over 8 DP ranks: 8 each, each owns its 8 tokens.
  for (int g = 0; g < 8; ++g) {
    EXPECT_EQ(fp.tokens.seqs[static_cast<std::size_t>(g)], 8);
    EXPECT_EQ(fp.tokens.owned_tokens[static_cast<std::size_t>(g)], 8);
  }
  // Dispatch bytes per token copy (specs.md C.4): 7168 + 7168/128·4 + 16 = 7408; combine 2·7168.
  EXPECT_DOUBLE_EQ(fp.dispatch_bytes_per_copy, 7408);
  EXPECT_DOUBLE_EQ(fp.combine_bytes_per_copy, 14336);
  const LayerProgram& p = fp.programs[static_cast<std::size_t>(fp.layer_type[5])][0];
  // send dispatch, shared expert, wait dispatch, experts, send/wait combine, unpermute.
  const auto seq = instr_names(p);
  const auto pos = [&](const std::string& s) { return std::find(seq.begin(), seq.end(), s) - seq.begin(); };
  EXPECT_LT(pos("permute"), pos("send:dispatch"));
  EXPECT_LT(pos("send:dispatch"), pos("shared_expert.gate_up"));
  EXPECT_LT(pos("shared_expert.down"), pos("wait:dispatch"));
  EXPECT_LT(pos("wait:dispatch"), pos("experts.gate_up"));
  EXPECT_LT(pos("experts.down"), pos("send:combine"));
  EXPECT_LT(pos("wait:combine"), pos("unpermute_residual"));
  // Shared expert on the 8 owned tokens, whole (2048 wide).
  EXPECT_EQ(find(p, "shared_expert.gate_up").op.shape.m, 8);
  EXPECT_EQ(find(p, "shared_expert.gate_up").op.shape.n, 2 * 2048);
  // Dense layers (0..2) have a dense FFN of 18432 and no router.
  const LayerProgram& d = fp.programs[static_cast<std::size_t>(fp.layer_type[0])][0];
  EXPECT_EQ(find(d, "dense_ffn.gate_up").op.shape.n, 2 * 18432);
  EXPECT_FALSE(has(d, "router_gemm"));
}

TEST(Ops, GroupedGemmFill) {
  const ModelSpec m = model("deepseek-r1");
  ForwardPass fp = expand_forward(m, m.precision("fp8"), h200(), plan("ep=8"), BatchShape::decode(8, 100), {});
  PlannedOp op = find(fp.programs[static_cast<std::size_t>(fp.layer_type[5])][0], "experts.gate_up");
  const std::vector<std::int64_t> tokens = {3, 0, 5};
  fill_grouped_gemm(op, tokens);
  // 8 rows; FLOPs 2·4096·7168·8; bytes: 2 experts' weights 4096·7168·(1+4/16384) + 8·7168 (FP8 in) + 8·4096·2.
  EXPECT_DOUBLE_EQ(op.op.flops, 2.0 * 4096 * 7168 * 8);
  EXPECT_NEAR(op.op.bytes, 2 * 4096.0 * 7168 * (1 + 4.0 / 16384) + 8 * 7168.0 + 8 * 4096.0 * 2, 1e-3);
  EXPECT_EQ(op.op.shape.m, 8);
}

TEST(Ops, StagedDispatcherAddsItsCopiesAroundTheAllToAll) {
  const ModelSpec m = model("deepseek-r1");
  ExpansionOptions staged;
  staged.dispatcher = Dispatcher::kStaged;
  const ForwardPass fp = expand_forward(m, m.precision("fp8"), h200(), plan("ep=8"), BatchShape::decode(64, 100), staged);
  const LayerProgram& p = fp.programs[static_cast<std::size_t>(fp.layer_type[5])][0];
  const auto seq = instr_names(p);
  const auto pos = [&](const std::string& s) { return std::find(seq.begin(), seq.end(), s) - seq.begin(); };
  EXPECT_LT(pos("topk_grouped"), pos("dispatch_quant"));
  EXPECT_LT(pos("dispatch_quant"), pos("permute"));
  EXPECT_LT(pos("wait:dispatch"), pos("experts.regroup"));
  EXPECT_LT(pos("experts.regroup"), pos("experts.gate_up"));
  EXPECT_LT(pos("experts.down"), pos("experts.gather"));
  EXPECT_LT(pos("experts.gather"), pos("send:combine"));
  // 8 owned tokens: read the BF16 row (7168·2 B), write the FP8 payload copy (7408 B: 7168 + 56·4 scales + 16).
  EXPECT_DOUBLE_EQ(find(p, "dispatch_quant").op.bytes, 8.0 * (7168 * 2 + 7408));
  // Regroup: read the received copy (7408 B), write the FP8 GEMM input row (7168 B). Gather: read and write the
  // BF16 output row (2·14336 B). Both are routed: 5 rows on this GPU.
  PlannedOp regroup = find(p, "experts.regroup");
  EXPECT_TRUE(regroup.routed);
  fill_routed_activation(regroup, 5);
  EXPECT_DOUBLE_EQ(regroup.op.bytes, 5.0 * (7408 + 7168));
  PlannedOp gather = find(p, "experts.gather");
  fill_routed_activation(gather, 5);
  EXPECT_DOUBLE_EQ(gather.op.bytes, 5.0 * 2 * 14336);
  // The fused dispatcher (default) has none of them; a BF16 payload needs no quantisation.
  const ForwardPass fused = expand_forward(m, m.precision("fp8"), h200(), plan("ep=8"), BatchShape::decode(64, 100), {});
  const LayerProgram& f = fused.programs[static_cast<std::size_t>(fused.layer_type[5])][0];
  for (const char* name : {"dispatch_quant", "experts.regroup", "experts.gather"}) EXPECT_FALSE(has(f, name)) << name;
  staged.dispatch = DispatchDtype::kBf16;
  const ForwardPass bf = expand_forward(m, m.precision("fp8"), h200(), plan("ep=8"), BatchShape::decode(64, 100), staged);
  EXPECT_FALSE(has(bf.programs[static_cast<std::size_t>(bf.layer_type[5])][0], "dispatch_quant"));
}

TEST(Ops, MlaPrefillIsQuadratic) {
  const ModelSpec m = model("deepseek-r1");
  const auto v = m.precision("fp8");
  auto core_flops = [&](std::int64_t len) {
    const ForwardPass fp = expand_forward(m, v, h200(), plan("ep=8"), BatchShape::prefill(8, len), {});
    return find(fp.programs[0][0], "mla_prefill").op.flops;
  };
  // 2·128·(192+128)·len(len+1)/2 for one sequence per GPU.
  EXPECT_DOUBLE_EQ(core_flops(1000), 2.0 * 128 * 320 * 1000 * 1001 / 2);
  EXPECT_NEAR(core_flops(2000) / core_flops(1000), 4.0, 0.01);
}

TEST(Ops, GqaSlidingAndChunkedLayers) {
  const ModelSpec oss = model("gpt-oss-120b");
  const ForwardPass fp = expand_forward(oss, oss.precision(oss.native_precision), h200(), plan("tp=1,ep=8"),
                                        BatchShape::decode(8, 4096), {});
  // 18 sliding-128 + 18 full, interleaved evenly: two layer types, alternating.
  ASSERT_EQ(fp.types.size(), 2u);
  EXPECT_NE(fp.layer_type[0], fp.layer_type[1]);
  EXPECT_EQ(fp.layer_type[0], fp.layer_type[2]);
  for (std::size_t t = 0; t < fp.types.size(); ++t) {
    const Op& core = find(fp.programs[t][0], fp.types[t].attn == AttnLayerKind::kSliding ? "gqa_decode_sliding" : "gqa_decode").op;
    const double keys = fp.types[t].attn == AttnLayerKind::kSliding ? 128 : 4097;
    // 64 heads x 64 dim: FLOPs 4·64·64·keys.
    EXPECT_DOUBLE_EQ(core.flops, 4.0 * 64 * 64 * keys) << fp.types[t].name;
  }
  const ModelSpec llama = model("llama4-maverick");
  const ForwardPass fl = expand_forward(llama, llama.precision(llama.native_precision), h200(), plan("tp=1,ep=8"),
                                        BatchShape::decode(8, 100), {});
  int chunked = 0, moe = 0;
  for (const int t : fl.layer_type) {
    chunked += fl.types[static_cast<std::size_t>(t)].attn == AttnLayerKind::kChunked ? 1 : 0;
    moe += fl.types[static_cast<std::size_t>(t)].moe ? 1 : 0;
  }
  EXPECT_EQ(chunked, 36);
  EXPECT_EQ(moe, 24);
}

TEST(Ops, QwenTpSplitsKvHeads) {
  const ModelSpec q = model("qwen3-235b-a22b");
  const ForwardPass fp = expand_forward(q, q.precision(q.native_precision), h200(), plan("tp=4,ep=4"),
                                        BatchShape::decode(4, 10), {});
  // 64/4 = 16 q heads and 4/4 = 1 kv head per GPU: qkv n = (16 + 2)·128.
  EXPECT_EQ(find(fp.programs[0][0], "qkv_proj").op.shape.n, 18 * 128);
  // tp=4 in EP mode: a reduce-scatter after attention, an all-gather after the combine.
  bool rs = false, ag = false;
  for (const auto& c : fp.programs[0][0].comms) {
    rs = rs || c.kind == CommKind::kAttnReduceScatter;
    ag = ag || c.kind == CommKind::kFfnAllGather;
  }
  EXPECT_TRUE(rs && ag);
  // 4 tokens in one TP group of 4: each GPU owns one.
  EXPECT_EQ(fp.tokens.owned_tokens[2], 1);
}

TEST(Ops, MtpAddsALayerAndAHead) {
  const ModelSpec m = model("deepseek-r1");
  const ForwardPass fp =
      expand_forward(m, m.precision("fp8"), h200(), plan("ep=8,mtp=1"), BatchShape::decode(8, 100), {});
  EXPECT_EQ(fp.layer_type.size(), 62u);
  EXPECT_EQ(fp.moe_layers, 59);
  EXPECT_TRUE(fp.types[static_cast<std::size_t>(fp.layer_type.back())].mtp);
  int heads = 0;
  for (const auto& o : fp.tail[0]) heads += o.op.name.find("lm_head") != std::string::npos ? 1 : 0;
  EXPECT_EQ(heads, 2);
}

TEST(Ops, UnsupportedPlansAreConfigErrors) {
  const ModelSpec m = model("deepseek-r1");
  const auto v = m.precision("fp8");
  ExpansionOptions stage2;
  stage2.stage = 2;  // pp=2 has stages 0 and 1
  EXPECT_THROW(expand_forward(m, v, h200(), plan("tp=8,pp=2"), BatchShape::decode(1, 1), stage2), ConfigError);
  EXPECT_THROW(expand_forward(m, v, h200(), plan("tp=3"), BatchShape::decode(1, 1), {}), ConfigError);  // check_plan
  EXPECT_THROW(expand_forward(m, v, h200(), plan("ep=8"), BatchShape::decode(0, 1), {}), ConfigError);
}

}  // namespace
}  // namespace moesim
