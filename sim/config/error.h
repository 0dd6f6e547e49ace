// Errors in user input (description files, scenarios, CLI arguments, data
// files). main() prints what() as one line and exits with code 2.
#pragma once

#include <stdexcept>
#include <string>

namespace moesim {

class ConfigError : public std::runtime_error {
 public:
  // file: the path as the user gave it; pointer: a JSON pointer ("/gpu/hbm/bandwidth"), or "" when the
  // error concerns the whole file; message: what was expected and what was found.
  ConfigError(std::string file, std::string pointer, const std::string& message)
      : std::runtime_error(format(file, pointer, message)), file_(std::move(file)), pointer_(std::move(pointer)) {}

  const std::string& file() const { return file_; }
  const std::string& pointer() const { return pointer_; }

 private:
  static std::string format(const std::string& file, const std::string& pointer, const std::string& message) {
    return file + ": " + (pointer.empty() ? std::string() : pointer + ": ") + message;
  }
  std::string file_;
  std::string pointer_;
};

}  // namespace moesim
