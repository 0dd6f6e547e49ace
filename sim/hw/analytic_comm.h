// Analytic (fast) communication time, no events: a step of concurrent
// transfers takes
//     max over links of (bytes crossing the link / link bandwidth)
//   + the largest route latency among its transfers,
// i.e. every GPU's injection (uplink) and ejection (downlink) limit and every
// shared link (NIC, leaf-spine) as a bottleneck, with perfect overlap. It is a
// lower bound on the fluid (max-min) time up to the latency term and equals it
// on symmetric traffic, where max-min keeps every bottleneck link busy until
// the end. Cost O(transfers x route length + links).
#pragma once

#include <span>

#include "sim/core/time.h"
#include "sim/hw/byte_matrix.h"
#include "sim/hw/comm_plan.h"
#include "sim/hw/topology.h"

namespace moesim {

[[nodiscard]] Duration step_time(const Topology& topo, const CommStep& step);
// Sum over steps of repeat x step_time.
[[nodiscard]] Duration plan_time(const Topology& topo, const CommPlan& plan);
// All-to-all(v) among `gpus` (bytes.at(i, j): member i -> member j) without building a plan.
[[nodiscard]] Duration alltoall_time(const Topology& topo, std::span<const GpuId> gpus, const ByteMatrix& bytes);

}  // namespace moesim
