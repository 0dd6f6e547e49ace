// Immutable, validated model descriptions (models/README.md). No JSON types.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "sim/config/provenance.h"
#include "sim/model/formats.h"

namespace moesim {

enum class Scoring { kSoftmax, kSoftmaxTopk, kSigmoid };

struct MoeSpec {
  int routed_experts = 0;
  int top_k = 0;
  int shared_experts = 0;
  int expert_ffn = 0;
  int shared_expert_ffn = 0;
  Scoring scoring = Scoring::kSoftmax;
  bool selection_bias = false;
  int groups = 1;
  int topk_groups = 1;
  double routed_scaling = 1.0;
  bool router_bias = false;  // a bias on the router logits (gpt-oss)
};

struct MlaSpec {
  int heads = 0;
  int q_lora_rank = 0;  // 0: q is projected directly from the hidden state
  int kv_lora_rank = 0;
  int qk_nope_head_dim = 0;
  int qk_rope_head_dim = 0;
  int v_head_dim = 0;
};

enum class AttnLayerKind { kFull, kSliding, kChunked };

struct GqaLayerGroup {
  AttnLayerKind kind = AttnLayerKind::kFull;
  int span = 0;  // window (sliding) or chunk (chunked) in tokens; 0 for full
  int count = 0;
};

struct GqaSpec {
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  bool qkv_bias = false;
  bool o_bias = false;
  bool qk_norm = false;
  bool sinks = false;
  std::vector<GqaLayerGroup> layer_groups;  // counts add up to the model's layers
};

enum class TensorGroup { kAttention, kRoutedExperts, kSharedExperts, kDenseFfn, kRouter, kEmbedding, kLmHead };
inline constexpr TensorGroup kAllTensorGroups[] = {TensorGroup::kAttention,     TensorGroup::kRoutedExperts,
                                                   TensorGroup::kSharedExperts, TensorGroup::kDenseFfn,
                                                   TensorGroup::kRouter,        TensorGroup::kEmbedding,
                                                   TensorGroup::kLmHead};
const char* tensor_group_name(TensorGroup g);

struct PrecisionVariant {
  std::string name;
  bool native = false;
  std::map<TensorGroup, Format> formats;
  std::string activations;  // "" = follow compute precision
  std::string note;
};

struct ModelSpec {
  std::string id;
  std::string name;
  std::string file;
  int layers = 0;
  int hidden = 0;
  int vocab = 0;
  int context = 0;
  bool tied_embeddings = false;
  int leading_dense_layers = 0;  // dense_layers.leading
  int moe_every = 1;             // layer i is MoE when i >= leading and i % moe_every == moe_offset
  int moe_offset = 0;
  int dense_ffn = 0;
  std::optional<MoeSpec> moe;
  std::variant<MlaSpec, GqaSpec> attention;
  int mtp_layers = 0;
  std::map<std::string, PrecisionVariant> precisions;
  std::string native_precision;
  std::optional<double> published_total_params;
  std::optional<double> published_active_params;
  Provenance provenance;

  bool is_moe_layer(int layer) const;
  int moe_layer_count() const;
  int dense_layer_count() const { return layers - moe_layer_count(); }
  const PrecisionVariant& precision(const std::string& name) const;  // throws std::out_of_range
};

}  // namespace moesim
