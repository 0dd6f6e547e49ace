// The strict loaders: every shipped description loads, and each class of bad
// input gives one error naming the file and the JSON path.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "sim/config/error.h"
#include "sim/config/hardware_load.h"
#include "sim/config/model_load.h"
#include "tests/unit/test_util.h"

namespace moesim {
namespace {

using nlohmann::json;
using test::source_path;
using test::TempFile;

json valid_gpu() {
  return json::parse(R"({
    "kind": "gpu", "id": "test-gpu", "name": "Test GPU",
    "sources": {"DOC": "a datasheet"},
    "source": "DOC",
    "arch": "hopper", "compute_capability": "9.0", "sm_count": 132,
    "peak": {"bf16": "989.4 TFLOP/s", "fp8": "1979 TFLOP/s"},
    "hbm": {"physical": "141 GiB", "usable": "139.8 GiB", "bandwidth": "4.8 TB/s"},
    "l2": "60 MiB", "tdp": "700 W",
    "nvlink": {"generation": 4, "links": 18, "bandwidth_per_direction": "450 GB/s"},
    "host_link": {"kind": "PCIe Gen5 x16", "bandwidth_per_direction": "64 GB/s"},
    "roofline": {"compute_efficiency": 0.76, "memory_efficiency": 0.8,
                 "launch_overhead": "4 us", "launch_overhead_graph": "2 us"}
  })");
}

// Loads `doc` as a GPU file and returns the error message (fails the test if it loads).
std::string gpu_error(const json& doc) {
  TempFile f("gpu.json", doc.dump(2));
  try {
    load_gpu(f.path());
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), f.path());
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << "error must be one line: " << what;
    EXPECT_EQ(what.rfind(f.path(), 0), 0u) << "error must start with the file: " << what;
    return what;
  }
  ADD_FAILURE() << "expected a ConfigError for " << doc.dump();
  return "";
}

TEST(GpuLoader, LoadsAValidDescriptionWithUnitsResolved) {
  TempFile f("gpu.json", valid_gpu().dump());
  const GpuSpec g = load_gpu(f.path());
  EXPECT_DOUBLE_EQ(g.hbm_bandwidth.value(), 4.8e12);
  EXPECT_DOUBLE_EQ(g.hbm_usable.value(), 139.8 * 1073741824.0);
  EXPECT_DOUBLE_EQ(g.peak_for(Precision::kFp8).value(), 1979e12);
  // No FP4 on Hopper: an FP4 kernel runs on the FP8 path.
  EXPECT_DOUBLE_EQ(g.peak_for(Precision::kFp4).value(), 1979e12);
  EXPECT_EQ(g.roofline.launch_overhead, Duration{4'000'000});
  EXPECT_EQ(g.provenance.by_pointer.at("/hbm/bandwidth").source, "DOC");
}

TEST(GpuLoader, UnknownKeyNamesItsPath) {
  json d = valid_gpu();
  d["hbm"]["bandwith"] = "4.8 TB/s";
  const std::string e = gpu_error(d);
  EXPECT_NE(e.find("/hbm/bandwith"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
}

TEST(GpuLoader, WrongTypeNamesItsPath) {
  json d = valid_gpu();
  d["sm_count"] = "132";
  const std::string e = gpu_error(d);
  EXPECT_NE(e.find("/sm_count"), std::string::npos) << e;
  EXPECT_NE(e.find("whole number"), std::string::npos) << e;
}

TEST(GpuLoader, BadUnitNamesItsPath) {
  json d = valid_gpu();
  d["hbm"]["bandwidth"] = "4.8 TBps";
  const std::string e = gpu_error(d);
  EXPECT_NE(e.find("/hbm/bandwidth"), std::string::npos) << e;
  EXPECT_NE(e.find("bandwidth"), std::string::npos) << e;
}

TEST(GpuLoader, WrongDimensionNamesItsPath) {
  json d = valid_gpu();
  d["hbm"]["bandwidth"] = "141 GB";  // a capacity where a bandwidth belongs
  const std::string e = gpu_error(d);
  EXPECT_NE(e.find("/hbm/bandwidth"), std::string::npos) << e;
  EXPECT_NE(e.find("a size in bytes"), std::string::npos) << e;
}

TEST(GpuLoader, OutOfRangeNamesItsPath) {
  json d = valid_gpu();
  d["roofline"]["compute_efficiency"] = 1.5;
  const std::string e = gpu_error(d);
  EXPECT_NE(e.find("/roofline/compute_efficiency"), std::string::npos) << e;
}

TEST(GpuLoader, InconsistentFieldsNameThePath) {
  json d = valid_gpu();
  d["hbm"]["usable"] = "160 GB";  // more usable than the 151.4e9 B physical
  const std::string e = gpu_error(d);
  EXPECT_NE(e.find("/hbm/usable"), std::string::npos) << e;
  EXPECT_NE(e.find("exceeds physical"), std::string::npos) << e;
}

TEST(GpuLoader, MissingRequiredValueNamesItsPath) {
  json d = valid_gpu();
  d["hbm"].erase("bandwidth");
  const std::string e = gpu_error(d);
  EXPECT_NE(e.find("/hbm/bandwidth"), std::string::npos) << e;
}

TEST(GpuLoader, NumberWithoutSourceIsRejected) {
  json d = valid_gpu();
  d.erase("source");
  const std::string e = gpu_error(d);
  EXPECT_NE(e.find("without a source"), std::string::npos) << e;
}

TEST(GpuLoader, UnknownSourceKeyIsRejected) {
  json d = valid_gpu();
  d["l2"] = {{"value", "60 MiB"}, {"source", "NOPE"}};
  const std::string e = gpu_error(d);
  EXPECT_NE(e.find("/l2/source"), std::string::npos) << e;
  EXPECT_NE(e.find("NOPE"), std::string::npos) << e;
}

TEST(GpuLoader, BlackwellWithoutExtrapolationRuleIsRejected) {
  json d = valid_gpu();
  d["arch"] = "blackwell";
  const std::string e = gpu_error(d);
  EXPECT_NE(e.find("extrapolation"), std::string::npos) << e;
}

TEST(GpuLoader, MissingFileIsOneLine) {
  try {
    load_gpu("/nonexistent/gpu.json");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("/nonexistent/gpu.json: ", 0), 0u);
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos);
  }
}

TEST(GpuLoader, MalformedJsonGivesLineAndColumn) {
  TempFile f("gpu.json", "{\n  \"kind\": \"gpu\",\n  \"id\": oops\n}\n");
  try {
    load_gpu(f.path());
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("malformed JSON at line 3"), std::string::npos) << e.what();
  }
}

TEST(SystemLoader, ErrorInReferencedGpuFileNamesBothFiles) {
  TempFile gpu("gpu.json", "{\"kind\": \"gpu\"}");
  const json sys = json::parse(R"({"kind": "system", "id": "s", "name": "S", "sources": {"D": "d"}, "source": "D",
    "gpu": "gpu.json", "gpus_per_node": 8,
    "scale_up": {"domain_gpus": 8, "switch_chips": 4, "bandwidth_per_gpu_per_direction": "450 GB/s", "latency": "1 us"},
    "power": {"per_gpu": "700 W"}})");
  const std::string sys_path = (gpu.dir() / "sys.json").string();
  std::ofstream(sys_path) << sys.dump();
  try {
    load_system(sys_path);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("/gpu"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("gpu.json"), std::string::npos) << e.what();
  }
}

// A system around a valid GPU file; `scale_up_extra` adds members to "scale_up".
std::string system_error(const std::string& scale_up_extra) {
  TempFile gpu("gpu.json", valid_gpu().dump());
  const std::string sys_path = (gpu.dir() / "sys.json").string();
  std::ofstream(sys_path) << R"({"kind": "system", "id": "s", "name": "S", "sources": {"D": "d"}, "source": "D",
    "gpu": "gpu.json", "gpus_per_node": 8,
    "scale_up": {"domain_gpus": 8, "switch_chips": 4, "bandwidth_per_gpu_per_direction": "450 GB/s", "latency": "1 us")"
                          << scale_up_extra << R"(}, "power": {"per_gpu": "700 W"}})";
  try {
    const SystemSpec s = load_system(sys_path);
    EXPECT_DOUBLE_EQ(s.scale_up.achieved_fraction, scale_up_extra.empty() ? 1.0 : 0.82);
  } catch (const ConfigError& e) {
    return e.pointer();
  }
  return "";
}

TEST(SystemLoader, AchievedFractionIsOptionalAndBounded) {
  EXPECT_EQ(system_error(""), "");                               // absent: 1
  EXPECT_EQ(system_error(R"(, "achieved_fraction": 0.82)"), "");  // read
  EXPECT_EQ(system_error(R"(, "achieved_fraction": 1.2)"), "/scale_up/achieved_fraction");
  EXPECT_EQ(system_error(R"(, "achieved_fraction": "0.8 GB/s")"), "/scale_up/achieved_fraction");
}

// Every shipped description must load.
TEST(ShippedDescriptions, AllLoad) {
  int systems = 0, models = 0;
  for (const auto& entry : std::filesystem::directory_iterator(source_path("hardware/systems"))) {
    EXPECT_NO_THROW(load_system(entry.path().string())) << entry.path();
    ++systems;
  }
  for (const auto& entry : std::filesystem::directory_iterator(source_path("models"))) {
    if (entry.path().extension() != ".json") continue;
    EXPECT_NO_THROW(load_model(entry.path().string())) << entry.path();
    ++models;
  }
  EXPECT_GE(systems, 5);  // HGX H100/H200/B200, GB200 NVL72, GB300 NVL72
  EXPECT_GE(models, 7);
}

TEST(ShippedDescriptions, BlackwellFiguresAreLabelledExtrapolated) {
  const SystemSpec s = load_system(source_path("hardware/systems/gb200-nvl72.json"));
  ASSERT_TRUE(s.gpu.extrapolated_from);
  EXPECT_EQ(*s.gpu.extrapolated_from, "h200-sxm");
  EXPECT_FALSE(s.gpu.provenance.with_status({"X"}).empty());
  EXPECT_EQ(s.scale_up.domain_gpus, 72);
  // The achieved share of NVLink 5 rests on published GB200 all-to-all kernels, labelled as an estimate.
  EXPECT_DOUBLE_EQ(s.scale_up.achieved_fraction, 0.8);
  EXPECT_EQ(s.provenance.by_pointer.at("/scale_up/achieved_fraction").status, "E");
}

}  // namespace
}  // namespace moesim
