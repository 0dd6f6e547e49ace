#include "sim/model/plan.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fmt/format.h>

#include "sim/config/error.h"

namespace moesim {

std::string ParallelPlan::to_string() const {
  std::string s = fmt::format("tp={},ep={}", tp, ep);
  if (dense_tp > 0) s += fmt::format(",dense_tp={}", dense_tp);
  if (redundant_experts > 0) s += fmt::format(",redundant={}", redundant_experts);
  if (pp > 1) s += fmt::format(",pp={}", pp);
  if (mtp) s += ",mtp=1";
  return s;
}

ParallelPlan parse_plan(std::string_view text, const std::string& where, const std::string& pointer) {
  ParallelPlan p;
  auto fail = [&](const std::string& msg) -> void { throw ConfigError(where, pointer, msg); };
  if (text.empty()) fail("expected a parallel plan such as \"ep=72\" or \"tp=8\" or \"tp=1,ep=8,redundant=32\"");
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string_view item = text.substr(pos, comma - pos);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos)
      fail(fmt::format("expected key=value items separated by commas, got \"{}\"", item));
    const std::string_view key = item.substr(0, eq);
    const std::string_view val = item.substr(eq + 1);
    int v = 0;
    const auto [ptr, ec] = std::from_chars(val.data(), val.data() + val.size(), v);
    if (ec != std::errc() || ptr != val.data() + val.size() || v < 0 || v > 100000)
      fail(fmt::format("expected a whole number for \"{}\", got \"{}\"", key, val));
    const bool positive = key != "redundant" && key != "mtp" && key != "dense_tp";
    if (positive && v < 1) fail(fmt::format("\"{}\" must be at least 1, got {}", key, v));
    if (key == "tp") p.tp = v;
    else if (key == "ep") p.ep = v;
    else if (key == "dense_tp") p.dense_tp = v;
    else if (key == "redundant") p.redundant_experts = v;
    else if (key == "pp") p.pp = v;
    else if (key == "mtp") p.mtp = v > 0;
    else fail(fmt::format("unknown plan key \"{}\": expected tp, ep, dense_tp, redundant, pp or mtp", key));
    pos = comma + 1;
  }
  return p;
}

void check_plan(const ParallelPlan& p, const ModelSpec& m, const std::string& where, const std::string& pointer) {
  auto fail = [&](const std::string& msg) { throw ConfigError(where, pointer, msg); };
  const int g = p.gpus_per_stage();
  if (g % p.tp != 0 || g % p.ep != 0)
    fail(fmt::format("tp={} and ep={} must both divide the {} GPUs of a stage", p.tp, p.ep, g));
  const int heads = std::holds_alternative<MlaSpec>(m.attention) ? std::get<MlaSpec>(m.attention).heads
                                                                  : std::get<GqaSpec>(m.attention).heads;
  if (heads % p.tp != 0)
    fail(fmt::format("tp={} does not divide the {} attention heads of {}", p.tp, heads, m.name));
  const int dtp = p.effective_dense_tp();
  if (g % dtp != 0) fail(fmt::format("dense_tp={} does not divide the {} GPUs of a stage", dtp, g));
  if (m.dense_layer_count() > 0 && m.dense_ffn % dtp != 0)
    fail(fmt::format("dense_tp={} does not divide the dense FFN size {}", dtp, m.dense_ffn));
  if (!m.moe) {
    if (p.ep > 1) fail(fmt::format("ep={} given, but {} has no experts", p.ep, m.name));
  } else {
    const int slots = m.moe->routed_experts + p.redundant_experts;
    if (p.ep > slots)
      fail(fmt::format("ep={} exceeds the {} routed experts{} of {}: some GPUs would hold no expert "
                       "(add redundant expert slots with redundant=N)",
                       p.ep, m.moe->routed_experts,
                       p.redundant_experts ? fmt::format(" + {} redundant slots", p.redundant_experts) : "", m.name));
    if (m.moe->expert_ffn % p.moe_tp() != 0)
      fail(fmt::format("the {} GPUs per expert (gpus/ep) do not divide the expert FFN size {}", p.moe_tp(),
                       m.moe->expert_ffn));
  }
  if (p.pp > m.layers) fail(fmt::format("pp={} exceeds the {} layers", p.pp, m.layers));
  if (p.mtp && m.mtp_layers == 0) fail(fmt::format("mtp=1 given, but {} has no MTP module", m.name));
}

LayerRange stage_layers(int layers, int pp, int stage) {
  const int base = layers / pp, extra = layers % pp;
  return {stage * base + std::min(stage, extra), base + (stage < extra ? 1 : 0)};
}

MemoryPlan plan_memory(const ModelSpec& m, const PrecisionVariant& v, const GpuSpec& gpu, const ParallelPlan& p,
                       const MemoryOptions& opts) {
  MemoryPlan out;
  const ParamCounts c = count_params(m);
  auto bpp = [&](TensorGroup g) { return format_info(v.formats.at(g)).bytes_per_param; };
  // Layers held per pipeline stage (the first stage, which also holds the embedding, is the one that matters).
  const double stage_share = std::ceil(static_cast<double>(m.layers) / p.pp) / m.layers;
  const double dtp = p.effective_dense_tp();

  auto add = [&](TensorGroup g, double bytes) { out.weight_bytes_by_group[g] += bytes; };
  add(TensorGroup::kAttention, c.by_group.at(TensorGroup::kAttention) * bpp(TensorGroup::kAttention) / p.tp * stage_share);
  if (c.by_group.at(TensorGroup::kDenseFfn) > 0)
    add(TensorGroup::kDenseFfn, c.by_group.at(TensorGroup::kDenseFfn) * bpp(TensorGroup::kDenseFfn) / dtp * stage_share);
  if (m.moe) {
    const int slots = m.moe->routed_experts + p.redundant_experts;
    out.expert_slots_per_gpu = (slots + p.ep - 1) / p.ep;
    add(TensorGroup::kRoutedExperts, m.moe_layer_count() * stage_share * out.expert_slots_per_gpu * c.expert *
                                         bpp(TensorGroup::kRoutedExperts) / p.moe_tp());
    if (c.shared_expert > 0)
      add(TensorGroup::kSharedExperts,
          c.by_group.at(TensorGroup::kSharedExperts) * bpp(TensorGroup::kSharedExperts) / dtp * stage_share);
    add(TensorGroup::kRouter, c.by_group.at(TensorGroup::kRouter) * bpp(TensorGroup::kRouter) * stage_share);
  }
  add(TensorGroup::kEmbedding, c.by_group.at(TensorGroup::kEmbedding) * bpp(TensorGroup::kEmbedding) / p.tp);
  if (c.by_group.at(TensorGroup::kLmHead) > 0)
    add(TensorGroup::kLmHead, c.by_group.at(TensorGroup::kLmHead) * bpp(TensorGroup::kLmHead) / p.tp);
  for (const auto& [g, b] : out.weight_bytes_by_group) out.weight_bytes_per_gpu += b;
  out.weight_bytes_per_gpu += c.norms * 2;
  if (p.mtp) out.weight_bytes_per_gpu += (weight_bytes(m, v, true) - weight_bytes(m, v, false)) / p.gpus_per_stage();

  out.kv_bytes_per_token = kv_bytes_per_token(m, opts.kv_dtype, p.tp) * stage_share;
  out.kv_budget_bytes = (gpu.hbm_usable.value() - out.weight_bytes_per_gpu - opts.reserve_bytes) * opts.memory_fraction;
  out.fits = out.kv_budget_bytes > 0;
  out.kv_tokens_per_gpu = out.fits ? std::floor(out.kv_budget_bytes / out.kv_bytes_per_token) : 0;
  return out;
}

}  // namespace moesim
