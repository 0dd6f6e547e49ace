#include "sim/step/pair_routes.h"

#include <algorithm>

namespace moesim::step_detail {

PairRoutes::PairRoutes(const Topology& topo, std::span<const GpuId> gpus) : n_(gpus.size()) {
  offset_.push_back(0);
  for (std::size_t i = 0; i < n_; ++i) {
    for (std::size_t j = 0; j < n_; ++j) {
      Duration lat{};
      if (i != j) {
        for (const LinkId l : topo.route(gpus[i], gpus[j])) {
          links_.push_back(l.value());
          lat += topo.link(l).latency;
        }
      }
      latency_.push_back(lat);
      offset_.push_back(static_cast<std::uint32_t>(links_.size()));
    }
  }
  for (std::size_t l = 0; l < topo.link_count(); ++l)
    bandwidth_.push_back(topo.link(LinkId(static_cast<std::uint32_t>(l))).bandwidth.value());
  load_.assign(bandwidth_.size(), 0.0);
}

Duration PairRoutes::time(const std::vector<double>& m) {
  Duration lat{};
  for (std::size_t p = 0; p < n_ * n_; ++p) {
    const double b = m[p];
    if (p / n_ == p % n_ || !(b > 0)) continue;
    for (std::uint32_t k = offset_[p]; k < offset_[p + 1]; ++k) {
      const std::uint32_t l = links_[k];
      if (load_[l] == 0) touched_.push_back(l);
      load_[l] += b;
    }
    lat = std::max(lat, latency_[p]);
  }
  double worst = 0;
  for (const std::uint32_t l : touched_) {
    worst = std::max(worst, load_[l] / bandwidth_[l]);
    load_[l] = 0;
  }
  touched_.clear();
  return duration_from_seconds_ceil(worst) + lat;
}

}  // namespace moesim::step_detail
