// Writing output files all-or-nothing: content goes to a temporary file next to
// the target, which is renamed over it only when complete.
#pragma once

#include <string>

namespace moesim::cli {

// Throws ConfigError(path, "", ...) when the file cannot be written.
void write_file_atomically(const std::string& path, const std::string& content);

}  // namespace moesim::cli
