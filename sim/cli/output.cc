#include "sim/cli/output.h"

#include <filesystem>
#include <fstream>

#include "sim/config/error.h"

namespace moesim::cli {

void write_file_atomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp-moesim";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw ConfigError(path, "", "cannot write the output file (does its folder exist?)");
    out << content;
    out.flush();
    if (!out) {
      std::error_code ec;
      std::filesystem::remove(tmp, ec);
      throw ConfigError(path, "", "writing the output file failed");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw ConfigError(path, "", "cannot move the finished output file into place");
  }
}

}  // namespace moesim::cli
