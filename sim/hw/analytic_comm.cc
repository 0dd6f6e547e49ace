#include "sim/hw/analytic_comm.h"

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace moesim {
namespace {

Duration bottleneck_time(const Topology& topo, const std::vector<double>& load) {
  double worst = 0;  // seconds
  for (std::size_t l = 0; l < load.size(); ++l) {
    if (load[l] > 0) worst = std::max(worst, load[l] / topo.link(LinkId(static_cast<std::uint32_t>(l))).bandwidth.value());
  }
  return duration_from_seconds_ceil(worst);
}

}  // namespace

Duration step_time(const Topology& topo, const CommStep& step) {
  std::vector<double> load(topo.link_count(), 0.0);
  Duration lat{};
  for (const Transfer& t : step.transfers) {
    if (!(t.bytes.value() > 0) || t.src == t.dst) continue;
    const auto route = topo.route(t.src, t.dst);
    for (const LinkId l : route) load[l.value()] += t.bytes.value();
    lat = std::max(lat, topo.latency(route));
  }
  return bottleneck_time(topo, load) + lat;
}

Duration plan_time(const Topology& topo, const CommPlan& plan) {
  Duration total{};
  for (const CommStep& s : plan.steps) total += step_time(topo, s) * static_cast<std::int64_t>(s.repeat);
  return total;
}

Duration alltoall_time(const Topology& topo, std::span<const GpuId> gpus, const ByteMatrix& bytes) {
  const std::size_t n = gpus.size();
  if (bytes.size() != n) throw std::invalid_argument("alltoall_time: byte matrix size != number of GPUs");
  std::vector<double> load(topo.link_count(), 0.0);
  Duration lat{};
  const double* row = bytes.data().data();
  for (std::size_t i = 0; i < n; ++i, row += n) {
    const NodeId src = topo.gpu(gpus[i]);
    for (std::size_t j = 0; j < n; ++j) {
      const double b = row[j];
      if (j == i || !(b > 0)) continue;
      const auto route = topo.route(src, topo.gpu(gpus[j]));
      Duration l{};
      for (const LinkId id : route) {
        load[id.value()] += b;
        l += topo.link(id).latency;
      }
      lat = std::max(lat, l);
    }
  }
  return bottleneck_time(topo, load) + lat;
}

}  // namespace moesim
