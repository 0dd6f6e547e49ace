// `moesim calibrate validate/data/<gpu> [--out hardware/calibration/<gpu>.json]`:
// fits the calibrated cost model to a GPU's measurements (its folder and its
// <gpu>-x<N> NCCL folders) and writes the calibration file all-or-nothing.
#include <fmt/format.h>

#include <filesystem>

#include "sim/calib/calibration_io.h"
#include "sim/calib/data_folders.h"
#include "sim/calib/fit.h"
#include "sim/calib/prepare.h"
#include "sim/calib/record.h"
#include "sim/cli/command.h"
#include "sim/cli/output.h"
#include "sim/config/error.h"
#include "sim/config/hardware_load.h"

namespace moesim::cli {

namespace {

struct CalibrateOptions {
  std::string data;
  std::string out;
  std::string gpu_file;
};

int run_calibrate(const CalibrateOptions& o) {
  namespace fs = std::filesystem;
  const std::vector<std::string> folders = calib::folders_of(o.data);
  fs::path main_folder(folders.front());
  const std::string id = main_folder.filename().string();
  const std::string gpu_file = o.gpu_file.empty() ? "hardware/gpus/" + id + ".json" : o.gpu_file;
  const GpuSpec gpu = load_gpu(gpu_file);
  if (gpu.id != id)
    throw ConfigError(gpu_file, "/id", fmt::format("expected the GPU of the data folder \"{}\", found \"{}\"", id, gpu.id));
  std::vector<calib::Record> records = calib::read_records(folders);
  if (records.empty()) throw ConfigError(o.data, "", "no measurements (*.jsonl) in the folder");
  calib::Prepared prep = calib::prepare_records(std::move(records));
  calib::Calibration cal = calib::fit_calibration(prep.usable, gpu, prep.excluded);
  std::string cmd = "moesim calibrate";
  for (const auto& f : folders) cmd += " " + f;
  cal.generated_by = cmd;
  const std::string out = o.out.empty() ? "hardware/calibration/" + id + ".json" : o.out;
  write_file_atomically(out, calib::calibration_to_json(cal));
  fmt::print("{}: {} records fitted into {} curves and {} all-to-all fits; {} excluded (listed in the file)\n", out,
             cal.points, cal.curves.size(), cal.alltoall.size(), cal.excluded.size());
  return 0;
}

}  // namespace

void add_calibrate_command(CLI::App& parent, CommandAction& action) {
  auto opts = std::make_shared<CalibrateOptions>();
  CLI::App* cmd = parent.add_subcommand("calibrate", "Fit the calibrated cost model to a GPU's measurements");
  cmd->add_option("data", opts->data, "measurement folder, validate/data/<gpu> (its <gpu>-x<N> folders are included)")
      ->required();
  cmd->add_option("--out", opts->out, "calibration file to write (default hardware/calibration/<gpu>.json)");
  cmd->add_option("--gpu", opts->gpu_file, "GPU description (default hardware/gpus/<gpu>.json)");
  cmd->callback([opts, &action] { action = [opts] { return run_calibrate(*opts); }; });
}

}  // namespace moesim::cli
