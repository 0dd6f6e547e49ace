#include "sim/model/model_math.h"

#include <cmath>

namespace moesim {

namespace {

struct AttentionParams {
  double linear = 0;  // projection weights and biases
  double norms = 0;   // q_a / kv_a norms (MLA) or q/k norms (GQA)
};

AttentionParams attention_params(const ModelSpec& m) {
  const double h = m.hidden;
  AttentionParams p;
  if (const auto* a = std::get_if<MlaSpec>(&m.attention)) {
    const double nh = a->heads;
    const double qk = a->qk_nope_head_dim + a->qk_rope_head_dim;
    if (a->q_lora_rank > 0) {
      p.linear += h * a->q_lora_rank + static_cast<double>(a->q_lora_rank) * nh * qk;  // q_a, q_b
      p.norms += a->q_lora_rank;
    } else {
      p.linear += h * nh * qk;  // q
    }
    p.linear += h * (a->kv_lora_rank + a->qk_rope_head_dim);                                  // kv_a
    p.linear += static_cast<double>(a->kv_lora_rank) * nh * (a->qk_nope_head_dim + a->v_head_dim);  // kv_b
    p.linear += nh * a->v_head_dim * h;                                                       // o
    p.norms += a->kv_lora_rank;
  } else {
    const auto& g = std::get<GqaSpec>(m.attention);
    const double q = static_cast<double>(g.heads) * g.head_dim;
    const double kv = static_cast<double>(g.kv_heads) * g.head_dim;
    p.linear += h * q + 2 * h * kv + q * h;
    if (g.qkv_bias) p.linear += q + 2 * kv;
    if (g.o_bias) p.linear += h;
    if (g.sinks) p.linear += g.heads;  // one learned sink logit per head
    if (g.qk_norm) p.norms += 2.0 * g.head_dim;
  }
  return p;
}

double swiglu(double hidden, double ffn) { return 3.0 * hidden * ffn; }

}  // namespace

ParamCounts count_params(const ModelSpec& m) {
  ParamCounts c;
  const double h = m.hidden;
  const AttentionParams ap = attention_params(m);
  c.attention_per_layer = ap.linear;
  if (m.dense_layer_count() > 0) c.dense_ffn_layer = swiglu(h, m.dense_ffn);
  if (m.moe) {
    c.expert = swiglu(h, m.moe->expert_ffn);
    c.shared_expert = m.moe->shared_experts * swiglu(h, m.moe->shared_expert_ffn);
    const bool bias = m.moe->selection_bias || m.moe->router_bias;
    c.router_per_layer = m.moe->routed_experts * h + (bias ? m.moe->routed_experts : 0);
  }
  const int moe_layers = m.moe_layer_count();
  const int dense_layers = m.dense_layer_count();
  const double embedding = static_cast<double>(m.vocab) * h;

  c.by_group[TensorGroup::kAttention] = ap.linear * m.layers;
  c.by_group[TensorGroup::kDenseFfn] = c.dense_ffn_layer * dense_layers;
  c.by_group[TensorGroup::kRoutedExperts] = m.moe ? c.expert * m.moe->routed_experts * moe_layers : 0;
  c.by_group[TensorGroup::kSharedExperts] = c.shared_expert * moe_layers;
  c.by_group[TensorGroup::kRouter] = c.router_per_layer * moe_layers;
  c.by_group[TensorGroup::kEmbedding] = embedding;
  c.by_group[TensorGroup::kLmHead] = m.tied_embeddings ? 0 : embedding;
  // Two RMSNorms per layer, the attention-internal norms, and the final norm.
  c.norms = (2 * h + ap.norms) * m.layers + h;

  for (const auto& [g, n] : c.by_group) c.total += n;
  c.total += c.norms;

  const double active_moe_layer =
      m.moe ? c.expert * m.moe->top_k + c.shared_expert + c.router_per_layer : 0;
  c.active_linear = ap.linear * m.layers + c.dense_ffn_layer * dense_layers + active_moe_layer * moe_layers + embedding;
  c.active = c.active_linear + embedding;  // + the input embedding table (tied models share it with the head)
  if (m.tied_embeddings) c.active = c.active_linear;

  if (m.mtp_layers > 0 && m.moe) {
    // DeepSeek-V3 MTP module: eh_proj (2H -> H), two input norms, one decoder layer (MoE), a final norm.
    const double layer = ap.linear + c.expert * m.moe->routed_experts + c.shared_expert + c.router_per_layer +
                         2 * h + ap.norms;
    c.mtp = m.mtp_layers * (2 * h * h + 3 * h + layer);
  }
  return c;
}

double linear_flops_per_token(const ModelSpec& m) { return 2.0 * count_params(m).active_linear; }

double attention_flops_per_token_per_cached_token(const ModelSpec& m) {
  if (const auto* a = std::get_if<MlaSpec>(&m.attention)) {
    const double dk = a->kv_lora_rank + a->qk_rope_head_dim;
    const double dv = a->kv_lora_rank;
    return 2.0 * a->heads * (dk + dv) * m.layers;
  }
  const auto& g = std::get<GqaSpec>(m.attention);
  return 4.0 * g.heads * g.head_dim * m.layers;
}

const char* kv_dtype_name(KvDtype d) {
  switch (d) {
    case KvDtype::kBf16: return "bf16";
    case KvDtype::kFp8: return "fp8";
    case KvDtype::kFp8FlashMla: return "fp8_flashmla";
  }
  return "?";
}

namespace {

double kv_bytes_per_layer(const ModelSpec& m, KvDtype dtype, int tp) {
  if (const auto* a = std::get_if<MlaSpec>(&m.attention)) {
    const double latent = a->kv_lora_rank;
    const double rope = a->qk_rope_head_dim;
    switch (dtype) {
      case KvDtype::kBf16: return (latent + rope) * 2;
      case KvDtype::kFp8: return latent + rope;
      // FlashMLA: e4m3 latent + one FP32 scale per 128 latent values + BF16 RoPE part (656 B for 512 + 64).
      case KvDtype::kFp8FlashMla: return latent + std::ceil(latent / 128) * 4 + rope * 2;
    }
  }
  const auto& g = std::get<GqaSpec>(m.attention);
  const double kv_heads = std::ceil(static_cast<double>(g.kv_heads) / tp);
  const double bytes = dtype == KvDtype::kBf16 ? 2.0 : 1.0;
  return 2.0 * kv_heads * g.head_dim * bytes;
}

}  // namespace

double kv_bytes_per_token(const ModelSpec& m, KvDtype dtype, int tp) {
  return kv_bytes_per_layer(m, dtype, tp) * m.layers;
}

double kv_bytes_per_token_full_layers_only(const ModelSpec& m, KvDtype dtype, int tp) {
  int full = m.layers;
  if (const auto* g = std::get_if<GqaSpec>(&m.attention)) {
    full = 0;
    for (const auto& lg : g->layer_groups) full += lg.kind == AttnLayerKind::kFull ? lg.count : 0;
  }
  return kv_bytes_per_layer(m, dtype, tp) * full;
}

const char* dispatch_dtype_name(DispatchDtype d) {
  switch (d) {
    case DispatchDtype::kFp8: return "fp8";
    case DispatchDtype::kNvfp4: return "nvfp4";
    case DispatchDtype::kBf16: return "bf16";
  }
  return "?";
}

double dispatch_bytes_per_token_per_layer(const ModelSpec& m, DispatchDtype d) {
  if (!m.moe) return 0;
  const double h = m.hidden;
  const double k = m.moe->top_k;
  switch (d) {
    // DeepEP: FP8 payload + one FP32 scale per 128 channels + 16 B of metadata (specs.md C.4).
    case DispatchDtype::kFp8: return k * (h + std::ceil(h / 128) * 4 + 16);
    // DeepEP NVFP4: packed E2M1 + one FP8 scale per 16 + 16 B of metadata.
    case DispatchDtype::kNvfp4: return k * (h / 2 + std::ceil(h / 16) + 16);
    case DispatchDtype::kBf16: return k * 2 * h;
  }
  return 0;
}

double combine_bytes_per_token_per_layer(const ModelSpec& m) {
  if (!m.moe) return 0;
  return m.moe->top_k * 2.0 * m.hidden;
}

double weight_bytes(const ModelSpec& m, const PrecisionVariant& v, bool include_mtp) {
  const ParamCounts c = count_params(m);
  double bytes = c.norms * 2;  // norms stay in BF16
  for (const auto& [g, n] : c.by_group) {
    if (n == 0) continue;
    bytes += n * format_info(v.formats.at(g)).bytes_per_param;
  }
  if (include_mtp && c.mtp > 0) {
    // The MTP module's decoder layer takes the formats of a decoder layer; eh_proj and norms are BF16.
    const double h = m.hidden;
    const double layer_attn = c.attention_per_layer;
    const double experts = c.expert * m.moe->routed_experts;
    bytes += m.mtp_layers * (layer_attn * format_info(v.formats.at(TensorGroup::kAttention)).bytes_per_param +
                             experts * format_info(v.formats.at(TensorGroup::kRoutedExperts)).bytes_per_param +
                             (c.shared_expert > 0 ? c.shared_expert * format_info(v.formats.at(TensorGroup::kSharedExperts)).bytes_per_param : 0) +
                             c.router_per_layer * format_info(v.formats.at(TensorGroup::kRouter)).bytes_per_param +
                             (2 * h * h + 5 * h) * 2);
  }
  return bytes;
}

}  // namespace moesim
