#include "sim/cost/cost_basis.h"

#include <fmt/format.h>

namespace moesim {

CostBasis cost_basis(const GpuSpec& gpu, CostModelKind kind) {
  CostBasis b;
  b.extrapolated = gpu.extrapolated_from.has_value();
  if (kind == CostModelKind::kRoofline) {
    b.label = fmt::format("roofline with the efficiencies of {}", gpu.file);
    if (b.extrapolated)
      b.label += fmt::format(" (EXTRAPOLATED: {} efficiencies applied to {})", *gpu.extrapolated_from, gpu.id);
    return b;
  }
  if (b.extrapolated) {
    b.label = fmt::format("EXTRAPOLATED from {} measurements to {} (rule: {} /extrapolation)", *gpu.extrapolated_from,
                          gpu.id, gpu.file);
  } else if (gpu.calibration_path) {
    b.label = fmt::format("calibrated on {} measurements ({})", gpu.id, *gpu.calibration_path);
  } else {
    b.label = fmt::format("roofline ({} has no calibration)", gpu.id);
  }
  return b;
}

}  // namespace moesim
