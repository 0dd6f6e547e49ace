#include "sim/calib/alltoall.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>


namespace moesim::calib {

double bottleneck_offgpu_bytes(const std::vector<std::vector<double>>& m) {
  double worst = 0;
  for (std::size_t i = 0; i < m.size(); ++i) {
    double sent = 0, recv = 0;
    for (std::size_t j = 0; j < m.size(); ++j) {
      if (i == j) continue;
      sent += m[i][j];
      recv += m[j][i];
    }
    worst = std::max({worst, sent, recv});
  }
  return worst;
}

AllToAllFit fit_alltoall(int gpus, const std::string& pattern, std::vector<AllToAllPoint> pts) {
  AllToAllFit f;
  f.gpus = gpus;
  f.pattern = pattern;
  std::erase_if(pts, [](const AllToAllPoint& p) { return !(p.offgpu_bytes > 0) || !(p.seconds > 0); });
  if (pts.empty()) throw std::invalid_argument("all-to-all fit: no points with positive bytes and time");
  std::stable_sort(pts.begin(), pts.end(),
                   [](const AllToAllPoint& a, const AllToAllPoint& b) { return a.offgpu_bytes < b.offgpu_bytes; });
  for (std::size_t i = 0; i < pts.size();) {
    std::size_t j = i;
    double lsum = 0;
    while (j < pts.size() && pts[j].offgpu_bytes == pts[i].offgpu_bytes) lsum += std::log(pts[j++].seconds);
    f.offgpu_bytes.push_back(pts[i].offgpu_bytes);
    f.seconds.push_back(std::exp(lsum / static_cast<double>(j - i)));
    i = j;
  }
  // Least relative squares for t = a + x*b: minimise sum ((a + x b - t) / t)^2.
  double s00 = 0, s01 = 0, s11 = 0, r0 = 0, r1 = 0;
  for (const auto& p : pts) {
    const double w = 1.0 / (p.seconds * p.seconds);
    s00 += w;
    s01 += w * p.offgpu_bytes;
    s11 += w * p.offgpu_bytes * p.offgpu_bytes;
    r0 += w * p.seconds;
    r1 += w * p.seconds * p.offgpu_bytes;
  }
  const double det = s00 * s11 - s01 * s01;
  double a = 0, b = 0;
  if (det > 0) {
    a = (r0 * s11 - r1 * s01) / det;
    b = (s00 * r1 - s01 * r0) / det;
  }
  if (!(a >= 0) || !(b > 0)) {  // degenerate: pure bandwidth through the largest point
    a = 0;
    b = f.seconds.back() / f.offgpu_bytes.back();
  }
  f.alpha_s = a;
  f.beta_Bps = 1.0 / b;
  return f;
}

double alltoall_seconds(const AllToAllFit& f, double x) {
  if (x > 0) {
    const auto& xs = f.offgpu_bytes;
    if (x >= xs.front() && x <= xs.back()) {
      const std::size_t j = static_cast<std::size_t>(std::lower_bound(xs.begin(), xs.end(), x) - xs.begin());
      if (xs[j] == x) return f.seconds[j];
      const double t = (x - xs[j - 1]) / (xs[j] - xs[j - 1]);
      return f.seconds[j - 1] + t * (f.seconds[j] - f.seconds[j - 1]);
    }
  }
  return f.alpha_s + std::max(0.0, x) / f.beta_Bps;
}

double alltoall_seconds_scaled(const AllToAllFit& f, double x, double ratio) {
  const double t = alltoall_seconds(f, x);
  const double fixed = std::min(f.alpha_s, t);
  return fixed + (t - fixed) / ratio;
}

const AllToAllFit* alltoall_fit_for(const std::vector<AllToAllFit>& fits, int gpus, const std::string& pattern) {
  const AllToAllFit* best = nullptr;
  for (const auto& f : fits) {
    if (f.pattern != pattern) continue;
    if (f.gpus == gpus) return &f;
    if (!best || f.gpus > best->gpus) best = &f;
  }
  return best;
}

double moe_alltoall_offgpu_bytes(double tokens, int ranks, int topk, double bpt) {
  const double copies = std::min(ranks, topk);
  return tokens * copies * bpt * static_cast<double>(ranks - 1) / static_cast<double>(ranks);
}

double moe_logical_bandwidth(double tokens, int ranks, int topk, double bpt, double seconds) {
  return tokens * std::min(ranks, topk) * bpt / seconds;
}

}  // namespace moesim::calib
