#include "sim/obs/report.h"

#include <fmt/format.h>

#include <algorithm>

#include "sim/serve/mtp.h"

namespace moesim::obs {

namespace {

// Cumulative counts of the emission log at time t (the last point at or before t).
const serve::EmissionPoint* at_or_before(const std::vector<serve::EmissionPoint>& log, Time t) {
  auto it = std::upper_bound(log.begin(), log.end(), t,
                             [](Time x, const serve::EmissionPoint& p) { return x < p.t; });
  return it == log.begin() ? nullptr : &*(it - 1);
}

Distribution dist_ms(std::vector<double>& seconds) {
  Distribution d = summarize(seconds);
  d.mean *= 1e3;
  d.p50 *= 1e3;
  d.p90 *= 1e3;
  d.p99 *= 1e3;
  d.max *= 1e3;
  return d;
}

double ms(Duration d) { return moesim::to_ms(d); }

}  // namespace

Summary summarize_run(const ScenarioSpec& sc, serve::ServingResult& res) {
  Summary s;
  s.scenario = sc.id;
  s.name = sc.name;
  s.mirrors = sc.mirrors;
  s.seed = sc.workload.seed;
  s.input_hash = fmt::format("{:016x}", sc.input_hash);
  s.system = fmt::format("{} x {}", sc.cluster.domains, sc.cluster.system.id);
  s.gpus = sc.used_gpus();
  s.domain_gpus = sc.cluster.system.scale_up.domain_gpus;
  const SystemSpec& sys = sc.cluster.system;
  if (sys.power_per_node) {
    s.watts_per_gpu = sys.power_per_node->value() / sys.gpus_per_node;
    s.power_basis = "node";
  } else {
    s.watts_per_gpu = sys.power_per_gpu.value();
    s.power_basis = "gpu-tdp";
  }
  if (sc.price_per_gpu_hour) {
    s.price_per_gpu_hour = *sc.price_per_gpu_hour;
    s.has_price = true;
  } else if (sys.price_per_gpu_hour_usd) {
    s.price_per_gpu_hour = *sys.price_per_gpu_hour_usd;
    s.has_price = true;
  }
  s.mtp_depth = sc.mtp.depth;
  s.mtp_mean_accepted = serve::mean_accepted_tokens(sc.mtp.acceptance);

  const auto& recs = res.metrics.records();
  std::vector<double> ttft, tpot, e2e, user;
  long long completions_in_window = 0;
  for (const RequestRecord& r : recs) {
    ++s.requests;
    if (r.finished) ++s.finished;
    if (!r.measured) continue;
    ++s.measured;
    ttft.push_back(r.ttft_s());
    e2e.push_back(r.e2e_s());
    if (r.output > 1) {
      tpot.push_back(r.tpot_s());
      user.push_back(1.0 / r.tpot_s());
    }
    if (r.finish >= res.window_start && r.finish <= res.window_end) ++completions_in_window;
  }
  s.ttft_ms = dist_ms(ttft);
  s.tpot_ms = dist_ms(tpot);
  s.e2e_ms = dist_ms(e2e);
  s.tokens_per_s_per_user = summarize(user);
  std::vector<std::pair<double, std::int64_t>> itl;
  for (const auto& [ps, n] : res.metrics.itl_histogram()) itl.emplace_back(static_cast<double>(ps) * 1e-9, n);
  s.itl_ms = summarize_counts(itl);

  s.makespan_s = to_seconds(res.makespan.time_since_epoch());
  s.window_s = to_seconds(res.window_end - res.window_start);
  const serve::EmissionPoint* a = at_or_before(res.emissions, res.window_start);
  const serve::EmissionPoint* b = at_or_before(res.emissions, res.window_end);
  const double out_in_window = static_cast<double>((b ? b->output_tokens : 0) - (a ? a->output_tokens : 0));
  const double in_in_window = static_cast<double>((b ? b->prefill_tokens : 0) - (a ? a->prefill_tokens : 0));
  const double total_out = res.emissions.empty() ? 0 : static_cast<double>(res.emissions.back().output_tokens);
  int prefill_gpus = 0;
  for (const PoolSpec& p : sc.pools)
    if (p.role != PoolRole::kDecode) prefill_gpus += sc.pool_gpus(p);
  if (s.window_s > 0) {
    s.output_tokens_per_s = out_in_window / s.window_s;
    s.input_tokens_per_s_per_gpu = in_in_window / s.window_s / prefill_gpus;
    s.requests_per_s = static_cast<double>(completions_in_window) / s.window_s;
  }
  s.output_tokens_per_s_per_gpu = s.output_tokens_per_s / s.gpus;
  if (s.makespan_s > 0) s.output_tokens_per_s_per_gpu_whole_run = total_out / s.makespan_s / s.gpus;
  s.output_tokens_per_s_per_domain = s.output_tokens_per_s_per_gpu * s.domain_gpus;
  s.output_tokens_per_s_per_kw = s.output_tokens_per_s_per_gpu / (s.watts_per_gpu / 1000.0);
  if (s.has_price && s.output_tokens_per_s_per_gpu > 0)
    s.usd_per_million_output_tokens = s.price_per_gpu_hour / (s.output_tokens_per_s_per_gpu * 3600.0) * 1e6;

  auto slo = [&](const char* metric, const SloTarget& t, const std::vector<double>& values_s) {
    SloResult r;
    r.metric = metric;
    r.percentile = t.percentile;
    r.target_ms = ms(t.max);
    std::vector<double> v = values_s;
    std::sort(v.begin(), v.end());
    r.achieved_ms = percentile_sorted(v, t.percentile) * 1e3;
    r.met = !v.empty() && r.achieved_ms <= r.target_ms;
    const double lim = to_seconds(t.max);
    const auto within = std::count_if(v.begin(), v.end(), [lim](double x) { return x <= lim; });
    r.attainment = v.empty() ? 0 : static_cast<double>(within) / static_cast<double>(v.size());
    s.slo.push_back(r);
  };
  // ttft/tpot were reordered by summarize(); rebuild from the records.
  std::vector<double> ttft_s, tpot_s;
  for (const RequestRecord& r : recs) {
    if (!r.measured) continue;
    ttft_s.push_back(r.ttft_s());
    if (r.output > 1) tpot_s.push_back(r.tpot_s());
  }
  if (sc.slo.ttft) slo("ttft", *sc.slo.ttft, ttft_s);
  if (sc.slo.tpot) slo("tpot", *sc.slo.tpot, tpot_s);

  for (std::size_t i = 0; i < sc.pools.size(); ++i) {
    const PoolSpec& p = sc.pools[i];
    const serve::PoolStats& ps = res.pools[i];
    PoolSummary q;
    q.name = p.name;
    q.role = pool_role_name(p.role);
    q.instances = p.instances;
    q.gpus = ps.gpus;
    q.plan = p.plan.to_string();
    q.ranks_per_instance = ps.ranks_per_instance;
    q.kv_tokens_per_rank = static_cast<double>(ps.kv_blocks_per_rank) * ps.block_tokens;
    q.weight_gb_per_gpu = ps.weight_bytes_per_gpu / 1e9;
    q.steps = ps.steps;
    if (s.makespan_s > 0) {
      q.gpu_busy = to_seconds(ps.busy) / (p.instances * s.makespan_s);
      const SystemSpec& sys = sc.cluster.system;
      const double up = sys.scale_up.bandwidth_per_gpu_per_direction.value() * ps.gpus * s.makespan_s;
      q.scale_up_link_busy = (ps.network_bytes - ps.scale_out_bytes) / up;
      if (sys.scale_out)
        q.scale_out_link_busy = ps.scale_out_bytes / (sys.scale_out->nic_bandwidth_per_direction.value() *
                                                      sys.scale_out->nics_per_gpu * ps.gpus * s.makespan_s);
    }
    if (ps.steps > 0) {
      const double n = static_cast<double>(ps.steps);
      q.step_ms_mean = ms(ps.busy) * ps.lanes / n;  // a lane's step, not its share of the GPUs
      q.attention_ms_mean = ms(ps.attention) / n;
      q.experts_ms_mean = ms(ps.experts) / n;
      q.communication_ms_mean = ms(ps.communication) / n;
      q.other_ms_mean = ms(ps.other) / n;
      q.decode_batch_per_rank_mean = ps.decode_seqs_per_rank_sum / n;
    }
    q.decode_batch_per_rank_max = ps.max_decode_seqs_per_rank;
    q.kv_peak_fraction = ps.kv_blocks_per_rank > 0 ? static_cast<double>(ps.peak_kv_blocks) / ps.kv_blocks_per_rank : 0;
    q.preemptions = ps.preemptions;
    q.step_evaluations = ps.step_evaluations;
    if (s.makespan_s > 0) {
      q.input_tokens_per_s_per_gpu = static_cast<double>(ps.prefill_tokens) / s.makespan_s / ps.gpus;
      q.output_tokens_per_s_per_gpu = static_cast<double>(ps.decode_tokens) / s.makespan_s / ps.gpus;
    }
    if (ps.busy > Duration::zero()) {
      // busy is summed over instances: per instance-second, per GPU of an instance.
      const double inst_gpus = static_cast<double>(ps.gpus) / p.instances;
      q.output_tokens_per_s_per_gpu_busy = static_cast<double>(ps.decode_tokens) / to_seconds(ps.busy) / inst_gpus;
      q.input_tokens_per_s_per_gpu_busy = static_cast<double>(ps.prefill_tokens) / to_seconds(ps.busy) / inst_gpus;
    }
    s.pools.push_back(q);
  }
  s.kv_transfers = res.kv_transfers;
  s.kv_transfer_gb = res.kv_transfer_bytes / 1e9;
  std::vector<double> kvt;
  if (res.kv_transfers > 0)
    for (const RequestRecord& r : recs)
      if (r.measured) kvt.push_back(to_seconds(r.kv_transfer));
  s.kv_transfer_ms = dist_ms(kvt);
  s.events = static_cast<double>(res.events);
  return s;
}

namespace {

nlohmann::json dist_json(const Distribution& d) {
  return {{"mean", d.mean}, {"p50", d.p50}, {"p90", d.p90}, {"p99", d.p99}, {"max", d.max}, {"count", d.count}};
}

}  // namespace

nlohmann::json summary_json(const Summary& s) {
  nlohmann::json j;
  j["requests"] = s.requests;
  j["cost_basis"] = s.cost_basis;
  j["requests_measured"] = s.measured;
  j["requests_finished"] = s.finished;
  j["window_s"] = s.window_s;
  j["makespan_s"] = s.makespan_s;
  j["ttft_ms"] = dist_json(s.ttft_ms);
  j["tpot_ms"] = dist_json(s.tpot_ms);
  j["itl_ms"] = dist_json(s.itl_ms);
  j["e2e_ms"] = dist_json(s.e2e_ms);
  j["tokens_per_s_per_user"] = dist_json(s.tokens_per_s_per_user);
  j["tokens_per_s_per_user_p50"] = s.tokens_per_s_per_user.p50;
  j["output_tokens_per_s"] = s.output_tokens_per_s;
  j["output_tokens_per_s_per_gpu"] = s.output_tokens_per_s_per_gpu;
  j["output_tokens_per_s_per_gpu_whole_run"] = s.output_tokens_per_s_per_gpu_whole_run;
  j["input_tokens_per_s_per_gpu"] = s.input_tokens_per_s_per_gpu;
  j["requests_per_s"] = s.requests_per_s;
  j["output_tokens_per_s_per_domain"] = s.output_tokens_per_s_per_domain;
  j["output_tokens_per_s_per_kw"] = s.output_tokens_per_s_per_kw;
  j["power_w_per_gpu"] = s.watts_per_gpu;
  j["power_basis"] = s.power_basis;
  if (s.has_price) {
    j["price_usd_per_gpu_hour"] = s.price_per_gpu_hour;
    j["usd_per_million_output_tokens"] = s.usd_per_million_output_tokens;
  }
  j["gpus"] = s.gpus;
  j["domain_gpus"] = s.domain_gpus;
  nlohmann::json slo = nlohmann::json::array();
  for (const SloResult& r : s.slo)
    slo.push_back({{"metric", r.metric}, {"percentile", r.percentile}, {"target_ms", r.target_ms},
                   {"achieved_ms", r.achieved_ms}, {"met", r.met}, {"attainment", r.attainment}});
  j["slo"] = slo;
  nlohmann::json pools = nlohmann::json::array();
  for (const PoolSummary& p : s.pools)
    pools.push_back({{"name", p.name},
                     {"role", p.role},
                     {"instances", p.instances},
                     {"gpus", p.gpus},
                     {"plan", p.plan},
                     {"attention_ranks_per_instance", p.ranks_per_instance},
                     {"kv_tokens_per_rank", p.kv_tokens_per_rank},
                     {"weight_gb_per_gpu", p.weight_gb_per_gpu},
                     {"gpu_busy", p.gpu_busy},
                     {"scale_up_link_busy", p.scale_up_link_busy},
                     {"scale_out_link_busy", p.scale_out_link_busy},
                     {"steps", p.steps},
                     {"step_ms_mean", p.step_ms_mean},
                     {"attention_ms_mean", p.attention_ms_mean},
                     {"experts_ms_mean", p.experts_ms_mean},
                     {"communication_ms_mean", p.communication_ms_mean},
                     {"other_ms_mean", p.other_ms_mean},
                     {"decode_batch_per_rank_mean", p.decode_batch_per_rank_mean},
                     {"decode_batch_per_rank_max", p.decode_batch_per_rank_max},
                     {"kv_peak_fraction", p.kv_peak_fraction},
                     {"preemptions", p.preemptions},
                     {"step_simulator_grid_points", p.step_evaluations},
                     {"input_tokens_per_s_per_gpu", p.input_tokens_per_s_per_gpu},
                     {"output_tokens_per_s_per_gpu", p.output_tokens_per_s_per_gpu},
                     {"output_tokens_per_s_per_gpu_busy", p.output_tokens_per_s_per_gpu_busy},
                     {"input_tokens_per_s_per_gpu_busy", p.input_tokens_per_s_per_gpu_busy}});
  j["pools"] = pools;
  j["kv_transfer"] = {{"count", s.kv_transfers}, {"gb", s.kv_transfer_gb}, {"ms", dist_json(s.kv_transfer_ms)}};
  j["mtp"] = {{"depth", s.mtp_depth}, {"mean_tokens_per_step", s.mtp_mean_accepted}};
  j["events"] = s.events;
  return j;
}

nlohmann::json report_json(const ScenarioSpec& sc, const Summary& s) {
  nlohmann::json j;
  j["moesim_version"] = MOESIM_VERSION;
  j["scenario"] = {{"id", sc.id}, {"name", sc.name}, {"file", sc.file}, {"mirrors", sc.mirrors}};
  j["seed"] = s.seed;
  j["input_hash"] = {{"algorithm", "fnv1a64"}, {"value", s.input_hash}, {"files", sc.input_files}};
  j["summary"] = summary_json(s);
  return j;
}

}  // namespace moesim::obs
