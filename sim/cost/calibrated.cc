#include "sim/cost/calibrated.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "sim/calib/calibration_io.h"
#include "sim/calib/predict.h"
#include "sim/calib/query.h"
#include "sim/config/error.h"
#include "sim/config/hardware_load.h"
#include "sim/config/json_reader.h"

namespace moesim {

CalibratedCostModel::CalibratedCostModel(calib::Calibration cal) : cal_(std::move(cal)) {
  for (const auto& c : cal_.curves) curves_.push_back(&c);
}

std::string CalibratedCostModel::name() const { return "calibrated(" + cal_.gpu_id + ")"; }

OpCost CalibratedCostModel::cost(const Op& op, const GpuSpec& gpu, const CostOptions& opts) const {
  if (op.kind == OpKind::kCommunication)
    throw std::invalid_argument("CalibratedCostModel: communication ops are timed by the network model");
  auto fallback = [&] {
    OpCost c = roofline_.cost(op, gpu, opts);
    c.source = CostSource::kRooflineOutsideCalibration;
    return c;
  };
  const auto q = calib::query_for(op);
  if (!q) return fallback();
  const auto r = calib::predict_ratio(curves_, *q);
  if (!r) return fallback();
  const std::string src_prec = calib::source_precision(*q);
  const double el = calib::dtype_operand_bytes(*q);
  const double ref_src = calib::reference_seconds(op, *q, cal_.reference, src_prec, el);
  double t = r->ratio * ref_src;
  OpCost c;
  c.source = CostSource::kCalibrated;
  calib::Reference ref = cal_.reference;
  std::string prec = src_prec;
  if (gpu.id != cal_.gpu_id) {
    ref = calib::reference_of(gpu);
    prec = calib::target_precision(op, *q);
    const double ref_dst = calib::reference_seconds(op, *q, ref, prec, calib::target_operand_bytes(op, *q));
    t = calib::extrapolate_seconds(t, cal_.kernel_floor_s, ref_src, ref_dst);
    c.source = CostSource::kCalibratedExtrapolated;
  }
  const calib::Work w = calib::reference_work(op, *q, gpu.id != cal_.gpu_id ? calib::target_operand_bytes(op, *q) : el);
  const double compute_s = w.flops / ref.peak_for(prec);
  const double memory_s = w.bytes / ref.hbm_bytes_per_s;
  // Bound: the larger roofline term, or latency when the measured time is mostly neither.
  if (std::max(compute_s, memory_s) < 0.25 * t) c.bound = Bound::kLatency;
  else c.bound = compute_s >= memory_s ? Bound::kCompute : Bound::kMemory;
  c.time = duration_from_seconds_ceil(t);
  return c;
}

calib::Calibration load_calibration_for(const GpuSpec& gpu) {
  if (gpu.calibration_path) return calib::load_calibration(*gpu.calibration_path);
  if (gpu.extrapolated_from) {
    const std::string src_file = resolve_relative(gpu.file, *gpu.extrapolated_from + ".json");
    const GpuSpec src = load_gpu(src_file);
    if (!src.calibration_path)
      throw ConfigError(src_file, "/calibration",
                        "no calibration file, so " + gpu.id + " (extrapolated from " + src.id + ") has none either");
    calib::Calibration cal = calib::load_calibration(*src.calibration_path);
    if (cal.gpu_id != src.id)
      throw ConfigError(*src.calibration_path, "/gpu", "expected \"" + src.id + "\", found \"" + cal.gpu_id + "\"");
    return cal;
  }
  throw ConfigError(gpu.file, "/calibration",
                    "no \"calibration\" file and no \"extrapolation\": the calibrated cost model has nothing to use");
}

std::unique_ptr<CostModel> make_cost_model(const GpuSpec& gpu, CostModelKind kind) {
  if (kind == CostModelKind::kRoofline) return std::make_unique<RooflineCostModel>();
  return std::make_unique<CalibratedCostModel>(load_calibration_for(gpu));
}

}  // namespace moesim
