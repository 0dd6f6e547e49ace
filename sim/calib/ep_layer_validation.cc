#include "sim/calib/ep_layer_validation.h"

#include <fmt/format.h>

#include <cmath>
#include <utility>

namespace moesim::calib {

EpLayerValidation validate_ep_layers(const std::string& gpu, const std::vector<EpLayerRecord>& records,
                                     const EpLayerSetup& setup) {
  EpLayerValidation v;
  v.gpu = gpu;
  v.system = setup.system.file;
  std::map<std::string, RoutingSpec> routing;  // one synthetic-router run per routing kind
  std::map<std::pair<int, std::string>, std::vector<const EpLayerRow*>> by_group;
  std::vector<PointError> errors;
  for (const auto& r : records) {
    if (r.check_failed) continue;
    if (!routing.count(r.routing)) routing.emplace(r.routing, ep_layer_routing(r, setup.model));
    EpLayerRow row{r, predict_ep_layer(r, setup, routing.at(r.routing)), measured_phase_groups(r), 0};
    row.error_pct = (row.predicted.layer_us / r.median_us - 1) * 100;
    errors.push_back({r.where, fmt::format("ep_layer {} GPUs T={} {}", r.gpus, r.tokens_per_gpu, r.routing),
                      r.median_us, row.predicted.layer_us, std::fabs(row.error_pct), "calibrated"});
    v.rows.push_back(std::move(row));
  }
  for (const auto& row : v.rows) by_group[{row.record.gpus, row.record.routing}].push_back(&row);
  for (const auto& [key, rows] : by_group) {
    EpLayerGroup g;
    g.gpus = key.first;
    g.routing = key.second;
    g.points = static_cast<int>(rows.size());
    std::vector<double> abs_err, signed_err, mload, pload;
    std::map<std::string, std::vector<double>> ratios;
    for (const EpLayerRow* row : rows) {
      abs_err.push_back(std::fabs(row->error_pct));
      signed_err.push_back(row->error_pct);
      mload.push_back(row->record.recv_max_over_mean);
      pload.push_back(row->predicted.load_max_over_mean);
      for (const auto& [phase, us] : row->predicted.phases_us) {
        const double m = row->measured_phases.at(phase);
        if (m > 0) ratios[phase].push_back(us / m);
      }
    }
    g.median_abs_pct = quantile(abs_err, 0.5);
    g.p90_abs_pct = quantile(abs_err, 0.9);
    g.median_signed_pct = quantile(signed_err, 0.5);
    g.measured_load = quantile(mload, 0.5);
    g.predicted_load = quantile(pload, 0.5);
    for (const auto& [phase, x] : ratios) g.phase_ratio[phase] = quantile(x, 0.5);
    v.groups.push_back(std::move(g));
  }
  v.overall = summarize_family("ep_layer", std::move(errors));
  return v;
}

}  // namespace moesim::calib
