// Attention ops of one layer on one GPU. Formulas: specs.md C.2 (FlashMLA
// absorbed decode, aiconfigurator's MLA SOL terms), C.1 (KV bytes).
#include <algorithm>
#include <cmath>
#include <variant>

#include "sim/model/ops_build.h"

namespace moesim {

double attended_pairs(AttnLayerKind kind, int span, std::int64_t prefix, std::int64_t fresh) {
  // S(n) = Σ_{p=0}^{n-1} attended(p); the new tokens are positions prefix .. prefix+fresh-1.
  const double w = span;
  auto S = [&](double n) -> double {
    switch (kind) {
      case AttnLayerKind::kFull: return n * (n + 1) / 2;
      case AttnLayerKind::kSliding:
        if (span <= 0 || n <= w) return n * (n + 1) / 2;
        return w * (w + 1) / 2 + (n - w) * w;
      case AttnLayerKind::kChunked: {
        if (span <= 0) return n * (n + 1) / 2;
        const double q = std::floor(n / w);
        const double r = n - q * w;
        return q * w * (w + 1) / 2 + r * (r + 1) / 2;
      }
    }
    return 0;
  };
  return S(static_cast<double>(prefix + fresh)) - S(static_cast<double>(prefix));
}

namespace ops_detail {

namespace {

// Keys one sequence's new tokens read from the cache and the new tokens together (per kv head).
double keys_read(AttnLayerKind kind, int span, std::int64_t prefix, std::int64_t fresh) {
  const double full = static_cast<double>(prefix + fresh);
  if (kind == AttnLayerKind::kFull || span <= 0) return full;
  return std::min(full, static_cast<double>(span) + static_cast<double>(fresh) - 1);
}

struct BatchSums {
  std::int64_t seqs = 0, tokens = 0, context = 0, keys = 0;  // keys: prefix + new over the sequences
};

BatchSums sums(const std::vector<SequenceShape>& s) {
  BatchSums b;
  for (const auto& q : s) {
    ++b.seqs;
    b.tokens += q.new_tokens;
    b.context += q.context;
    b.keys += q.context + q.new_tokens;
  }
  return b;
}

void set_attention_shape(Op& op, const AttentionInputs& in, const BatchSums& b, std::int64_t heads,
                         std::int64_t kv_dim, std::int64_t v_dim, std::int64_t kv_heads) {
  op.shape.batch = b.seqs;
  op.shape.context = b.seqs > 0 ? b.context / b.seqs : 0;
  op.shape.new_tokens = b.seqs > 0 ? b.tokens / b.seqs : 0;
  op.shape.heads = heads;
  op.shape.kv_dim = kv_dim;
  op.shape.v_dim = v_dim;
  op.shape.kv_heads = kv_heads;
  op.shape.kv_bytes_per_element = in.kv_bytes_per_element;
}

std::vector<PlannedOp> mla_ops(const AttentionInputs& in, const MlaSpec& a) {
  const ModelSpec& m = *in.model;
  const GpuSpec& gpu = *in.gpu;
  const BatchSums b = sums(in.seqs);
  const std::int64_t T = b.tokens;
  const std::int64_t H = m.hidden;
  const std::int64_t nh = a.heads / in.tp;
  const std::int64_t qk = a.qk_nope_head_dim + a.qk_rope_head_dim;  // 192
  const std::int64_t lat = a.kv_lora_rank;                            // 512
  const std::int64_t kvd = lat + a.qk_rope_head_dim;                  // 576
  const double kvb = in.kv_bytes_per_element;
  const double wbpp = format_info(in.format).bytes_per_param;
  const OpGroup G = OpGroup::kAttention;
  std::vector<PlannedOp> ops;

  ops.push_back(elementwise("attn_norm", G, static_cast<double>(T * H) * 2 * 2));
  if (a.q_lora_rank > 0) {
    ops.push_back(gemm("q_a_proj", G, T, a.q_lora_rank, H, in.format, gpu));
  }
  ops.push_back(gemm("kv_a_proj", G, T, kvd, H, in.format, gpu));
  ops.push_back(elementwise("qkv_a_norm_rope", G,
                            static_cast<double>(T * (a.q_lora_rank + kvd)) * 2 * 2 +
                                static_cast<double>(T * nh * a.qk_rope_head_dim) * 2 * 2));
  if (a.q_lora_rank > 0) {
    ops.push_back(gemm("q_b_proj", G, T, nh * qk, a.q_lora_rank, in.format, gpu));
  } else {
    ops.push_back(gemm("q_proj", G, T, nh * qk, H, in.format, gpu));
  }

  // Absorbed BMM, one per head (aiconfigurator: ops 2·t·n·128·512, mem n·(t·640 + 128·512)).
  auto absorb = [&](const char* name, std::int64_t n_out, std::int64_t k_in) {
    PlannedOp p;
    p.group = G;
    p.op.kind = OpKind::kGemm;
    p.op.name = name;
    p.op.precision = compute_precision(in.format, gpu);
    p.op.shape.m = T;
    p.op.shape.n = n_out;
    p.op.shape.k = k_in;
    p.op.shape.heads = nh;
    p.op.flops = 2.0 * static_cast<double>(T * nh * n_out * k_in);
    p.op.bytes = T > 0 ? static_cast<double>(nh) * (static_cast<double>(T * (n_out + k_in)) * 2 +
                                                    static_cast<double>(n_out * k_in) * wbpp)
                       : 0;
    return p;
  };

  if (in.phase == Phase::kDecode) {
    ops.push_back(absorb("mla_absorb_uk", lat, a.qk_nope_head_dim));
    // FlashMLA: FLOPs 2·h·s_q·s_k·(d_k + d_v); bytes: the latent cache read once per sequence plus q and out.
    PlannedOp core;
    core.group = G;
    core.op.kind = OpKind::kAttentionDecode;
    core.op.name = "mla_decode";
    core.op.precision = kvb < 2 && gpu.has(Precision::kFp8) ? Precision::kFp8 : Precision::kBf16;
    double flops = 0, bytes = 0;
    for (const auto& q : in.seqs) {
      const double keys = attended_pairs(AttnLayerKind::kFull, 0, q.context, q.new_tokens);
      flops += 2.0 * static_cast<double>(nh) * keys * static_cast<double>(kvd + lat);
      bytes += static_cast<double>(q.context + q.new_tokens) * static_cast<double>(kvd) * kvb +
               static_cast<double>(q.new_tokens * nh) * static_cast<double>(kvd + lat) * 2 +
               static_cast<double>(q.new_tokens * kvd) * kvb;  // the new token's cache write
    }
    core.op.flops = flops;
    core.op.bytes = bytes;
    set_attention_shape(core.op, in, b, nh, kvd, lat, 1);
    ops.push_back(core);
    ops.push_back(absorb("mla_absorb_uv", a.v_head_dim, lat));
  } else {
    // Non-absorbed prefill: kv_b up-projects the latent of every key (prefix + new).
    ops.push_back(gemm("kv_b_proj", G, b.keys, nh * (a.qk_nope_head_dim + a.v_head_dim), lat, in.format, gpu));
    PlannedOp core;
    core.group = G;
    core.op.kind = OpKind::kAttentionPrefill;
    core.op.name = "mla_prefill";
    core.op.precision = Precision::kBf16;
    double flops = 0, bytes = 0;
    const double dsum = static_cast<double>(qk + a.v_head_dim);  // 192 + 128
    for (const auto& q : in.seqs) {
      flops += 2.0 * static_cast<double>(nh) * dsum * attended_pairs(AttnLayerKind::kFull, 0, q.context, q.new_tokens);
      // aiconfigurator context MLA: n·(kv.memory·full_s·(192+128) + 2·s·(192+128)), K/V up-projected in BF16.
      bytes += static_cast<double>(nh) * (2.0 * static_cast<double>(q.context + q.new_tokens) * dsum +
                                          2.0 * static_cast<double>(q.new_tokens) * dsum) +
               static_cast<double>(q.new_tokens * kvd) * kvb;
    }
    core.op.flops = flops;
    core.op.bytes = bytes;
    set_attention_shape(core.op, in, b, nh, qk, a.v_head_dim, nh);
    ops.push_back(core);
  }
  ops.push_back(gemm("o_proj", G, T, H, nh * a.v_head_dim, in.format, gpu));
  return ops;
}

std::vector<PlannedOp> gqa_ops(const AttentionInputs& in, const GqaSpec& g) {
  const ModelSpec& m = *in.model;
  const GpuSpec& gpu = *in.gpu;
  const BatchSums b = sums(in.seqs);
  const std::int64_t T = b.tokens;
  const std::int64_t H = m.hidden;
  const std::int64_t h = g.heads / in.tp;
  const std::int64_t kvh = (g.kv_heads + in.tp - 1) / in.tp;
  const std::int64_t d = g.head_dim;
  const double kvb = in.kv_bytes_per_element;
  const OpGroup G = OpGroup::kAttention;
  std::vector<PlannedOp> ops;
  ops.push_back(elementwise("attn_norm", G, static_cast<double>(T * H) * 2 * 2));
  ops.push_back(gemm("qkv_proj", G, T, (h + 2 * kvh) * d, H, in.format, gpu));
  ops.push_back(elementwise(g.qk_norm ? "qk_norm_rope" : "rope", G, static_cast<double>(T * (h + kvh) * d) * 2 * 2));
  PlannedOp core;
  core.group = G;
  const bool decode = in.phase == Phase::kDecode;
  core.op.kind = decode ? OpKind::kAttentionDecode : OpKind::kAttentionPrefill;
  const char* variant = in.kind == AttnLayerKind::kSliding   ? "_sliding"
                        : in.kind == AttnLayerKind::kChunked ? "_chunked"
                                                             : "";
  core.op.name = std::string(decode ? "gqa_decode" : "gqa_prefill") + variant;
  core.op.precision = Precision::kBf16;
  double flops = 0, bytes = 0;
  for (const auto& q : in.seqs) {
    const double pairs = attended_pairs(in.kind, in.span, q.context, q.new_tokens);
    flops += 4.0 * static_cast<double>(h * d) * pairs;  // QK^T and PV
    bytes += 2.0 * static_cast<double>(kvh * d) * keys_read(in.kind, in.span, q.context, q.new_tokens) * kvb +
             static_cast<double>(q.new_tokens * h * d) * 2 * 2 +
             2.0 * static_cast<double>(q.new_tokens * kvh * d) * kvb;  // cache write
  }
  core.op.flops = flops;
  core.op.bytes = bytes;
  set_attention_shape(core.op, in, b, h, d, d, kvh);
  ops.push_back(core);
  ops.push_back(gemm("o_proj", G, T, H, h * d, in.format, gpu));
  return ops;
}

}  // namespace

double input_bytes(Precision p) { return p == Precision::kBf16 || p == Precision::kFp16 ? 2.0 : 1.0; }

PlannedOp gemm(std::string name, OpGroup group, std::int64_t m, std::int64_t n, std::int64_t k, Format f,
               const GpuSpec& gpu) {
  PlannedOp p;
  p.group = group;
  p.op.kind = OpKind::kGemm;
  p.op.name = std::move(name);
  p.op.precision = compute_precision(f, gpu);
  p.op.shape.m = m;
  p.op.shape.n = n;
  p.op.shape.k = k;
  p.op.flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  if (m > 0) {
    p.op.bytes = static_cast<double>(n) * static_cast<double>(k) * format_info(f).bytes_per_param +
                 static_cast<double>(m * k) * input_bytes(p.op.precision) + static_cast<double>(m * n) * 2;
  }
  p.weight_bpp = format_info(f).bytes_per_param;
  p.in_bytes = input_bytes(p.op.precision);
  return p;
}

PlannedOp elementwise(std::string name, OpGroup group, double bytes) {
  PlannedOp p;
  p.group = group;
  p.op.kind = OpKind::kElementwise;
  p.op.name = std::move(name);
  p.op.bytes = bytes;
  return p;
}

std::vector<PlannedOp> attention_ops(const AttentionInputs& in) {
  std::vector<PlannedOp> ops;
  if (const auto* a = std::get_if<MlaSpec>(&in.model->attention)) {
    ops = mla_ops(in, *a);
  } else {
    ops = gqa_ops(in, std::get<GqaSpec>(in.model->attention));
  }
  return ops;
}

}  // namespace ops_detail
}  // namespace moesim
