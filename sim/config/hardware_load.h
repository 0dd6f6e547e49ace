// Strict loaders for GPU and system description files (hardware/README.md).
// Throw moesim::ConfigError naming the file and JSON pointer on bad input.
#pragma once

#include <string>

#include "sim/config/hardware_spec.h"

namespace moesim {

GpuSpec load_gpu(const std::string& path);
// Loads the system and the GPU file it references (path relative to the system file).
SystemSpec load_system(const std::string& path);

}  // namespace moesim
