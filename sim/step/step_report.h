// A StepResult for people (a table) and for programs (JSON).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "sim/step/step.h"

namespace moesim {

nlohmann::json step_result_json(const StepResult& r, const StepSetup& s);
std::string step_result_text(const StepResult& r, const StepSetup& s);

}  // namespace moesim
