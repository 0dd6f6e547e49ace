// Collectives in fluid mode: a CommPlan (comm_plan.h) run on a FlowNetwork,
// step after step, each step's transfers as concurrent flows; the callback gets
// the time the last byte of the last step arrived. Several collectives may run
// at once on one Network and share its links.
//
// Use from model code:
//   Network net(sim, topo);
//   net.all_to_all(gpus, byte_matrix, [&](Time done) { ... });
// and for the fast path the pure analytic_comm.h: alltoall_time(topo, gpus, byte_matrix).
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "sim/core/simulator.h"
#include "sim/hw/byte_matrix.h"
#include "sim/hw/comm_plan.h"
#include "sim/hw/flow_net.h"
#include "sim/hw/topology.h"

namespace moesim {

class Network {
 public:
  using DoneCallback = std::function<void(Time)>;

  Network(Simulator& sim, const Topology& topo);
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;
  ~Network();

  // Starts the plan now; on_done(finish time) when its last step completes
  // (at now, through an event, for an empty plan).
  void run(CommPlan plan, DoneCallback on_done);

  void all_to_all(std::span<const GpuId> gpus, const ByteMatrix& bytes, DoneCallback on_done) {
    run(plan_all_to_all(topology(), gpus, bytes), std::move(on_done));
  }
  void all_gather(std::span<const GpuId> gpus, Bytes total, DoneCallback on_done) {
    run(plan_all_gather(topology(), gpus, total), std::move(on_done));
  }
  void reduce_scatter(std::span<const GpuId> gpus, Bytes total, DoneCallback on_done) {
    run(plan_reduce_scatter(topology(), gpus, total), std::move(on_done));
  }
  void all_reduce(std::span<const GpuId> gpus, Bytes total, AllReduceAlgorithm algo, DoneCallback on_done) {
    run(plan_all_reduce(topology(), gpus, total, algo), std::move(on_done));
  }
  void p2p(GpuId src, GpuId dst, Bytes bytes, DoneCallback on_done) {
    run(plan_p2p(topology(), src, dst, bytes), std::move(on_done));
  }

  [[nodiscard]] FlowNetwork& flows() { return flows_; }
  [[nodiscard]] const Topology& topology() const { return flows_.topology(); }

 private:
  struct PlanRun;
  void start_step(PlanRun* run);
  void step_done(PlanRun* run, Time t);

  FlowNetwork flows_;
  // Plans under way, owned here; each flow's callback holds a plain pointer to its
  // run (small enough for std::function to store without allocating).
  std::vector<std::unique_ptr<PlanRun>> runs_;
};

}  // namespace moesim
