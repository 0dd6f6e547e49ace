// The serving simulation of a scenario: requests arrive (workload), a router
// places them on instances, each instance steps its attention ranks in
// lockstep with continuous batching (batcher.h) over its KV cache
// (kv_cache.h), each step timed by a StepTimer; in disaggregated deployments a
// prefill pool hands each request's KV cache to a decode pool over the network
// model (fluid point-to-point flows on the cluster topology). Glue only: the
// policies are the pure functions of batcher.h, router.h, mtp.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sim/config/scenario.h"
#include "sim/core/ids.h"
#include "sim/obs/metrics.h"
#include "sim/serve/step_timer.h"

namespace moesim::serve {

// Makes the step timer of one instance of `pool` placed on `gpus`.
using StepTimerFactory =
    std::function<std::unique_ptr<StepTimer>(const ScenarioSpec&, const PoolSpec& pool, std::span<const GpuId> gpus)>;

struct PoolStats {
  std::string name;
  PoolRole role = PoolRole::kAggregated;
  int instances = 0;
  int gpus = 0;
  int ranks_per_instance = 0;
  int kv_blocks_per_rank = 0;
  int block_tokens = 0;
  double weight_bytes_per_gpu = 0;
  long long steps = 0;
  Duration busy{};  // GPU time, summed over instances (a pipeline lane's step counts 1/lanes of its time)
  int lanes = 1;    // pipeline lanes per instance (plan pp): batches in flight
  Duration attention{}, experts{}, communication{}, other{};  // summed over steps
  // Bytes the pool's GPUs sent to other GPUs (the steps' collectives, and the KV caches a prefill pool hands
  // over), and of those the bytes that left their scale-up domain.
  double network_bytes = 0, scale_out_bytes = 0;
  double decode_seqs_per_rank_sum = 0;  // summed over steps: mean decode sequences per rank
  int max_decode_seqs_per_rank = 0;
  int peak_kv_blocks = 0;  // the fullest rank's peak
  long long preemptions = 0;
  long long prefill_tokens = 0;
  long long decode_tokens = 0;  // tokens delivered by decode steps
  long long step_evaluations = 0;  // step-simulator evaluations behind the pool's step timer
};

struct EmissionPoint {
  Time t;
  std::int64_t output_tokens = 0;   // cumulative, all requests
  std::int64_t prefill_tokens = 0;  // cumulative prompt tokens computed
};

// One sampled step, for the timeline.
struct StepSample {
  int instance = 0;
  Time start;
  Duration duration{};
  int decode_seqs = 0;
  std::int64_t prefill_tokens = 0;
};

struct ServingResult {
  obs::MetricsCollector metrics;
  std::vector<PoolStats> pools;
  std::vector<std::string> instance_names;  // "decode/0"
  std::vector<EmissionPoint> emissions;
  std::vector<StepSample> step_samples;  // bounded (ServingOptions::trace_steps)
  Time window_start{};
  Time window_end{};
  Time makespan{};
  long long requests_issued = 0;
  double kv_transfer_bytes = 0;
  long long kv_transfers = 0;
  std::uint64_t events = 0;
};

struct ServingOptions {
  std::string label;        // for the progress line
  bool progress = true;     // a progress line on stderr once the run passes 2 s of wall time
  int trace_steps = 20000;  // step samples kept (the first ones)
  bool token_times = false; // keep every token delivery of every request (obs::tokens_csv)
};

ServingResult run_serving(const ScenarioSpec& sc, const StepTimerFactory& timers, const ServingOptions& opts = {});

}  // namespace moesim::serve
