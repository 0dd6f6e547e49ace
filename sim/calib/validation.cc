#include "sim/calib/validation.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "sim/calib/alltoall.h"
#include "sim/calib/fit.h"
#include "sim/calib/op_from_record.h"
#include "sim/cost/calibrated.h"

namespace moesim::calib {

namespace {

const std::vector<std::string>& family_order() {
  static const std::vector<std::string> k = {"gemm", "grouped_gemm", "attention", "router", "permute", "all_to_all"};
  return k;
}

}  // namespace

std::string report_family(const std::string& kernel) {
  if (kernel == "gemm" || kernel == "grouped_gemm" || kernel == "router") return kernel;
  if (kernel == "mla_decode") return "attention";
  if (kernel == "permute" || kernel == "unpermute") return "permute";
  if (kernel == "nccl_alltoall") return "all_to_all";
  return "";
}

std::optional<Budget> budget_for(const std::string& f) {
  if (f == "all_to_all") return Budget{10.0, std::nullopt};
  // A whole EP MoE layer composed from the fitted kernels and the network model (ep_layer_validation.h), never
  // fitted to it: a drift gate set above what the simulator achieves (median 27.5 %, p90 42.1 %, optimistic, on
  // the 8-GPU data of 2026-11-22); validate/CALIBRATION.md lists the gaps behind the error.
  if (f == "ep_layer") return Budget{35.0, 50.0};
  if (f == "gemm" || f == "grouped_gemm" || f == "attention" || f == "router" || f == "permute")
    return Budget{5.0, 15.0};
  return std::nullopt;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

FamilyStats summarize_family(const std::string& family, std::vector<PointError> errors) {
  FamilyStats s;
  s.family = family;
  s.points = static_cast<int>(errors.size());
  s.budget = budget_for(family);
  std::vector<double> e;
  for (const auto& p : errors) {
    e.push_back(p.error_pct);
    if (p.source != "calibrated") ++s.outside;
  }
  s.median_pct = quantile(e, 0.5);
  s.p90_pct = quantile(e, 0.9);
  if (s.budget && s.points > 0)
    s.pass = s.median_pct <= s.budget->median_pct && (!s.budget->p90_pct || s.p90_pct <= *s.budget->p90_pct);
  std::stable_sort(errors.begin(), errors.end(),
                   [](const PointError& a, const PointError& b) { return a.error_pct > b.error_pct; });
  if (errors.size() > 3) errors.resize(3);
  s.worst = std::move(errors);
  return s;
}

bool GpuValidation::pass() const {
  return std::all_of(families.begin(), families.end(), [](const FamilyStats& f) { return f.pass; });
}

GpuValidation validate_gpu(const std::vector<Record>& usable, const GpuSpec& gpu, SplitRule rule) {
  GpuValidation v;
  v.gpu = gpu.id;
  v.rule = rule;
  const Split split = split_records(usable, rule);
  v.fitted = static_cast<int>(split.fit.size());
  v.held = static_cast<int>(split.held.size());
  const CalibratedCostModel model(fit_calibration(split.fit, gpu));
  const Calibration& cal = model.calibration();
  std::map<std::string, std::vector<PointError>> errors;
  const CostOptions opts;
  for (const Record& r : split.held) {
    const std::string fam = report_family(r.kernel);
    if (fam.empty()) continue;
    PointError p;
    p.where = r.where();
    p.what = r.kernel + " " + r.dtype + " " + r.shape_text.substr(0, 160);
    p.measured_us = r.median_us;
    if (r.kernel == "nccl_alltoall") {
      const AllToAllFit* f = alltoall_fit_for(cal.alltoall, static_cast<int>(r.shape.gpus), r.shape.pattern);
      if (!f || f->gpus != r.shape.gpus) continue;
      std::vector<std::vector<double>> m;
      for (const auto& row : r.shape.matrix) m.emplace_back(row.begin(), row.end());
      const double x = bottleneck_offgpu_bytes(m);
      p.predicted_us = alltoall_seconds(*f, x) * 1e6;
      const bool inside = x >= f->offgpu_bytes.front() && x <= f->offgpu_bytes.back();
      p.source = inside ? "calibrated" : "alpha_beta_outside_range";
    } else {
      auto op = op_from_record(r);
      if (!op) continue;
      const OpCost c = model.cost(*op, gpu, opts);
      p.predicted_us = to_us(c.time);
      p.source = cost_source_name(c.source);
    }
    p.error_pct = std::fabs(p.predicted_us - p.measured_us) / p.measured_us * 100.0;
    errors[fam].push_back(std::move(p));
  }
  for (const auto& f : family_order())
    if (errors.count(f)) v.families.push_back(summarize_family(f, std::move(errors[f])));
  return v;
}

}  // namespace moesim::calib
