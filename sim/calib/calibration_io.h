// hardware/calibration/<gpu>.json: writing (deterministic: same calibration,
// same bytes) and strict reading (ConfigError with the JSON pointer).
#pragma once

#include <string>

#include "sim/calib/calibration.h"

namespace moesim::calib {

std::string calibration_to_json(const Calibration& cal);
Calibration parse_calibration(const std::string& text, const std::string& file);
Calibration load_calibration(const std::string& path);

}  // namespace moesim::calib
