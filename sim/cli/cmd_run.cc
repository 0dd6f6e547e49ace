// `moesim run scenarios/<s>.json [more.json ...]`: simulate serving each
// scenario and print a summary table (one column per scenario) with an
// attribution of the differences; optional JSON report, per-request CSV and
// Chrome trace. All inputs are loaded and checked before anything runs; every
// output file is written whole or not at all.
#include <fmt/format.h>

#include <cstdio>
#include <optional>

#include "sim/cli/command.h"
#include "sim/cli/output.h"
#include "sim/config/error.h"
#include "sim/config/scenario.h"
#include "sim/cost/cost_basis.h"
#include "sim/core/quantity.h"
#include "sim/obs/report.h"
#include "sim/serve/serving_sim.h"
#include "sim/serve/step_timers.h"

namespace moesim::cli {

namespace {

struct RunOptions {
  std::vector<std::string> scenarios;
  std::string json;
  std::string requests;
  std::string tokens;
  std::string trace;
  std::optional<std::uint64_t> seed;
  bool detailed = false;
  std::string step_time;
  bool quiet = false;
  std::string cost_model = "calibrated";
};

int run_run(const RunOptions& o) {
  if (o.scenarios.size() > 1 && (!o.requests.empty() || !o.tokens.empty() || !o.trace.empty()))
    throw ConfigError("--requests/--tokens/--trace", "", "per-request CSVs and the trace take a single scenario");
  std::optional<Duration> fixed;
  if (!o.step_time.empty()) {
    const auto q = parse_quantity(o.step_time);
    if (!q || q->dim != Dim::kSeconds || !(q->si > 0))
      throw ConfigError("--step-time", "", fmt::format("expected a positive time such as \"10 ms\", got \"{}\"",
                                                       o.step_time));
    fixed = duration_from_seconds_ceil(q->si);
  }
  std::vector<ScenarioSpec> specs;
  for (const std::string& f : o.scenarios) specs.push_back(load_scenario(f, o.seed));
  const serve::StepTimerFactory timers =
      fixed ? serve::fixed_step_timers(*fixed)
            : serve::moe_step_timers(o.detailed ? serve::StepFidelity::kDetailed : serve::StepFidelity::kFast,
                                     cost_model_kind(o.cost_model));

  std::vector<obs::Summary> summaries;
  std::vector<serve::ServingResult> results;
  for (const ScenarioSpec& sc : specs) {
    serve::ServingOptions so;
    so.label = sc.id;
    so.progress = !o.quiet;
    so.token_times = !o.tokens.empty();
    results.push_back(serve::run_serving(sc, timers, so));
    summaries.push_back(obs::summarize_run(sc, results.back()));
    summaries.back().cost_basis =
        fixed ? std::string("fixed step time (--step-time)")
              : cost_basis(sc.cluster.system.gpu,
                           cost_model_kind(o.cost_model))
                    .label;
  }
  std::string out = obs::summary_table(summaries);
  const std::string why = obs::attribution(summaries);
  if (!why.empty()) out += "\n" + why;
  std::fputs(out.c_str(), stdout);

  if (!o.json.empty()) {
    nlohmann::json j;
    if (specs.size() == 1) {
      j = obs::report_json(specs[0], summaries[0]);
    } else {
      j["scenarios"] = nlohmann::json::array();
      for (std::size_t i = 0; i < specs.size(); ++i) j["scenarios"].push_back(obs::report_json(specs[i], summaries[i]));
    }
    write_file_atomically(o.json, j.dump(2) + "\n");
  }
  if (!o.requests.empty()) write_file_atomically(o.requests, obs::requests_csv(results[0]));
  if (!o.tokens.empty()) write_file_atomically(o.tokens, obs::tokens_csv(results[0]));
  if (!o.trace.empty()) write_file_atomically(o.trace, obs::chrome_trace(results[0]));
  return 0;
}

}  // namespace

void add_run_command(CLI::App& parent, CommandAction& action) {
  auto opts = std::make_shared<RunOptions>();
  CLI::App* cmd = parent.add_subcommand("run", "simulate serving one or more scenarios (side by side)");
  cmd->add_option("scenarios", opts->scenarios, "scenario files (scenarios/*.json)")->required();
  cmd->add_option("--json", opts->json, "write the JSON report here");
  cmd->add_option("--requests", opts->requests, "write one CSV line per request here");
  cmd->add_option("--tokens", opts->tokens,
                  "write one CSV line per token delivery here (request id, time, tokens, gap since the previous)");
  cmd->add_option("--trace", opts->trace, "write a Chrome trace-event timeline here (sampled)");
  cmd->add_option("--seed", opts->seed, "override the workload seed");
  cmd->add_flag("--detailed", opts->detailed, "time steps with the detailed step simulator (slower)");
  cmd->add_option("--step-time", opts->step_time,
                  "every step takes this long (e.g. \"10 ms\"): a what-if / test mode, no step simulator");
  cmd->add_flag("--quiet", opts->quiet, "no progress line on stderr");
  cmd->add_option("--cost-model", opts->cost_model, "op costs: calibrated (default: fitted to validate/data, roofline outside it) or roofline")
      ->check(CLI::IsMember({"roofline", "calibrated"}));
  cmd->callback([opts, &action] { action = [opts] { return run_run(*opts); }; });
}

}  // namespace moesim::cli
