// Helpers shared by the unit tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

namespace moesim::test {

inline std::string source_path(const std::string& rel) { return std::string(MOESIM_SOURCE_DIR) + "/" + rel; }

// A file in a fresh temporary folder, removed with the object.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& content) {
    dir_ = std::filesystem::temp_directory_path() /
           ("moesim-test-" + std::to_string(reinterpret_cast<std::uintptr_t>(this)) + "-" + name);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / name).string();
    std::ofstream(path_) << content;
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }
  std::filesystem::path dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::string path_;
};

}  // namespace moesim::test
