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
  std::span<const std::vector<std::pair<std::uint32_t, std::int64_t>>> link_busy;
  std::size_t links = 0;  // topology links (size of the reservation tables)
  bool trace = false;
};

// The analytic rule's contention between the two micro-batches' collectives (TBO): a collective c of micro-batch
// m starts at S_c, when its last source sends; on every link it loads it holds the link for its busy time from
// max(S_c, the end of the other micro-batch's last reservation of that link) (FIFO). Its delay is how much later
// than S_c + its own bandwidth time the last of those reservations ends; a destination whose data would arrive
// after S_c receives it that much later (earlier arrivals are not delayed). Without overlap there is one
// micro-batch and no delay. Collectives are reserved in the order of their starts (program order).
class MicroBatchLinks {
 public:
  void reset(std::size_t links) {
    for (auto& f : free_) f.assign(links, 0);
  }
  // Reserves comm `busy` of micro-batch mb starting at s; returns its delay (ps).
  std::int64_t reserve(int mb, std::int64_t s, const std::vector<std::pair<std::uint32_t, std::int64_t>>& busy) {
    std::int64_t own = 0, end = s;
    const std::vector<std::int64_t>& other = free_[static_cast<std::size_t>(1 - mb)];
    std::vector<std::int64_t>& mine = free_[static_cast<std::size_t>(mb)];
    for (const auto& [l, b] : busy) {
      const std::int64_t e = std::max(s, other[l]) + b;
      own = std::max(own, b);
      end = std::max(end, e);
      mine[l] = std::max(mine[l], e);
    }
    return end - (s + own);
  }

 private:
  std::vector<std::int64_t> free_[2];
};

// Event simulation (sim/step/engine.cc).
void run_detailed(const RunInputs& in, RunRecord& rec);
// Lock-step walk with the analytic rule (sim/step/fast_path.cc).
void run_fast(const RunInputs& in, RunRecord& rec);

}  // namespace moesim::step_detail
