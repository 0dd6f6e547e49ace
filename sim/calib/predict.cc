#include "sim/calib/predict.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "sim/calib/interp.h"

namespace moesim::calib {

namespace {

constexpr std::size_t kNeighbours = 3;

// Ratio from the curves of one key (all variants), or nullopt when x is outside any of them.
std::optional<double> ratio_at_key(const std::vector<const Curve*>& group, const Query& q) {
  struct V {
    double aux, ratio;
  };
  std::vector<V> vs;
  for (const Curve* c : group) {
    auto r = interp_loglog(c->x, c->ratio, q.x);
    if (!r) return std::nullopt;
    double a = 1;
    if (!c->aux.empty()) {
      auto av = interp_loglog(c->x, c->aux, q.x);
      if (!av) return std::nullopt;
      a = *av;
    }
    vs.push_back({a, *r});
  }
  if (vs.empty()) return std::nullopt;
  if (vs.size() == 1) return vs[0].ratio;
  if (q.kernel != "grouped_gemm") {
    double l = 0;
    for (const V& v : vs) l += std::log(v.ratio);
    return std::exp(l / static_cast<double>(vs.size()));
  }
  std::sort(vs.begin(), vs.end(), [](const V& a, const V& b) { return std::tie(a.aux, a.ratio) < std::tie(b.aux, b.ratio); });
  if (q.aux <= vs.front().aux) return vs.front().ratio;
  if (q.aux >= vs.back().aux) return vs.back().ratio;
  std::vector<double> ax, rs;
  for (const V& v : vs) {
    if (!ax.empty() && v.aux <= ax.back()) {  // equal imbalance: keep the geometric mean
      rs.back() = std::sqrt(rs.back() * v.ratio);
      continue;
    }
    ax.push_back(v.aux);
    rs.push_back(v.ratio);
  }
  auto r = interp_loglog(ax, rs, q.aux);
  return r ? r : std::optional<double>(rs.back());
}

double log_distance(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double t = std::log(a[i]) - std::log(b[i]);
    d += t * t;
  }
  return std::sqrt(d);
}

}  // namespace

std::optional<RatioPrediction> predict_ratio(const std::vector<const Curve*>& curves, const Query& q) {
  std::map<std::vector<double>, std::vector<const Curve*>> by_key;
  for (const Curve* c : curves)
    if (c->kernel == q.kernel && c->dtype == q.dtype && c->key.size() == q.key.size()) by_key[c->key].push_back(c);
  if (auto it = by_key.find(q.key); it != by_key.end()) {
    auto r = ratio_at_key(it->second, q);
    if (!r) return std::nullopt;
    return RatioPrediction{*r, true};
  }
  struct N {
    double dist;
    double ratio;
  };
  std::vector<N> ns;  // std::map iteration: ordered by key, so ties in distance resolve deterministically
  for (const auto& [key, group] : by_key)
    if (auto r = ratio_at_key(group, q)) ns.push_back({log_distance(key, q.key), *r});
  if (ns.empty()) return std::nullopt;
  std::stable_sort(ns.begin(), ns.end(), [](const N& a, const N& b) { return a.dist < b.dist; });
  if (ns.size() > kNeighbours) ns.resize(kNeighbours);
  double wsum = 0, lsum = 0;
  for (const N& n : ns) {
    const double w = 1.0 / std::max(n.dist * n.dist, 1e-12);
    wsum += w;
    lsum += w * std::log(n.ratio);
  }
  return RatioPrediction{std::exp(lsum / wsum), false};
}

std::string precision_name(Precision p) {
  switch (p) {
    case Precision::kBf16: return "bf16";
    case Precision::kFp16: return "fp16";
    case Precision::kFp8: return "fp8";
    case Precision::kFp4: return "fp4";
    case Precision::kInt8: return "int8";
  }
  return "bf16";
}

std::string source_precision(const Query& q) {
  if ((q.kernel == "gemm" || q.kernel == "grouped_gemm") && q.dtype != "bf16") return "fp8";
  return "bf16";
}

std::string target_precision(const Op& op, const Query& q) {
  if (q.kernel == "gemm" || q.kernel == "grouped_gemm") return precision_name(op.precision);
  return "bf16";
}

double target_operand_bytes(const Op& op, const Query& q) {
  if (q.kernel != "gemm" && q.kernel != "grouped_gemm") return dtype_operand_bytes(q);
  switch (op.precision) {
    case Precision::kFp4: return 0.5;
    case Precision::kFp8:
    case Precision::kInt8: return 1.0;
    default: return 2.0;
  }
}

double reference_seconds(const Op& op, const Query& q, const Reference& ref, const std::string& precision,
                         double operand_bytes) {
  const Work w = reference_work(op, q, operand_bytes);
  return std::max(w.flops / ref.peak_for(precision), w.bytes / ref.hbm_bytes_per_s);
}

Reference reference_of(const GpuSpec& gpu) {
  Reference r;
  for (const auto& [p, v] : gpu.peak) r.peak_flops[precision_name(p)] = v.value();
  r.hbm_bytes_per_s = gpu.hbm_bandwidth.value();
  r.nvlink_bytes_per_s = gpu.nvlink_bandwidth_per_direction.value();
  return r;
}

double extrapolate_seconds(double t_src, double floor_s, double ref_src_s, double ref_dst_s) {
  const double floor = std::min(std::max(floor_s, 0.0), t_src);
  return floor + (t_src - floor) * ref_dst_s / ref_src_s;
}

}  // namespace moesim::calib
