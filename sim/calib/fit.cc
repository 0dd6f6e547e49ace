#include "sim/calib/fit.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "sim/calib/op_from_record.h"
#include "sim/calib/predict.h"
#include "sim/calib/prepare.h"
#include "sim/calib/query.h"

namespace moesim::calib {

namespace {

struct RawPoint {
  double x, ratio, aux;
  std::string from;
};

Curve make_curve(const CurveId& id, std::vector<RawPoint> pts) {
  Curve c{id.kernel, id.dtype, id.variant, id.key, {}, {}, {}, {}};
  std::stable_sort(pts.begin(), pts.end(), [](const RawPoint& a, const RawPoint& b) { return a.x < b.x; });
  for (std::size_t i = 0; i < pts.size();) {
    std::size_t j = i;
    double lr = 0, la = 0;
    std::string from;
    while (j < pts.size() && pts[j].x == pts[i].x) {
      lr += std::log(pts[j].ratio);
      la += std::log(pts[j].aux);
      from += (from.empty() ? "" : ",") + pts[j].from;
      ++j;
    }
    const double n = static_cast<double>(j - i);
    c.x.push_back(pts[i].x);
    c.ratio.push_back(std::exp(lr / n));
    if (id.kernel == "grouped_gemm") c.aux.push_back(std::exp(la / n));
    c.from.push_back(from);
    i = j;
  }
  return c;
}

}  // namespace

Calibration fit_calibration(const std::vector<Record>& records, const GpuSpec& gpu, std::vector<Exclusion> excluded) {
  Calibration cal;
  cal.gpu_id = gpu.id;
  cal.reference = reference_of(gpu);
  cal.excluded = std::move(excluded);
  std::set<std::string> devices, envs, files;
  std::map<CurveId, std::vector<RawPoint>> curves;
  std::map<std::pair<int, std::string>, std::vector<AllToAllPoint>> a2a;
  double floor_any = 0;
  std::int64_t most_graph = 0, most_eager = 0;
  for (const Record& r : records) {
    devices.insert(r.gpu);
    if (!r.environment.empty()) envs.insert(r.environment);
    files.insert(r.file);
    ++cal.points;
    const double t = r.median_us * 1e-6;
    if (r.kernel == "nccl_alltoall") {
      std::vector<std::vector<double>> m;
      for (const auto& row : r.shape.matrix) m.emplace_back(row.begin(), row.end());
      a2a[{static_cast<int>(r.shape.gpus), r.shape.pattern}].push_back({bottleneck_offgpu_bytes(m), t});
    } else if (r.kernel == "copy") {
      cal.copy_bytes_per_s = std::max(cal.copy_bytes_per_s, 2.0 * static_cast<double>(r.shape.bytes) / t);
    } else if (r.kernel == "p2p") {
      cal.p2p_bytes_per_s = std::max(cal.p2p_bytes_per_s, static_cast<double>(r.shape.bytes) / t);
    } else if (r.kernel == "launch") {
      if (!r.shape.host_ahead) continue;
      const double per = t / static_cast<double>(r.shape.kernels);
      // The largest batch of kernels gives the steady per-kernel cost.
      double& slot = r.shape.graph ? cal.launch_graph_s : cal.launch_eager_s;
      std::int64_t& most = r.shape.graph ? most_graph : most_eager;
      if (r.shape.kernels > most) {
        most = r.shape.kernels;
        slot = per;
      }
      if (r.shape.kernels == 1 && !r.shape.graph) cal.kernel_floor_s = t;
      if (r.shape.kernels == 1) floor_any = floor_any == 0 ? t : std::min(floor_any, t);
    } else if (auto id = curve_id(r)) {
      auto op = op_from_record(r);
      auto q = query_for(*op);
      const double ref = reference_seconds(*op, *q, cal.reference, source_precision(*q), dtype_operand_bytes(*q));
      curves[*id].push_back({q->x, t / ref, q->aux, r.where()});
    }
  }
  if (cal.kernel_floor_s == 0) cal.kernel_floor_s = floor_any;
  for (auto& [id, pts] : curves) cal.curves.push_back(make_curve(id, std::move(pts)));
  for (auto& [g, pts] : a2a) cal.alltoall.push_back(fit_alltoall(g.first, g.second, std::move(pts)));
  cal.device_name = devices.empty() ? "" : *devices.begin();
  for (const auto& d : devices)
    if (d != cal.device_name) cal.device_name += " / " + d;
  cal.environment.assign(envs.begin(), envs.end());
  cal.data_files.assign(files.begin(), files.end());
  return cal;
}

}  // namespace moesim::calib
