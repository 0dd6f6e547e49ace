// What a GPU's op costs rest on, in one short label that every output using
// them prints: measured (calibrated), extrapolated from another GPU's
// measurements by a stated rule, or the roofline with the description's
// efficiencies.
#pragma once

#include <string>

#include "sim/config/hardware_spec.h"
#include "sim/cost/calibrated.h"

namespace moesim {

struct CostBasis {
  std::string label;          // e.g. "EXTRAPOLATED from h200-sxm measurements (rule: ...)"
  bool extrapolated = false;  // rests on another GPU's measurements or on Hopper efficiencies
};

CostBasis cost_basis(const GpuSpec& gpu, CostModelKind kind);

// The CLI's --cost-model value ("calibrated" or "roofline", already checked by CLI11).
inline CostModelKind cost_model_kind(const std::string& name) {
  return name == "roofline" ? CostModelKind::kRoofline : CostModelKind::kCalibrated;
}

}  // namespace moesim
