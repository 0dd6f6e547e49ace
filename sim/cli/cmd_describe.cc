// `moesim describe`: what a model costs per token, and with a system and a
// parallel plan, what it needs per GPU.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "sim/cli/command.h"
#include "sim/config/error.h"
#include "sim/config/hardware_load.h"
#include "sim/config/model_load.h"
#include "sim/core/quantity.h"
#include "sim/model/model_math.h"
#include "sim/model/plan.h"

namespace moesim::cli {

namespace {

struct DescribeOptions {
  std::string model;
  std::string precision;
  std::string system;
  std::string plan;
  std::string kv_dtype = "bf16";
  double memory_fraction = 0.90;
  double reserve_gib = 4.0;
  bool json = false;
};

KvDtype parse_kv_dtype(const std::string& s) {
  if (s == "bf16") return KvDtype::kBf16;
  if (s == "fp8") return KvDtype::kFp8;
  if (s == "fp8_flashmla") return KvDtype::kFp8FlashMla;
  throw ConfigError("--kv-dtype", "", fmt::format("expected bf16, fp8 or fp8_flashmla, got \"{}\"", s));
}

std::string billions(double n) { return fmt::format("{:.2f}B", n / 1e9); }
std::string gb(double b) { return fmt::format("{:.2f} GB", b / 1e9); }

// Values of the description whose status makes them less than primary.
nlohmann::json caveats(const Provenance& prov, const std::string& file) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [ptr, sv] : prov.with_status({"U", "X", "S", "E"}))
    out.push_back({{"file", file}, {"path", ptr}, {"status", sv.status}, {"source", sv.source}, {"note", sv.note}});
  return out;
}

int run_describe(const DescribeOptions& o) {
  const ModelSpec m = load_model(o.model);
  const std::string prec_name = o.precision.empty() ? m.native_precision : o.precision;
  if (!m.precisions.count(prec_name)) {
    std::string names;
    for (const auto& [n, v] : m.precisions) names += (names.empty() ? "" : ", ") + n;
    throw ConfigError(o.model, "/precisions",
                      fmt::format("no precision variant \"{}\" (--precision): expected one of {}", prec_name, names));
  }
  const PrecisionVariant& v = m.precision(prec_name);
  const ParamCounts c = count_params(m);

  nlohmann::json j;
  j["model"] = m.id;
  j["precision"] = prec_name;
  j["total_params"] = c.total;
  j["active_params"] = c.active;
  j["active_linear_params"] = c.active_linear;
  j["mtp_params"] = c.mtp;
  j["moe_layers"] = m.moe_layer_count();
  j["linear_flops_per_token"] = linear_flops_per_token(m);
  j["attention_flops_per_token_per_cached_token"] = attention_flops_per_token_per_cached_token(m);
  for (KvDtype d : {KvDtype::kBf16, KvDtype::kFp8, KvDtype::kFp8FlashMla}) {
    if (d == KvDtype::kFp8FlashMla && !std::holds_alternative<MlaSpec>(m.attention)) continue;
    j["kv_cache_bytes_per_token"][kv_dtype_name(d)] = kv_bytes_per_token(m, d);
    if (std::holds_alternative<GqaSpec>(m.attention))
      j["kv_cache_bytes_per_token_full_attention_layers"][kv_dtype_name(d)] = kv_bytes_per_token_full_layers_only(m, d);
  }
  for (DispatchDtype d : {DispatchDtype::kFp8, DispatchDtype::kNvfp4, DispatchDtype::kBf16})
    j["dispatch_bytes_per_token_per_layer"][dispatch_dtype_name(d)] = dispatch_bytes_per_token_per_layer(m, d);
  j["combine_bytes_per_token_per_layer"] = combine_bytes_per_token_per_layer(m);
  for (const auto& [name, pv] : m.precisions) j["weight_bytes"][name] = weight_bytes(m, pv);
  j["caveats"] = caveats(m.provenance, m.file);

  std::optional<SystemSpec> sys;
  std::optional<MemoryPlan> mem;
  ParallelPlan plan;
  MemoryOptions mopts;
  if (!o.system.empty() || !o.plan.empty()) {
    if (o.system.empty() || o.plan.empty())
      throw ConfigError(o.system.empty() ? "--system" : "--plan", "", "--system and --plan go together");
    sys = load_system(o.system);
    plan = parse_plan(o.plan, "--plan", "");
    check_plan(plan, m, "--plan", "");
    mopts.kv_dtype = parse_kv_dtype(o.kv_dtype);
    mopts.memory_fraction = o.memory_fraction;
    mopts.reserve_bytes = o.reserve_gib * 1073741824.0;
    mem = plan_memory(m, v, sys->gpu, plan, mopts);
    j["system"] = sys->id;
    j["plan"] = plan.to_string();
    j["plan_gpus"] = plan.gpus();
    j["weight_bytes_per_gpu"] = mem->weight_bytes_per_gpu;
    j["expert_slots_per_gpu"] = mem->expert_slots_per_gpu;
    j["hbm_usable_bytes"] = sys->gpu.hbm_usable.value();
    j["kv_dtype"] = kv_dtype_name(mopts.kv_dtype);
    j["kv_budget_bytes_per_gpu"] = std::max(0.0, mem->kv_budget_bytes);
    j["kv_tokens_per_gpu"] = mem->kv_tokens_per_gpu;
    j["fits"] = mem->fits;
    j["assumptions"] = {{"memory_fraction", mopts.memory_fraction}, {"activation_reserve_bytes", mopts.reserve_bytes}};
    for (const auto& cv : caveats(sys->provenance, sys->file)) j["caveats"].push_back(cv);
    for (const auto& cv : caveats(sys->gpu.provenance, sys->gpu.file)) j["caveats"].push_back(cv);
  }

  if (o.json) {
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("{} ({}), precision {}\n", m.name, m.file, prec_name);
  fmt::print("  parameters           total {}  active {}  (active linear {}, MTP {})\n", billions(c.total),
             billions(c.active), billions(c.active_linear), billions(c.mtp));
  fmt::print("  layers               {} ({} MoE)\n", m.layers, m.moe_layer_count());
  fmt::print("  linear FLOPs/token   {:.2f} GFLOP\n", linear_flops_per_token(m) / 1e9);
  fmt::print("  attention FLOPs      {:.2f} MFLOP per token per cached token\n",
             attention_flops_per_token_per_cached_token(m) / 1e6);
  for (const auto& [k, val] : j["kv_cache_bytes_per_token"].items())
    fmt::print("  KV cache/token       {:>8.0f} B  ({})\n", val.get<double>(), k);
  if (m.moe) {
    fmt::print("  dispatch/token/layer {:>8.0f} B fp8, {:.0f} B nvfp4 (counted once per selected expert)\n",
               dispatch_bytes_per_token_per_layer(m, DispatchDtype::kFp8),
               dispatch_bytes_per_token_per_layer(m, DispatchDtype::kNvfp4));
    fmt::print("  combine/token/layer  {:>8.0f} B bf16\n", combine_bytes_per_token_per_layer(m));
  }
  for (const auto& [name, pv] : m.precisions)
    fmt::print("  weights ({:<9})   {}\n", name, gb(weight_bytes(m, pv)));
  if (sys) {
    fmt::print("\n  on {} with plan {} ({} GPUs per instance)\n", sys->name, plan.to_string(), plan.gpus());
    fmt::print("  weights per GPU      {} (of {} usable HBM)\n", gb(mem->weight_bytes_per_gpu),
               gb(sys->gpu.hbm_usable.value()));
    if (mem->fits) {
      fmt::print("  KV budget per GPU    {} at memory fraction {:.2f} after a {:.1f} GiB reserve\n",
                 gb(mem->kv_budget_bytes), mopts.memory_fraction, o.reserve_gib);
      fmt::print("  KV tokens per GPU    {:.0f} ({} KV, {:.0f} B/token)\n", mem->kv_tokens_per_gpu,
                 kv_dtype_name(mopts.kv_dtype), mem->kv_bytes_per_token);
    } else {
      fmt::print("  DOES NOT FIT: weights per GPU {} + reserve exceed the usable {}\n", gb(mem->weight_bytes_per_gpu),
                 gb(sys->gpu.hbm_usable.value()));
    }
  }
  if (!j["caveats"].empty()) {
    fmt::print("\n  values that are not primary (U unconfirmed, X extrapolated, S secondary, E estimate):\n");
    for (const auto& cv : j["caveats"])
      fmt::print("    [{}] {}{} ({}){}\n", cv["status"].get<std::string>(), cv["file"].get<std::string>(),
                 cv["path"].get<std::string>(), cv["source"].get<std::string>(),
                 cv["note"].get<std::string>().empty() ? "" : ": " + cv["note"].get<std::string>());
  }
  return 0;
}

}  // namespace

void add_describe_command(CLI::App& parent, CommandAction& action) {
  auto opts = std::make_shared<DescribeOptions>();
  CLI::App* sub = parent.add_subcommand("describe", "Per-token costs of a model; with --system and --plan, per-GPU memory");
  sub->add_option("--model", opts->model, "model description (models/<m>.json)")->required();
  sub->add_option("--precision", opts->precision, "precision variant (default: the native one)");
  sub->add_option("--system", opts->system, "system description (hardware/systems/<s>.json)");
  sub->add_option("--plan", opts->plan, "parallel plan, e.g. ep=72 or tp=8 or tp=1,ep=8,redundant=32");
  sub->add_option("--kv-dtype", opts->kv_dtype, "KV-cache dtype for capacity: bf16, fp8, fp8_flashmla");
  sub->add_option("--memory-fraction", opts->memory_fraction, "fraction of the memory left after weights given to KV")
      ->check(CLI::Range(0.01, 1.0));
  sub->add_option("--reserve-gib", opts->reserve_gib, "per-GPU reserve for activations and workspaces (GiB)")
      ->check(CLI::Range(0.0, 1024.0));
  sub->add_flag("--json", opts->json, "print one JSON object");
  sub->callback([opts, &action] { action = [opts] { return run_describe(*opts); }; });
}

}  // namespace moesim::cli
