// Collectives as traffic plans: a sequence of steps, each a set of concurrent
// transfers (a step may repeat, e.g. the N-1 steps of a ring). Pure builders;
// the fluid mode (collectives.h) runs a plan on a FlowNetwork, the analytic
// mode (analytic_comm.h) prices it without events. Only data movement is
// modelled: reduction arithmetic is assumed hidden under the transfers.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sim/core/ids.h"
#include "sim/core/units.h"
#include "sim/hw/byte_matrix.h"
#include "sim/hw/topology.h"

namespace moesim {

struct Transfer {
  NodeId src;
  NodeId dst;
  Bytes bytes;
};

struct CommStep {
  std::vector<Transfer> transfers;  // concurrent
  std::uint32_t repeat = 1;         // the step runs this many times in a row
};

struct CommPlan {
  std::string algorithm;  // "direct", "ring", "in-switch", ...
  std::vector<CommStep> steps;
};

enum class AllReduceAlgorithm { kRing, kInSwitch };

// All-to-all(v): member i sends bytes.at(i, j) to member j, all at once ("direct").
CommPlan plan_all_to_all(const Topology& topo, std::span<const GpuId> gpus, const ByteMatrix& bytes);
// Ring all-gather of a `total`-byte output buffer: N-1 steps, each member sends total/N to the next.
CommPlan plan_all_gather(const Topology& topo, std::span<const GpuId> gpus, Bytes total);
// Ring reduce-scatter of a `total`-byte input buffer: the same traffic as the all-gather.
CommPlan plan_reduce_scatter(const Topology& topo, std::span<const GpuId> gpus, Bytes total);
// All-reduce of a `total`-byte buffer.
//   kRing: reduce-scatter + all-gather, 2(N-1) steps of total/N.
//   kInSwitch (NVLink SHARP / NVLS): the switch reduces and multicasts; pipelined,
//     each GPU sends total*(N+1)/N up (its buffer + its reduced shard to multicast)
//     and receives total*(N+1)/N down (its reduced shard + the multicast of the
//     others), both at once. Needs every member in one scale-up domain whose
//     switch supports in-network reduction; throws std::invalid_argument otherwise.
CommPlan plan_all_reduce(const Topology& topo, std::span<const GpuId> gpus, Bytes total, AllReduceAlgorithm algo);
// One transfer (e.g. a KV-cache handoff).
CommPlan plan_p2p(const Topology& topo, GpuId src, GpuId dst, Bytes bytes);

}  // namespace moesim
