#include "sim/calib/data_folders.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "sim/config/error.h"

namespace moesim::calib {

namespace fs = std::filesystem;

namespace {

bool has_jsonl(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".jsonl") return true;
  return false;
}

}  // namespace

std::string gpu_of_folder(const std::string& name) {
  const auto pos = name.rfind("-x");
  if (pos == std::string::npos || pos + 2 >= name.size()) return name;
  for (std::size_t i = pos + 2; i < name.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(name[i]))) return name;
  return name.substr(0, pos);
}

std::map<std::string, std::vector<std::string>> discover_data(const std::string& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw ConfigError(root, "", "expected the folder of measurement folders (validate/data)");
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& e : fs::directory_iterator(root)) {
    if (!e.is_directory() || !has_jsonl(e.path())) continue;
    out[gpu_of_folder(e.path().filename().string())].push_back(e.path().generic_string());
  }
  for (auto& [g, v] : out) std::sort(v.begin(), v.end());
  return out;
}

std::vector<std::string> folders_of(const std::string& gpu_folder) {
  fs::path p(gpu_folder);
  if (p.filename().empty()) p = p.parent_path();  // trailing slash
  std::error_code ec;
  if (!fs::is_directory(p, ec)) throw ConfigError(gpu_folder, "", "expected a folder of *.jsonl measurement files");
  const std::string id = p.filename().string();
  std::vector<std::string> out{p.generic_string()};
  const fs::path parent = p.has_parent_path() ? p.parent_path() : fs::path(".");
  for (const auto& e : fs::directory_iterator(parent)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && n != id && gpu_of_folder(n) == id && has_jsonl(e.path()))
      out.push_back((p.has_parent_path() ? parent / n : fs::path(n)).generic_string());
  }
  std::sort(out.begin() + 1, out.end());
  return out;
}

}  // namespace moesim::calib
