// `moesim step`: one forward pass of an MoE model on a cluster, simulated.
#include <fmt/format.h>

#include "sim/cli/command.h"
#include "sim/cli/output.h"
#include "sim/config/error.h"
#include "sim/config/hardware_load.h"
#include "sim/config/model_load.h"
#include "sim/cost/calibrated.h"
#include "sim/cost/cost_basis.h"
#include "sim/step/step.h"
#include "sim/step/step_report.h"

namespace moesim::cli {

namespace {

struct StepOptions {
  std::string model, system, plan, precision;
  int domains = 0;
  long long batch = 1;
  std::string phase = "decode";
  long long context = 2000;
  long long prefix = 0;
  std::string routing = "uniform";
  std::string overlap = "none";
  std::string placement;  // "" = eplb with redundant slots, else contiguous
  std::string mode = "detailed";
  std::string network = "fluid";
  std::string dispatch = "fp8";
  std::string dispatcher = "fused";
  std::string kv_dtype = "bf16";
  bool no_dedup = false;
  bool no_graphs = false;
  std::string cost_model = "calibrated";
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
  bool json = false;
  std::string trace;
};

template <class T>
T pick(const std::string& opt, const std::string& v, std::initializer_list<std::pair<const char*, T>> choices) {
  std::string names;
  for (const auto& [n, x] : choices) {
    if (v == n) return x;
    names += (names.empty() ? "" : ", ") + std::string(n);
  }
  throw ConfigError(opt, "", fmt::format("expected one of {}, got \"{}\"", names, v));
}

int run_step(const StepOptions& o) {
  StepSetup s;
  s.model = load_model(o.model);
  const SystemSpec sys = load_system(o.system);
  s.plan = parse_plan(o.plan, "--plan", "");
  check_plan(s.plan, s.model, "--plan", "");
  const int domains =
      o.domains > 0 ? o.domains : (s.plan.gpus() + sys.scale_up.domain_gpus - 1) / sys.scale_up.domain_gpus;
  s.cluster = ClusterSpec{sys, domains};
  s.precision = o.precision;
  const Phase phase = pick<Phase>("--phase", o.phase, {{"decode", Phase::kDecode}, {"prefill", Phase::kPrefill}});
  if (o.batch < 1) throw ConfigError("--batch", "", fmt::format("expected at least 1 sequence, got {}", o.batch));
  if (o.context < (phase == Phase::kDecode ? 0 : 1) || o.prefix < 0)
    throw ConfigError("--context", "", "expected a non-negative context (prefill: at least 1 token)");
  s.batch = phase == Phase::kDecode ? BatchShape::decode(o.batch, o.context) : BatchShape::prefill(o.batch, o.context, o.prefix);
  s.routing = parse_routing(o.routing, "--routing");
  s.overlap = pick<Overlap>("--overlap", o.overlap, {{"none", Overlap::kNone}, {"tbo", Overlap::kTbo}});
  s.mode = pick<StepMode>("--mode", o.mode, {{"detailed", StepMode::kDetailed}, {"fast", StepMode::kFast}});
  s.network = pick<NetworkMode>("--network", o.network, {{"fluid", NetworkMode::kFluid}, {"analytic", NetworkMode::kAnalytic}});
  s.expansion.dispatch = pick<DispatchDtype>("--dispatch", o.dispatch,
                                             {{"fp8", DispatchDtype::kFp8}, {"nvfp4", DispatchDtype::kNvfp4}, {"bf16", DispatchDtype::kBf16}});
  s.expansion.kv_dtype = pick<KvDtype>("--kv-dtype", o.kv_dtype,
                                       {{"bf16", KvDtype::kBf16}, {"fp8", KvDtype::kFp8}, {"fp8_flashmla", KvDtype::kFp8FlashMla}});
  s.memory.kv_dtype = s.expansion.kv_dtype;
  s.expansion.dedup = !o.no_dedup;
  s.expansion.dispatcher = pick<Dispatcher>("--dispatcher", o.dispatcher, {{"fused", Dispatcher::kFused}, {"staged", Dispatcher::kStaged}});
  s.eplb = o.placement.empty() ? s.plan.redundant_experts > 0
                               : pick<bool>("--placement", o.placement, {{"eplb", true}, {"contiguous", false}});
  s.cost_options.cuda_graphs = !o.no_graphs;
  s.cost = make_cost_model(s.cluster.system.gpu,
                           cost_model_kind(o.cost_model));
  s.seed = o.seed;
  s.record_trace = !o.trace.empty();

  StepSimulator sim(s);
  const StepResult r = sim.run(o.step);
  if (!o.trace.empty()) write_file_atomically(o.trace, sim.trace_json());
  const CostBasis basis = cost_basis(s.cluster.system.gpu, cost_model_kind(o.cost_model));
  if (o.json) {
    nlohmann::json j = step_result_json(r, sim.setup());
    j["cost_basis"] = basis.label;
    j["costs_extrapolated"] = basis.extrapolated;
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("{}", step_result_text(r, sim.setup()));
    fmt::print("  costs          {}\n", basis.label);
    if (!o.trace.empty()) fmt::print("  trace          {} (Chrome trace-event JSON; open in ui.perfetto.dev)\n", o.trace);
  }
  return 0;
}

}  // namespace

void add_step_command(CLI::App& parent, CommandAction& action) {
  auto o = std::make_shared<StepOptions>();
  CLI::App* sub = parent.add_subcommand("step", "Simulate one forward pass (decode or prefill step) of an MoE model");
  sub->add_option("--model", o->model, "model description (models/<m>.json)")->required();
  sub->add_option("--system", o->system, "system description (hardware/systems/<s>.json)")->required();
  sub->add_option("--plan", o->plan, "parallel plan, e.g. ep=72 or tp=8 or tp=1,ep=32,redundant=32")->required();
  sub->add_option("--domains", o->domains, "scale-up domains (HGX nodes, NVL72 racks); default: as many as the plan needs");
  sub->add_option("--batch", o->batch, "sequences in the batch (default 1)");
  sub->add_option("--phase", o->phase, "decode (default) or prefill");
  sub->add_option("--context", o->context, "decode: cached tokens per sequence; prefill: prompt tokens per sequence (default 2000)");
  sub->add_option("--prefix", o->prefix, "prefill: cached prefix tokens per sequence (default 0)");
  sub->add_option("--precision", o->precision, "precision variant of the model (default: native)");
  sub->add_option("--routing", o->routing, "uniform (default), zipf:<s>, dirichlet:<c> or trace:<file.json>");
  sub->add_option("--placement", o->placement, "eplb or contiguous (default: eplb when the plan has redundant slots)");
  sub->add_option("--overlap", o->overlap, "none (default) or tbo (two-micro-batch overlap)");
  sub->add_option("--mode", o->mode, "detailed (default: event simulation) or fast (analytic, no events)");
  sub->add_option("--network", o->network, "detailed mode: fluid (default, max-min flows) or analytic");
  sub->add_option("--dispatch", o->dispatch, "dispatch payload: fp8 (default), nvfp4 or bf16");
  sub->add_option("--kv-dtype", o->kv_dtype, "KV cache dtype: bf16 (default), fp8, fp8_flashmla");
  sub->add_option("--dispatcher", o->dispatcher,
                  "fused (default: DeepEP-style kernels) or staged (NCCL all-to-all of ready buffers: quantise, regroup and "
                  "gather copies around it)");
  sub->add_flag("--no-dedup", o->no_dedup, "count dispatch/combine per selected expert (DeepEP low-latency) instead of once per GPU");
  sub->add_flag("--no-cuda-graphs", o->no_graphs, "launch overhead without CUDA graphs");
  sub->add_option("--cost-model", o->cost_model,
                  "op costs: calibrated (default: fitted to validate/data, roofline outside it, Blackwell "
                  "extrapolated and labelled) or roofline")
      ->check(CLI::IsMember({"roofline", "calibrated"}));
  sub->add_option("--seed", o->seed, "master seed (default 0)");
  sub->add_option("--step-index", o->step, "which step's routing draw (default 0)");
  sub->add_flag("--json", o->json, "print one JSON object");
  sub->add_option("--trace", o->trace, "write a Chrome trace-event JSON (Perfetto) of the step");
  sub->callback([o, &action] { action = [o] { return run_step(*o); }; });
}

}  // namespace moesim::cli
