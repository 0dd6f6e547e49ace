// Internal to sim/step: the analytic all-to-all time of sim/hw/analytic_comm.h
// (bottleneck link bytes / bandwidth + the largest route latency), with the
// routes between a fixed set of GPUs looked up once instead of on every call.
// time(m) == alltoall_time(topo, gpus, m) exactly (same summation order;
// tests/unit/moe/step_test.cc checks it).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sim/core/ids.h"
#include "sim/core/time.h"
#include "sim/hw/topology.h"

namespace moesim::step_detail {

class PairRoutes {
 public:
  PairRoutes(const Topology& topo, std::span<const GpuId> gpus);
  // m: gpus × gpus bytes, row = source; the diagonal is ignored.
  Duration time(const std::vector<double>& m);

 private:
  std::size_t n_;
  std::vector<std::uint32_t> offset_;  // pair (i·n + j) -> links [offset_[p], offset_[p+1])
  std::vector<std::uint32_t> links_;
  std::vector<Duration> latency_;      // per pair
  std::vector<double> bandwidth_;      // per link
  std::vector<double> load_;           // scratch, per link
  std::vector<std::uint32_t> touched_;
};

}  // namespace moesim::step_detail
