// `moesim validate`: fit on one part of a GPU's measurements, predict the other
// part with the simulator's own pricing path (CalibratedCostModel::cost on the
// Op of each held-out record; the all-to-all fit for NCCL records) and compare.
//
// Error per point: |predicted - measured| / measured, in percent. Per report
// family: points, median and p90 (linear interpolation between order
// statistics, as the harness computes its percentiles). Budgets (issue 6):
// median <= 5 % and p90 <= 15 % for gemm, grouped_gemm, attention, router and
// permute (permute + unpermute); median <= 10 % for all_to_all; median <= 35 % and p90 <= 50 % for ep_layer
// (a whole simulated MoE layer against the measured one, ep_layer_validation.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sim/calib/calibration.h"
#include "sim/calib/record.h"
#include "sim/calib/split.h"
#include "sim/config/hardware_spec.h"

namespace moesim::calib {

// "gemm", "grouped_gemm", "attention", "router", "permute", "all_to_all"; "" for kernels not validated.
std::string report_family(const std::string& kernel);

struct Budget {
  double median_pct = 0;
  std::optional<double> p90_pct;
};
std::optional<Budget> budget_for(const std::string& family);

// q-quantile (0..1) of the values, linear between order statistics; NaN when empty.
double quantile(std::vector<double> values, double q);

struct PointError {
  std::string where;
  std::string what;  // kernel dtype shape
  double measured_us = 0, predicted_us = 0, error_pct = 0;
  std::string source;  // cost_source_name of the prediction
};

struct FamilyStats {
  std::string family;
  int points = 0;
  int outside = 0;  // predictions that fell back to the roofline
  double median_pct = 0, p90_pct = 0;
  std::optional<Budget> budget;
  bool pass = true;  // within budget (always true without a budget or without points)
  std::vector<PointError> worst;  // the 3 largest errors
};

// Stats of one family's errors with its budget applied.
FamilyStats summarize_family(const std::string& family, std::vector<PointError> errors);

struct GpuValidation {
  std::string gpu;
  SplitRule rule = SplitRule::kPoints;
  int fitted = 0, held = 0;
  std::vector<FamilyStats> families;  // in report order
  bool pass() const;
};

GpuValidation validate_gpu(const std::vector<Record>& usable, const GpuSpec& gpu, SplitRule rule);

}  // namespace moesim::calib
