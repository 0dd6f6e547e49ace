// End to end on the committed measurements: `moesim validate`'s gate must pass
// for every GPU with data under validate/data/.
#include <gtest/gtest.h>

#include <filesystem>

#include "sim/calib/data_folders.h"
#include "sim/calib/prepare.h"
#include "sim/calib/validation.h"
#include "sim/config/hardware_load.h"
#include "tests/unit/test_util.h"

namespace moesim::calib {
namespace {

TEST(ValidateCommittedData, EveryFamilyWithinBudget) {
  const std::string root = test::source_path("validate/data");
  std::error_code ec;
  const auto data = std::filesystem::is_directory(root, ec) ? discover_data(root)
                                                             : std::map<std::string, std::vector<std::string>>{};
  if (data.empty()) GTEST_SKIP() << "!!!!! validate/data holds no measurements: the calibration is NOT validated !!!!!";
  for (const auto& [id, folders] : data) {
    const GpuSpec gpu = load_gpu(test::source_path("hardware/gpus/" + id + ".json"));
    const Prepared p = prepare_records(read_records(folders));
    const GpuValidation v = validate_gpu(p.usable, gpu, SplitRule::kPoints);
    EXPECT_GT(v.held, 0) << id;
    for (const auto& f : v.families)
      EXPECT_TRUE(f.pass) << id << " " << f.family << ": median " << f.median_pct << " %, p90 " << f.p90_pct << " %";
  }
}

TEST(ValidateCommittedData, FolderNames) {
  EXPECT_EQ(gpu_of_folder("h200-sxm-x4"), "h200-sxm");
  EXPECT_EQ(gpu_of_folder("h200-sxm"), "h200-sxm");
  EXPECT_EQ(gpu_of_folder("odd-xl"), "odd-xl");
}

}  // namespace
}  // namespace moesim::calib
