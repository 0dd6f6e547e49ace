// The calibrated cost model: op times fitted to the measurements under
// validate/data/<gpu>/ (sim/calib, validate/CALIBRATION.md), read from the GPU
// description's "calibration" file. For a GPU that cannot be measured (its
// description has "extrapolation": {"from": <measured gpu id>}), the source
// GPU's calibration is scaled by the rule of sim/calib/predict.h and every cost
// says kCalibratedExtrapolated. Outside the measured range, and for op kinds that
// were never measured, the roofline model prices the op and the cost says
// kRooflineOutsideCalibration.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sim/calib/calibration.h"
#include "sim/cost/cost_model.h"
#include "sim/cost/roofline.h"

namespace moesim {

enum class CostModelKind { kRoofline, kCalibrated };

class CalibratedCostModel final : public CostModel {
 public:
  // `cal` was fitted on the GPU `cal.gpu_id`; a cost() for another GPU id is extrapolated.
  explicit CalibratedCostModel(calib::Calibration cal);
  OpCost cost(const Op& op, const GpuSpec& gpu, const CostOptions& opts) const override;
  std::string name() const override;
  const calib::Calibration& calibration() const { return cal_; }

 private:
  calib::Calibration cal_;
  std::vector<const calib::Curve*> curves_;
  RooflineCostModel roofline_;
};

// The calibration a GPU's costs come from: its own "calibration" file, or for an
// extrapolated GPU, that of hardware/gpus/<extrapolated_from>.json next to its
// description. ConfigError when there is none.
calib::Calibration load_calibration_for(const GpuSpec& gpu);

std::unique_ptr<CostModel> make_cost_model(const GpuSpec& gpu, CostModelKind kind);

}  // namespace moesim
