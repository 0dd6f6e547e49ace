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
  // The same, and for every link the matrix loads: (link, load / bandwidth rounded up to the ps) into *busy
  // (cleared first). The largest busy time is the bandwidth part of time(m).
  Duration time(const std::vector<double>& m, std::vector<std::pair<std::uint32_t, std::int64_t>>* busy);

 private:
  static constexpr std::uint32_t kNoHead = ~std::uint32_t{0};
  std::size_t n_;
  std::size_t links_;                     // topology links; load_[links_] is a spare slot for padding
  std::vector<std::uint32_t> row_head_;   // per source: the first link of all its routes, or kNoHead
  std::size_t stride_ = 0;                // route links per pair in tail_ (the longest route, less the head)
  std::vector<std::uint32_t> tail_;       // per pair (i·n + j): its route without row_head_[i], padded
  std::vector<Duration> latency_;         // per pair
  std::vector<double> bandwidth_;         // per link
  std::vector<double> load_;              // scratch, per link (+ the spare)
};

}  // namespace moesim::step_detail
