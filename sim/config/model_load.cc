#include "sim/config/model_load.h"

#include <fmt/format.h>

#include "sim/config/description.h"

namespace moesim {

const char* tensor_group_name(TensorGroup g) {
  switch (g) {
    case TensorGroup::kAttention: return "attention";
    case TensorGroup::kRoutedExperts: return "routed_experts";
    case TensorGroup::kSharedExperts: return "shared_experts";
    case TensorGroup::kDenseFfn: return "dense_ffn";
    case TensorGroup::kRouter: return "router";
    case TensorGroup::kEmbedding: return "embedding";
    case TensorGroup::kLmHead: return "lm_head";
  }
  return "?";
}

bool ModelSpec::is_moe_layer(int layer) const {
  if (!moe || layer < leading_dense_layers) return false;
  return layer % moe_every == moe_offset;
}

int ModelSpec::moe_layer_count() const {
  int n = 0;
  for (int i = 0; i < layers; ++i) n += is_moe_layer(i) ? 1 : 0;
  return n;
}

const PrecisionVariant& ModelSpec::precision(const std::string& variant) const { return precisions.at(variant); }

namespace {

constexpr long long kMaxDim = 1 << 22;

int dim(ObjectReader& r, const std::string& key, long long lo = 1) {
  return static_cast<int>(r.integer(key, lo, kMaxDim));
}

MoeSpec read_moe(ObjectReader& r) {
  MoeSpec m;
  m.routed_experts = dim(r, "routed_experts");
  m.top_k = dim(r, "top_k");
  if (m.top_k > m.routed_experts)
    r.fail_at("top_k", fmt::format("top_k ({}) exceeds routed_experts ({})", m.top_k, m.routed_experts));
  m.shared_experts = static_cast<int>(r.integer_or("shared_experts", 0, 0, 64));
  m.expert_ffn = dim(r, "expert_ffn");
  m.shared_expert_ffn = m.shared_experts > 0 && r.has("shared_expert_ffn") ? dim(r, "shared_expert_ffn") : m.expert_ffn;
  const std::string scoring = r.one_of("scoring", {"softmax", "softmax_topk", "sigmoid"});
  m.scoring = scoring == "sigmoid" ? Scoring::kSigmoid : scoring == "softmax_topk" ? Scoring::kSoftmaxTopk : Scoring::kSoftmax;
  m.selection_bias = r.boolean_or("selection_bias", false);
  m.router_bias = r.boolean_or("router_bias", false);
  m.groups = static_cast<int>(r.integer_or("groups", 1, 1, 1024));
  m.topk_groups = static_cast<int>(r.integer_or("topk_groups", 1, 1, 1024));
  if (m.routed_experts % m.groups != 0)
    r.fail_at("groups", fmt::format("{} experts do not split into {} equal groups", m.routed_experts, m.groups));
  if (m.topk_groups > m.groups)
    r.fail_at("topk_groups", fmt::format("topk_groups ({}) exceeds groups ({})", m.topk_groups, m.groups));
  if (m.top_k > m.topk_groups * (m.routed_experts / m.groups))
    r.fail_at("top_k", fmt::format("top_k ({}) exceeds the experts in the {} selected groups", m.top_k, m.topk_groups));
  if (r.has("routed_scaling")) m.routed_scaling = r.number("routed_scaling", 0, 100);
  if (r.has("shared_expert_ffn") && m.shared_experts == 0)
    r.fail_at("shared_expert_ffn", "given, but shared_experts is 0");
  r.finish();
  return m;
}

MlaSpec read_mla(ObjectReader& r) {
  MlaSpec a;
  a.heads = dim(r, "heads");
  a.q_lora_rank = static_cast<int>(r.integer_or("q_lora_rank", 0, 0, kMaxDim));
  a.kv_lora_rank = dim(r, "kv_lora_rank");
  a.qk_nope_head_dim = dim(r, "qk_nope_head_dim");
  a.qk_rope_head_dim = dim(r, "qk_rope_head_dim");
  a.v_head_dim = dim(r, "v_head_dim");
  r.finish();
  return a;
}

GqaSpec read_gqa(ObjectReader& r, int model_layers) {
  GqaSpec a;
  a.heads = dim(r, "heads");
  a.kv_heads = dim(r, "kv_heads");
  if (a.heads % a.kv_heads != 0)
    r.fail_at("kv_heads", fmt::format("{} query heads are not a multiple of {} kv heads", a.heads, a.kv_heads));
  a.head_dim = dim(r, "head_dim");
  a.qkv_bias = r.boolean_or("qkv_bias", false);
  a.o_bias = r.boolean_or("o_bias", false);
  a.qk_norm = r.boolean_or("qk_norm", false);
  a.sinks = r.boolean_or("sinks", false);
  int total = 0;
  if (r.has("layers")) {
    for (ObjectReader& g : r.object_array("layers")) {
      GqaLayerGroup lg;
      const std::string kind = g.one_of("kind", {"full", "sliding", "chunked"});
      lg.kind = kind == "full" ? AttnLayerKind::kFull : kind == "sliding" ? AttnLayerKind::kSliding : AttnLayerKind::kChunked;
      if (lg.kind == AttnLayerKind::kSliding) lg.span = dim(g, "window");
      if (lg.kind == AttnLayerKind::kChunked) lg.span = dim(g, "chunk");
      lg.count = dim(g, "count");
      total += lg.count;
      g.finish();
      a.layer_groups.push_back(lg);
    }
    if (total != model_layers)
      r.fail_at("layers", fmt::format("the layer groups count {} layers, the model has {}", total, model_layers));
  } else {
    a.layer_groups.push_back({AttnLayerKind::kFull, 0, model_layers});
  }
  r.finish();
  return a;
}

PrecisionVariant read_precision(ObjectReader& r, const std::string& name, bool has_moe, bool has_dense,
                                bool has_shared) {
  PrecisionVariant v;
  v.name = name;
  v.native = r.boolean_or("native", false);
  if (auto note = r.optional_string("note")) v.note = *note;
  if (auto act = r.optional_string("activations")) {
    if (!activation_bytes(*act)) r.fail_at("activations", fmt::format("expected bf16, fp8 or fp16, got \"{}\"", *act));
    v.activations = *act;
  }
  ObjectReader t = r.child("tensors");
  for (TensorGroup g : kAllTensorGroups) {
    const std::string key = tensor_group_name(g);
    const bool needed = (g == TensorGroup::kRoutedExperts || g == TensorGroup::kRouter) ? has_moe
                        : g == TensorGroup::kSharedExperts                            ? has_shared
                        : g == TensorGroup::kDenseFfn                                 ? has_dense
                                                                                      : true;
    if (!t.has(key)) {
      if (needed) t.fail_at(key, fmt::format("missing the storage format of the {} tensors", key));
      continue;
    }
    const std::string f = t.string(key);
    const auto format = parse_format(f);
    if (!format) t.fail_at(key, fmt::format("expected one of {}, got \"{}\"", format_names(), f));
    v.formats[g] = *format;
  }
  t.finish();
  r.finish();
  return v;
}

}  // namespace

ModelSpec load_model(const std::string& path) {
  const nlohmann::json doc = read_json_file(path);
  ModelSpec m;
  m.file = path;
  ReadContext ctx{path, &m.provenance, true};
  ObjectReader root(doc, ctx, "");
  const DescriptionHead head = read_description_head(root, "model");
  m.id = head.id;
  m.name = head.name;

  ObjectReader a = root.child("architecture");
  m.layers = dim(a, "layers");
  m.hidden = dim(a, "hidden");
  m.vocab = dim(a, "vocab");
  m.context = dim(a, "context");
  m.tied_embeddings = a.boolean_or("tied_embeddings", false);
  if (auto moe = a.optional_child("moe")) m.moe = read_moe(*moe);
  if (auto dl = a.optional_child("dense_layers")) {
    if (dl->has("leading")) m.leading_dense_layers = static_cast<int>(dl->integer("leading", 0, m.layers));
    if (dl->has("moe_every")) {
      m.moe_every = static_cast<int>(dl->integer("moe_every", 1, m.layers));
      m.moe_offset = static_cast<int>(dl->integer("moe_offset", 0, m.moe_every - 1));
    }
    dl->finish();
    if (!m.moe) a.fail_at("dense_layers", "given, but the model has no \"moe\" block (every layer is dense)");
  }
  const bool any_dense = m.dense_layer_count() > 0;
  if (any_dense) {
    m.dense_ffn = dim(a, "dense_ffn");
  } else if (a.has("dense_ffn")) {
    a.fail_at("dense_ffn", "given, but no layer is dense (dense_layers says every layer is MoE)");
  }
  ObjectReader attn = a.child("attention");
  const std::string type = attn.one_of("type", {"mla", "gqa"});
  if (type == "mla") m.attention = read_mla(attn);
  else m.attention = read_gqa(attn, m.layers);
  m.mtp_layers = static_cast<int>(a.integer_or("mtp_layers", 0, 0, 16));
  if (m.mtp_layers > 0 && !m.moe) a.fail_at("mtp_layers", "multi-token prediction modules need an MoE model here");
  a.finish();

  ObjectReader precs = root.child("precisions");
  for (const std::string& name : precs.keys()) {
    ObjectReader p = precs.child(name);
    PrecisionVariant v = read_precision(p, name, m.moe.has_value(), any_dense,
                                        m.moe && m.moe->shared_experts > 0);
    if (v.native) {
      if (!m.native_precision.empty())
        precs.fail_at(name, fmt::format("a second native precision (\"{}\" is native already)", m.native_precision));
      m.native_precision = name;
    }
    m.precisions.emplace(name, std::move(v));
  }
  if (m.precisions.empty()) precs.fail("expected at least one precision variant");
  if (m.native_precision.empty()) precs.fail("expected one variant with \"native\": true");
  precs.finish();

  if (auto pub = root.optional_child("published")) {
    m.published_total_params = pub->optional_number("total_params", 1e6, 1e14);
    m.published_active_params = pub->optional_number("active_params", 1e6, 1e14);
    pub->finish();
  }
  root.finish();
  return m;
}

}  // namespace moesim
