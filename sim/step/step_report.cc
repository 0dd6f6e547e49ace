#include "sim/step/step_report.h"

#include <fmt/format.h>

namespace moesim {

namespace {

std::string setup_line(const StepSetup& s) {
  const auto& b = s.batch;
  const std::int64_t ctx = b.seqs.empty() ? 0 : b.seqs[0].context;
  const std::int64_t fresh = b.seqs.empty() ? 0 : b.seqs[0].new_tokens;
  const std::string shape = b.phase == Phase::kDecode
                                ? fmt::format("decode, {} sequences x {} cached tokens", b.seqs.size(), ctx)
                                : fmt::format("prefill, {} sequences x {} tokens after a {}-token prefix", b.seqs.size(),
                                              fresh, ctx);
  return fmt::format("{} ({}) on {} x {} ({} GPUs used), plan {}, {}, routing {}{}, overlap {}", s.model.name,
                     s.precision, s.cluster.domains, s.cluster.system.name, s.plan.gpus(), s.plan.to_string(), shape,
                     s.routing.to_string(), s.eplb ? " + EPLB" : "", overlap_name(s.overlap));
}

}  // namespace

nlohmann::json step_result_json(const StepResult& r, const StepSetup& s) {
  nlohmann::json j;
  j["model"] = s.model.id;
  j["precision"] = s.precision;
  j["system"] = s.cluster.system.id;
  j["domains"] = s.cluster.domains;
  j["plan"] = s.plan.to_string();
  j["phase"] = phase_name(s.batch.phase);
  j["sequences"] = r.sequences;
  j["tokens"] = r.tokens;
  j["routing"] = s.routing.to_string();
  j["placement"] = s.eplb ? "eplb" : "contiguous";
  j["overlap"] = overlap_name(s.overlap);
  j["mode"] = step_mode_name(r.mode);
  j["network"] = r.mode == StepMode::kFast ? "analytic" : network_mode_name(r.network);
  j["dispatch_dtype"] = dispatch_dtype_name(s.expansion.dispatch);
  j["dedup"] = s.expansion.dedup;
  j["seed"] = s.seed;
  j["per_token_routing"] = r.per_token_routing;
  j["step_time_s"] = to_seconds(r.step_time);
  j["tokens_per_second"] = r.tokens_per_second;
  j["tokens_per_second_per_sequence"] = r.step_time.count() > 0 ? 1.0 / to_seconds(r.step_time) * (static_cast<double>(r.tokens) / static_cast<double>(r.sequences)) : 0;
  j["events"] = r.events;
  j["critical_gpu"] = r.critical_gpu;
  j["slowest_gpu"] = {{"gpu", r.slowest_gpu},
                      {"busy_s", r.slowest_gpu_busy_s},
                      {"mean_busy_s", r.mean_gpu_busy_s},
                      {"expert_rows", r.slowest_gpu_expert_rows},
                      {"max_expert_rows", r.max_expert_rows},
                      {"mean_expert_rows", r.mean_expert_rows},
                      {"expert_load_max_over_mean", r.expert_load_max_over_mean}};
  j["mean_distinct_experts_per_layer"] = r.mean_distinct_experts;
  nlohmann::json types = nlohmann::json::array();
  for (const auto& lt : r.layer_types) {
    nlohmann::json t;
    t["type"] = lt.name;
    t["layers"] = lt.layers;
    for (int g = 0; g < kOpGroupCount; ++g)
      t["seconds_per_layer"][op_group_name(static_cast<OpGroup>(g))] = lt.seconds_per_layer[static_cast<std::size_t>(g)];
    nlohmann::json ops = nlohmann::json::array();
    for (const auto& o : lt.ops)
      ops.push_back({{"op", o.name}, {"group", op_group_name(o.group)}, {"mean_s", o.mean_s}, {"max_s", o.max_s},
                     {"bound", bound_name(o.bound)}, {"priced_by", cost_source_name(o.source)}});
    t["ops"] = ops;
    types.push_back(t);
  }
  j["layer_types"] = types;
  for (int g = 0; g < kOpGroupCount; ++g)
    j["head_tail_seconds"][op_group_name(static_cast<OpGroup>(g))] = r.head_tail_seconds[static_cast<std::size_t>(g)];
  nlohmann::json comms = nlohmann::json::array();
  for (const auto& c : r.comms)
    comms.push_back({{"collective", comm_kind_name(c.kind)}, {"count", c.count}, {"network_bytes", c.bytes},
                     {"mean_span_s", c.mean_span_s}, {"bound", "network"}});
  j["collectives"] = comms;
  if (!r.pipeline.empty()) {
    nlohmann::json st = nlohmann::json::array();
    for (const auto& ps : r.pipeline)
      st.push_back({{"stage_time_s", to_seconds(ps.stage_time)}, {"send_time_s", to_seconds(ps.send_time)}, {"send_bytes", ps.send_bytes}});
    j["pipeline"] = {{"stages", st}, {"pipelined_tokens_per_second", r.pipelined_tokens_per_second}};
  }
  return j;
}

std::string step_result_text(const StepResult& r, const StepSetup& s) {
  std::string o;
  auto line = [&](const std::string& x) { o += x + "\n"; };
  line(setup_line(s));
  line(fmt::format("  step time      {:.3f} ms  ({} mode{}, {} events)", to_ms(r.step_time), step_mode_name(r.mode),
                   r.mode == StepMode::kFast ? ", analytic network" : fmt::format(", {} network", network_mode_name(r.network)),
                   r.events));
  line(fmt::format("  throughput     {:.1f} tokens/s for the step ({:.2f} tokens/s per sequence)", r.tokens_per_second,
                   r.tokens_per_second / static_cast<double>(r.sequences)));
  if (!r.pipeline.empty()) {
    std::string st;
    for (std::size_t i = 0; i < r.pipeline.size(); ++i) {
      st += fmt::format("{}{:.3f}", i ? " + " : "", to_ms(r.pipeline[i].stage_time));
      if (r.pipeline[i].send_time.count() > 0) st += fmt::format(" + send {:.3f}", to_ms(r.pipeline[i].send_time));
    }
    line(fmt::format("  pipeline       {} stages, ms: {}; with one such batch in flight per stage: {:.1f} tokens/s",
                     r.pipeline.size(), st, r.pipelined_tokens_per_second));
  }
  line(fmt::format("  slowest GPU    {} busy {:.3f} ms (mean {:.3f} ms); routed-expert token copies {:.0f} vs mean {:.0f} "
                   "(max GPU {:.0f}); per layer the most-loaded GPU has {:.2f}x the mean; {:.1f} distinct experts per layer",
                   r.slowest_gpu, r.slowest_gpu_busy_s * 1e3, r.mean_gpu_busy_s * 1e3, r.slowest_gpu_expert_rows,
                   r.mean_expert_rows, r.max_expert_rows, r.expert_load_max_over_mean, r.mean_distinct_experts));
  line(fmt::format("  per layer on GPU {} (finishes last), us per layer: compute, or blocked waiting for a collective", r.critical_gpu));
  std::string head = fmt::format("    {:<18}{:>7}", "layer type", "layers");
  for (int g = 0; g < kOpGroupCount; ++g) head += fmt::format("{:>14}", op_group_name(static_cast<OpGroup>(g)));
  line(head + fmt::format("{:>10}", "total"));
  for (const auto& lt : r.layer_types) {
    std::string row = fmt::format("    {:<18}{:>7}", lt.name, lt.layers);
    double total = 0;
    for (const double x : lt.seconds_per_layer) {
      row += fmt::format("{:>14.2f}", x * 1e6);
      total += x;
    }
    line(row + fmt::format("{:>10.2f}", total * 1e6));
  }
  {
    std::string row = fmt::format("    {:<18}{:>7}", "head+tail", 1);
    double total = 0;
    for (const double x : r.head_tail_seconds) {
      row += fmt::format("{:>14.2f}", x * 1e6);
      total += x;
    }
    line(row + fmt::format("{:>10.2f}", total * 1e6));
  }
  line("  ops per layer (mean over GPUs / max, us; bound; * = priced by the roofline, outside the calibration):");
  for (const auto& lt : r.layer_types) {
    std::string row = fmt::format("    {}:", lt.name);
    for (const auto& op : lt.ops)
      row += fmt::format(" {}{} {:.1f}/{:.1f} {};", op.name, op.source == CostSource::kRooflineOutsideCalibration ? "*" : "",
                         op.mean_s * 1e6, op.max_s * 1e6, bound_name(op.bound));
    line(row);
  }
  line("  collectives (bound: network):");
  for (const auto& c : r.comms)
    line(fmt::format("    {:<20} {:>4} x, {:.3f} GB over the network in all, mean span {:.1f} us", comm_kind_name(c.kind),
                     c.count, c.bytes / 1e9, c.mean_span_s * 1e6));
  return o;
}

}  // namespace moesim
