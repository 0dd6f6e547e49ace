#include "sim/calib/calibration_io.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sim/config/error.h"

namespace moesim::calib {

namespace {

using ojson = nlohmann::ordered_json;
using nlohmann::json;

constexpr int kFormat = 1;

ojson doubles(const std::vector<double>& v) {
  ojson a = ojson::array();
  for (double d : v) a.push_back(d);
  return a;
}

class Reader {
 public:
  Reader(const json& j, const std::string& file, std::string ptr) : j_(j), file_(file), ptr_(std::move(ptr)) {}
  [[noreturn]] void fail(const std::string& key, const std::string& msg) const {
    throw ConfigError(file_, key.empty() ? ptr_ : ptr_ + "/" + key, msg);
  }
  const json& get(const std::string& key) const {
    if (!j_.is_object() || !j_.contains(key)) fail(key, "missing member \"" + key + "\"");
    return j_.at(key);
  }
  std::string str(const std::string& key) const {
    const json& v = get(key);
    if (!v.is_string()) fail(key, "expected a string");
    return v.get<std::string>();
  }
  double num(const std::string& key) const {
    const json& v = get(key);
    if (!v.is_number()) fail(key, "expected a number");
    return v.get<double>();
  }
  std::vector<double> nums(const std::string& key, bool positive) const {
    const json& v = get(key);
    if (!v.is_array()) fail(key, "expected an array of numbers");
    std::vector<double> out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_number() || (positive && !(v[i].get<double>() > 0)))
        fail(key + "/" + std::to_string(i), positive ? "expected a positive number" : "expected a number");
      out.push_back(v[i].get<double>());
    }
    return out;
  }
  std::vector<std::string> strs(const std::string& key) const {
    const json& v = get(key);
    if (!v.is_array()) fail(key, "expected an array of strings");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) fail(key + "/" + std::to_string(i), "expected a string");
      out.push_back(v[i].get<std::string>());
    }
    return out;
  }
  std::vector<Reader> objects(const std::string& key) const {
    const json& v = get(key);
    if (!v.is_array()) fail(key, "expected an array of objects");
    std::vector<Reader> out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_object()) fail(key + "/" + std::to_string(i), "expected an object");
      out.emplace_back(v[i], file_, ptr_ + "/" + key + "/" + std::to_string(i));
    }
    return out;
  }
  Reader child(const std::string& key) const {
    const json& v = get(key);
    if (!v.is_object()) fail(key, "expected an object");
    return Reader(v, file_, ptr_ + "/" + key);
  }
  const json& raw() const { return j_; }
  const std::string& pointer() const { return ptr_; }

 private:
  const json& j_;
  const std::string& file_;
  std::string ptr_;
};

void check_increasing(const Reader& r, const std::string& key, const std::vector<double>& v) {
  for (std::size_t i = 1; i < v.size(); ++i)
    if (!(v[i] > v[i - 1])) r.fail(key + "/" + std::to_string(i), "expected strictly increasing values");
}

}  // namespace

std::string calibration_to_json(const Calibration& c) {
  ojson j;
  j["kind"] = "calibration";
  j["format"] = kFormat;
  j["gpu"] = c.gpu_id;
  j["device"] = c.device_name;
  j["generated_by"] = c.generated_by;
  j["method"] =
      "ratio = measured median time / reference time, reference = max(flops / nameplate peak, bytes / nameplate HBM "
      "bandwidth) of the op's minimum work; priced ops interpolate the ratio in log-log space along x "
      "(validate/CALIBRATION.md)";
  j["environment"] = c.environment;
  j["data_files"] = c.data_files;
  ojson peaks = ojson::object();
  for (const auto& [p, v] : c.reference.peak_flops) peaks[p] = v;
  j["reference"] = {{"peak_flops", peaks},
                    {"hbm_bytes_per_s", c.reference.hbm_bytes_per_s},
                    {"nvlink_bytes_per_s", c.reference.nvlink_bytes_per_s}};
  j["measured"] = {{"kernel_floor_s", c.kernel_floor_s},   {"launch_eager_s", c.launch_eager_s},
                   {"launch_graph_s", c.launch_graph_s},   {"copy_bytes_per_s", c.copy_bytes_per_s},
                   {"p2p_bytes_per_s", c.p2p_bytes_per_s}};
  j["points"] = c.points;
  ojson curves = ojson::array();
  for (const Curve& cv : c.curves) {
    ojson o;
    o["kernel"] = cv.kernel;
    o["dtype"] = cv.dtype;
    o["variant"] = cv.variant;
    o["key"] = doubles(cv.key);
    o["x"] = doubles(cv.x);
    o["ratio"] = doubles(cv.ratio);
    o["aux"] = doubles(cv.aux);
    o["from"] = cv.from;
    curves.push_back(std::move(o));
  }
  j["curves"] = std::move(curves);
  ojson a2a = ojson::array();
  for (const AllToAllFit& f : c.alltoall)
    a2a.push_back({{"gpus", f.gpus},
                   {"pattern", f.pattern},
                   {"offgpu_bytes", doubles(f.offgpu_bytes)},
                   {"seconds", doubles(f.seconds)},
                   {"alpha_s", f.alpha_s},
                   {"beta_bytes_per_s", f.beta_Bps}});
  j["alltoall"] = std::move(a2a);
  ojson ex = ojson::array();
  for (const Exclusion& e : c.excluded) ex.push_back({{"where", e.where}, {"kernel", e.kernel}, {"reason", e.reason}});
  j["excluded"] = std::move(ex);
  return j.dump(1) + "\n";
}

Calibration parse_calibration(const std::string& text, const std::string& file) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw ConfigError(file, "", fmt::format("malformed JSON (byte {})", e.byte));
  }
  Reader r(j, file, "");
  if (!j.is_object()) r.fail("", "expected a calibration object");
  if (r.str("kind") != "calibration") r.fail("kind", "expected \"calibration\"");
  if (r.num("format") != kFormat) r.fail("format", fmt::format("expected format {}; re-run moesim calibrate", kFormat));
  Calibration c;
  c.gpu_id = r.str("gpu");
  c.device_name = r.str("device");
  c.generated_by = r.str("generated_by");
  c.environment = r.strs("environment");
  c.data_files = r.strs("data_files");
  const Reader ref = r.child("reference");
  const Reader peaks = ref.child("peak_flops");
  for (const auto& [k, v] : peaks.raw().items()) {
    if (!v.is_number() || !(v.get<double>() > 0)) peaks.fail(k, "expected a positive FLOP/s figure");
    c.reference.peak_flops[k] = v.get<double>();
  }
  if (!c.reference.peak_flops.count("bf16")) peaks.fail("bf16", "missing member \"bf16\"");
  c.reference.hbm_bytes_per_s = ref.num("hbm_bytes_per_s");
  if (!(c.reference.hbm_bytes_per_s > 0)) ref.fail("hbm_bytes_per_s", "expected a positive bandwidth");
  c.reference.nvlink_bytes_per_s = ref.num("nvlink_bytes_per_s");
  const Reader m = r.child("measured");
  c.kernel_floor_s = m.num("kernel_floor_s");
  c.launch_eager_s = m.num("launch_eager_s");
  c.launch_graph_s = m.num("launch_graph_s");
  c.copy_bytes_per_s = m.num("copy_bytes_per_s");
  c.p2p_bytes_per_s = m.num("p2p_bytes_per_s");
  c.points = static_cast<int>(r.num("points"));
  for (const Reader& o : r.objects("curves")) {
    Curve cv;
    cv.kernel = o.str("kernel");
    cv.dtype = o.str("dtype");
    cv.variant = o.str("variant");
    cv.key = o.nums("key", true);
    cv.x = o.nums("x", true);
    cv.ratio = o.nums("ratio", true);
    cv.aux = o.nums("aux", true);
    cv.from = o.strs("from");
    if (cv.x.empty()) o.fail("x", "expected at least one point");
    check_increasing(o, "x", cv.x);
    if (cv.ratio.size() != cv.x.size()) o.fail("ratio", "expected as many values as \"x\"");
    if (!cv.aux.empty() && cv.aux.size() != cv.x.size()) o.fail("aux", "expected none or as many values as \"x\"");
    c.curves.push_back(std::move(cv));
  }
  for (const Reader& o : r.objects("alltoall")) {
    AllToAllFit f;
    f.gpus = static_cast<int>(o.num("gpus"));
    f.pattern = o.str("pattern");
    f.offgpu_bytes = o.nums("offgpu_bytes", true);
    f.seconds = o.nums("seconds", true);
    f.alpha_s = o.num("alpha_s");
    f.beta_Bps = o.num("beta_bytes_per_s");
    if (f.offgpu_bytes.empty() || f.seconds.size() != f.offgpu_bytes.size())
      o.fail("seconds", "expected as many values as \"offgpu_bytes\" (at least one)");
    check_increasing(o, "offgpu_bytes", f.offgpu_bytes);
    if (!(f.beta_Bps > 0)) o.fail("beta_bytes_per_s", "expected a positive bandwidth");
    c.alltoall.push_back(std::move(f));
  }
  for (const Reader& o : r.objects("excluded")) c.excluded.push_back({o.str("where"), o.str("kernel"), o.str("reason")});
  return c;
}

Calibration load_calibration(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, "", "cannot read the calibration file (run `moesim calibrate validate/data/<gpu>`)");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_calibration(ss.str(), path);
}

}  // namespace moesim::calib
