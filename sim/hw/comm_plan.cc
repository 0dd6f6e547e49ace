#include "sim/hw/comm_plan.h"

#include <stdexcept>

namespace moesim {
namespace {

CommPlan ring(const Topology& topo, std::span<const GpuId> gpus, Bytes chunk, std::uint32_t steps) {
  CommPlan p{"ring", {}};
  const std::size_t n = gpus.size();
  if (n < 2 || steps == 0) return p;
  CommStep s;
  s.repeat = steps;
  for (std::size_t k = 0; k < n; ++k) s.transfers.push_back({topo.gpu(gpus[k]), topo.gpu(gpus[(k + 1) % n]), chunk});
  p.steps.push_back(std::move(s));
  return p;
}

}  // namespace

CommPlan plan_all_to_all(const Topology& topo, std::span<const GpuId> gpus, const ByteMatrix& bytes) {
  if (bytes.size() != gpus.size()) throw std::invalid_argument("all-to-all: byte matrix size != number of GPUs");
  CommPlan p{"direct", {}};
  CommStep s;
  for (std::size_t i = 0; i < gpus.size(); ++i) {
    for (std::size_t j = 0; j < gpus.size(); ++j) {
      if (i != j && bytes.at(i, j) > 0) s.transfers.push_back({topo.gpu(gpus[i]), topo.gpu(gpus[j]), Bytes(bytes.at(i, j))});
    }
  }
  if (!s.transfers.empty()) p.steps.push_back(std::move(s));
  return p;
}

CommPlan plan_all_gather(const Topology& topo, std::span<const GpuId> gpus, Bytes total) {
  const auto n = static_cast<std::uint32_t>(gpus.size());
  return ring(topo, gpus, total / std::max<double>(n, 1), n > 0 ? n - 1 : 0);
}

CommPlan plan_reduce_scatter(const Topology& topo, std::span<const GpuId> gpus, Bytes total) {
  return plan_all_gather(topo, gpus, total);
}

CommPlan plan_all_reduce(const Topology& topo, std::span<const GpuId> gpus, Bytes total, AllReduceAlgorithm algo) {
  const auto n = static_cast<std::uint32_t>(gpus.size());
  if (algo == AllReduceAlgorithm::kRing) return ring(topo, gpus, total / std::max<double>(n, 1), n > 0 ? 2 * (n - 1) : 0);
  if (!topo.in_switch_reduction()) {
    throw std::invalid_argument("in-switch all-reduce: the system's scale-up switch has no in-network reduction");
  }
  CommPlan p{"in-switch", {}};
  if (n < 2) return p;
  const int domain = topo.domain_of(gpus[0]);
  for (const GpuId g : gpus) {
    if (topo.domain_of(g) != domain) {
      throw std::invalid_argument("in-switch all-reduce: all GPUs must be in one scale-up domain");
    }
  }
  const NodeId sw = topo.scale_up_switch(domain);
  const Bytes per_dir = total * (static_cast<double>(n + 1) / n);
  CommStep s;
  for (const GpuId g : gpus) {
    s.transfers.push_back({topo.gpu(g), sw, per_dir});
    s.transfers.push_back({sw, topo.gpu(g), per_dir});
  }
  p.steps.push_back(std::move(s));
  return p;
}

CommPlan plan_p2p(const Topology& topo, GpuId src, GpuId dst, Bytes bytes) {
  CommPlan p{"p2p", {}};
  if (src != dst && bytes.value() > 0) p.steps.push_back(CommStep{{{topo.gpu(src), topo.gpu(dst), bytes}}, 1});
  return p;
}

}  // namespace moesim
