// `moesim frontier a.json [b.json ...]`: sweep each scenario's closed-loop
// concurrency, keep the throughput-interactivity Pareto frontier of each
// system (over all the deployments given for it: the best plan differs by
// interactivity), and compare the systems at the same tokens/s per user (the
// form of the field's "N x faster per GPU at the same interactivity" claims).
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sim/cli/command.h"
#include "sim/cli/output.h"
#include "sim/config/error.h"
#include "sim/config/scenario.h"
#include "sim/cost/cost_basis.h"
#include "sim/obs/frontier.h"
#include "sim/obs/report.h"
#include "sim/serve/serving_sim.h"
#include "sim/serve/step_timers.h"

namespace moesim::cli {

namespace {

struct FrontierOptions {
  std::vector<std::string> scenarios;
  std::vector<int> concurrency = {16, 64, 256, 1024, 4096};
  std::vector<double> interactivity = {10, 20, 50, 100};
  std::string cost_model = "calibrated";
  std::string json;
  bool quiet = false;
};

struct SweepResult {
  std::string id;  // scenario
  std::vector<obs::FrontierPoint> points;
};

struct SystemFrontier {
  std::string cost_basis;  // sim/cost/cost_basis.h label
  std::string system;  // system id, e.g. "gb200-nvl72"
  std::vector<obs::FrontierPoint> points;  // all deployments' points
  std::vector<obs::FrontierPoint> frontier;
};

int run_frontier(const FrontierOptions& o) {
  std::vector<ScenarioSpec> specs;
  for (const std::string& f : o.scenarios) {
    specs.push_back(load_scenario(f));
    if (specs.back().workload.arrival == ArrivalKind::kTrace)
      throw ConfigError(f, "/workload/arrivals", "frontier sweeps closed-loop concurrency: expected a scenario "
                                                 "without a trace (its lengths are kept, its arrivals replaced)");
  }
  for (int c : o.concurrency)
    if (c < 1) throw ConfigError("--concurrency", "", fmt::format("expected positive concurrencies, got {}", c));
  for (double u : o.interactivity)
    if (!(u > 0)) throw ConfigError("--interactivity", "", fmt::format("expected positive tokens/s per user, got {}", u));

  const serve::StepTimerFactory timers = serve::moe_step_timers(
      serve::StepFidelity::kFast, cost_model_kind(o.cost_model));
  std::vector<SweepResult> sweeps;
  std::vector<SystemFrontier> systems;  // in order of first appearance
  for (const ScenarioSpec& base : specs) {
    SweepResult sw;
    sw.id = base.id;
    for (int c : o.concurrency) {
      ScenarioSpec sc = base;
      sc.workload.arrival = ArrivalKind::kClosedLoop;
      sc.workload.concurrency = c;
      // Enough requests for a steady window: the first `c` warm the system up, then three generations of `c`.
      sc.workload.requests = std::max<long long>(4LL * c, 256);
      sc.workload.duration.reset();
      sc.workload.warmup_requests = c;
      sc.workload.warmup_duration = Duration{0};
      serve::ServingOptions so;
      so.label = fmt::format("{} c={}", sc.id, c);
      so.progress = !o.quiet;
      serve::ServingResult res = serve::run_serving(sc, timers, so);
      const obs::Summary s = obs::summarize_run(sc, res);
      sw.points.push_back({static_cast<double>(c), s.tokens_per_s_per_user.p50, s.output_tokens_per_s_per_gpu});
    }
    const std::string sys = base.cluster.system.id;  // per-GPU figures: node or rack count does not matter
    auto it = std::find_if(systems.begin(), systems.end(), [&](const SystemFrontier& f) { return f.system == sys; });
    if (it == systems.end()) {
      systems.push_back({cost_basis(base.cluster.system.gpu, cost_model_kind(o.cost_model)).label, sys, {}, {}});
      it = systems.end() - 1;
    }
    it->points.insert(it->points.end(), sw.points.begin(), sw.points.end());
    sweeps.push_back(std::move(sw));
  }
  for (SystemFrontier& f : systems) f.frontier = obs::pareto_frontier(f.points);

  std::ostringstream out;
  for (const SweepResult& sw : sweeps) {
    out << fmt::format("{}\n  {:>11} {:>16} {:>16}\n", sw.id, "concurrency", "tok/s per user", "tok/s per GPU");
    for (const obs::FrontierPoint& p : sw.points)
      out << fmt::format("  {:>11.0f} {:>16.1f} {:>16.1f}\n", p.concurrency, p.tokens_per_s_per_user,
                         p.tokens_per_s_per_gpu);
  }
  out << fmt::format("\nthroughput per GPU at the same interactivity (Pareto frontier over each system's deployments, "
                     "log-log interpolation):\n  {:>14}",
                     "tok/s per user");
  for (const SystemFrontier& f : systems) out << fmt::format(" {:>24}", f.system);
  if (systems.size() > 1) out << fmt::format(" {:>10}", "ratio");
  out << "\n";
  nlohmann::json j;
  j["cost_model"] = o.cost_model;
  for (const SweepResult& sw : sweeps) {
    nlohmann::json pts = nlohmann::json::array();
    for (const obs::FrontierPoint& p : sw.points)
      pts.push_back({{"concurrency", p.concurrency}, {"tokens_per_s_per_user", p.tokens_per_s_per_user},
                     {"tokens_per_s_per_gpu", p.tokens_per_s_per_gpu}});
    j["scenarios"][sw.id]["points"] = pts;
  }
  for (double u : o.interactivity) {
    out << fmt::format("  {:>14.0f}", u);
    std::vector<std::optional<double>> at;
    for (const SystemFrontier& f : systems) {
      at.push_back(obs::throughput_at_interactivity(f.frontier, u));
      out << fmt::format(" {:>24}", at.back() ? fmt::format("{:.1f}", *at.back()) : std::string("not reached"));
      j["systems"][f.system]["at_interactivity"][fmt::format("{:g}", u)] =
          at.back() ? nlohmann::json(*at.back()) : nlohmann::json(nullptr);
    }
    if (systems.size() > 1) {
      const bool both = at.front() && at.back();
      out << fmt::format(" {:>10}", both ? fmt::format("{:.2f}x", *at.front() / *at.back()) : std::string("-"));
    }
    out << "\n";
  }
  for (const SystemFrontier& f : systems) {
    out << fmt::format("  costs of {}: {}\n", f.system, f.cost_basis);
    j["systems"][f.system]["cost_basis"] = f.cost_basis;
  }
  if (systems.size() > 1)
    out << fmt::format("  (ratio = {} / {}; \"not reached\": no swept point gives that many tok/s per user; the "
                       "frontier is only as good as the deployments given)\n",
                       systems.front().system, systems.back().system);
  std::fputs(out.str().c_str(), stdout);
  if (!o.json.empty()) write_file_atomically(o.json, j.dump(2) + "\n");
  return 0;
}

}  // namespace

void add_frontier_command(CLI::App& parent, CommandAction& action) {
  auto opts = std::make_shared<FrontierOptions>();
  CLI::App* cmd = parent.add_subcommand(
      "frontier", "sweep concurrency per scenario and compare throughput per GPU at the same tokens/s per user");
  cmd->add_option("scenarios", opts->scenarios, "scenario files (scenarios/*.json)")->required();
  cmd->add_option("--concurrency", opts->concurrency, "closed-loop concurrencies to sweep")->delimiter(',');
  cmd->add_option("--interactivity", opts->interactivity, "tokens/s per user at which to compare")->delimiter(',');
  cmd->add_option("--cost-model", opts->cost_model, "op costs: calibrated (default) or roofline")
      ->check(CLI::IsMember({"roofline", "calibrated"}));
  cmd->add_option("--json", opts->json, "write the sweep and the comparison as JSON here");
  cmd->add_flag("--quiet", opts->quiet, "no progress line on stderr");
  cmd->callback([opts, &action] { action = [opts] { return run_frontier(*opts); }; });
}

}  // namespace moesim::cli
