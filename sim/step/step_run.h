// Internal to sim/step: what one run of a Program records, and the two ways
// to run it (event engine, lock-step fast path).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sim/core/ids.h"
#include "sim/core/time.h"
#include "sim/hw/topology.h"
#include "sim/step/step.h"
#include "sim/step/mb_links.h"
#include "sim/step/step_program.h"

namespace moesim::step_detail {

struct RunRecord {
  std::vector<std::int64_t> finish;  // per GPU, ps
  // Blocked time at waits, per GPU × (types + 1) × kOpGroupCount (the comm's group), seconds.
  std::vector<double> stall;
  std::vector<std::int64_t> comm_first_send;    // per comm, ps (-1: never sent)
  std::vector<std::int64_t> comm_last_arrival;  // per comm, ps
  std::uint64_t events = 0;
  // Trace (only when asked): op intervals and per-GPU link spans of each comm.
  struct OpSpan {
    std::uint32_t gpu, op;
    std::int64_t start, dur;
  };
  struct LinkSpan {
    std::uint32_t comm, gpu;
    bool tx;
    std::int64_t start, end;
  };
  std::vector<OpSpan> op_spans;
  std::vector<LinkSpan> link_spans;

  void reset(int gpus, int types, std::size_t comms, bool trace);
  double& stall_at(int gpu, int type, OpGroup g, int types) {
    return stall[(static_cast<std::size_t>(gpu) * static_cast<std::size_t>(types + 1) + static_cast<std::size_t>(type)) *
                     kOpGroupCount +
                 static_cast<std::size_t>(g)];
  }
};

struct RunInputs {
  const Program* prog = nullptr;
  const Topology* topo = nullptr;
  std::span<const GpuId> gpus;
  NetworkMode network = NetworkMode::kFluid;
  std::span<const Duration> analytic;  // per comm: alltoall_time of this step's matrix
  // Two micro-batches (TBO) with the analytic rule: per comm, the (link, busy ps) its matrix loads. Empty
  // otherwise. See MicroBatchLinks.
  std::span<const LinkBusy> link_busy;
  std::size_t links = 0;  // topology links (size of the reservation tables)
  bool trace = false;
};

// Event simulation (sim/step/engine.cc).
void run_detailed(const RunInputs& in, RunRecord& rec);
// Lock-step walk with the analytic rule (sim/step/fast_path.cc).
void run_fast(const RunInputs& in, RunRecord& rec);

}  // namespace moesim::step_detail
