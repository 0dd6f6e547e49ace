// Strict loader for model description files (models/README.md).
#pragma once

#include <string>

#include "sim/config/model_spec.h"

namespace moesim {

ModelSpec load_model(const std::string& path);

}  // namespace moesim
