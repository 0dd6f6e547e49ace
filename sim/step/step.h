// One forward pass of an MoE model on a cluster: the library entry point.
//
//   StepSimulator sim(setup);           // once per (model, system, plan, batch shape, options): expands the ops,
//                                       // builds the topology, routing model, placements and static op costs
//   StepResult r = sim.run(step_index); // each step: draws the routing, prices the routed GEMMs, runs the pass
//
// Modes (StepSetup::mode):
//   kDetailed: an event simulation. Each GPU runs its instruction stream on
//     one compute stream (one event per run of compute ops between two
//     synchronisation points); collectives run on the network, concurrently
//     with compute: a GPU blocks only at the wait of a collective whose data it
//     needs. Network (StepSetup::network):
//       kFluid: every (source, destination) transfer is a flow on the
//         max-min FlowNetwork, started when its source reaches the send and
//         delivered per destination; concurrent collectives share links.
//       kAnalytic: a collective reaches destination d at
//         max(send time of the sources that send to d) + alltoall_time(matrix)
//         (sim/hw/analytic_comm.h: bottleneck link + route latency); no
//         contention between concurrent collectives.
//   kFast: no events: the same instruction streams walked in lock-step with
//     the analytic network rule above (it agrees with kDetailed + kAnalytic up
//     to the picosecond; its disagreement with kDetailed + kFluid is measured in
//     tools/bench/step_bench.cc and sim/step/README.md).
// Pipeline stages (plan pp > 1): each stage is simulated as above on its own G GPUs (cluster GPUs s·G ..
// (s+1)·G - 1) with its own layers; the batch passes the stages one after another, each stage's GPUs sending
// their activations to the next stage's (analytic network rule); the report merges the stages.
// Overlap: kNone (one micro-batch) or kTbo (two micro-batches of half the
// sequences; their instruction streams are cut at every wait and interleaved,
// so the compute of one overlaps the collectives of the other).
//
// A StepSimulator keeps scratch state between run() calls: not thread-safe;
// use one per thread.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sim/config/hardware_spec.h"
#include "sim/config/model_spec.h"
#include "sim/cost/cost_model.h"
#include "sim/model/ops.h"
#include "sim/model/plan.h"
#include "sim/model/routing.h"
#include "sim/model/routing_traffic.h"

namespace moesim {

enum class StepMode { kDetailed, kFast };
enum class NetworkMode { kFluid, kAnalytic };
enum class Overlap { kNone, kTbo };
const char* step_mode_name(StepMode m);
const char* network_mode_name(NetworkMode m);
const char* overlap_name(Overlap o);

struct StepSetup {
  ModelSpec model;
  std::string precision;  // variant name; "" = the model's native one
  ClusterSpec cluster;    // the plan's GPUs are cluster GPUs 0 .. plan.gpus()-1
  ParallelPlan plan;
  BatchShape batch;
  ExpansionOptions expansion;
  RoutingSpec routing;
  bool eplb = false;  // EPLB placement from the routing model's popularity (else contiguous)
  Overlap overlap = Overlap::kNone;
  StepMode mode = StepMode::kDetailed;
  NetworkMode network = NetworkMode::kFluid;
  CostOptions cost_options;
  std::shared_ptr<const CostModel> cost;  // null: roofline
  MemoryOptions memory;                   // for the fits-in-HBM check
  std::uint64_t seed = 0;
  TrafficOptions traffic;
  bool record_trace = false;  // keep per-op intervals for trace_json()
};

// Time split of a layer type, per layer, on the GPU that finishes the step
// last: compute by group, and the time it stood blocked at the waits of each
// collective group (exposed communication). Summed over groups and layers
// (with head and tail) this is that GPU's whole step.
struct LayerTypeReport {
  std::string name;
  int layers = 0;
  std::array<double, kOpGroupCount> seconds_per_layer{};
  struct OpRow {
    std::string name;
    OpGroup group;
    double mean_s = 0;  // per layer, mean over GPUs (and micro-batches summed)
    double max_s = 0;   // per layer, the largest over GPUs
    Bound bound;        // the most frequent bound over GPUs and layers
    CostSource source = CostSource::kRoofline;  // what priced it on GPU 0
  };
  std::vector<OpRow> ops;
};

struct CommReport {
  CommKind kind;
  int count = 0;             // collective instances in the step
  double bytes = 0;          // over the network (diagonal excluded), all instances
  double scale_out_bytes = 0;  // of those, the bytes between GPUs of different scale-up domains
  double mean_span_s = 0;    // first send to last delivery, mean over instances
};

// One pipeline stage of a step (plan pp > 1).
struct PipelineStageReport {
  Duration stage_time{};  // the stage's own forward pass of the batch
  Duration send_time{};   // its activations to the next stage (0 for the last stage)
  double send_bytes = 0;  // over all of its GPUs
};

struct StepResult {
  Duration step_time{};  // with pipeline stages: the batch's pass through all of them (stages + sends)
  std::int64_t tokens = 0;           // new tokens in the batch
  std::int64_t sequences = 0;
  double tokens_per_second = 0;      // tokens / step time
  int critical_gpu = 0;              // finishes last
  int slowest_gpu = 0;               // the most compute-busy
  double slowest_gpu_busy_s = 0;
  double mean_gpu_busy_s = 0;
  double slowest_gpu_expert_rows = 0;  // routed-expert token copies it computed, summed over layers
  double max_expert_rows = 0;          // the most on any GPU, summed over layers
  double mean_expert_rows = 0;         // per GPU, summed over layers
  // Straggler measure: per MoE layer (and micro-batch), the most-loaded GPU's routed-expert token copies over
  // the mean GPU's, averaged over layers (the hot GPU changes from layer to layer, so the sums above even out).
  double expert_load_max_over_mean = 0;
  double mean_distinct_experts = 0;    // per MoE layer, over the batch (micro-batches separately)
  std::array<double, kOpGroupCount> head_tail_seconds{};
  std::vector<LayerTypeReport> layer_types;
  std::vector<CommReport> comms;
  std::uint64_t events = 0;          // engine events (0 in fast mode)
  bool per_token_routing = false;
  StepMode mode = StepMode::kDetailed;
  NetworkMode network = NetworkMode::kFluid;
  // Pipeline stages (empty when pp = 1). With one batch like this one in flight per stage, a pipelined server
  // completes a batch per slowest stage time: tokens / max stage_time.
  std::vector<PipelineStageReport> pipeline;
  double pipelined_tokens_per_second = 0;
};

class StepSimulator {
 public:
  // Throws ConfigError for plans that do not divide the model or are not
  // supported, a model that does not fit in HBM under the plan, too few GPUs
  // in the cluster, or a bad routing trace.
  explicit StepSimulator(StepSetup setup);
  ~StepSimulator();
  StepSimulator(const StepSimulator&) = delete;
  StepSimulator& operator=(const StepSimulator&) = delete;

  // Simulates forward pass number `step` (it selects the routing draw; same setup + step => same result).
  StepResult run(std::uint64_t step = 0);
  // Re-targets the simulator at another batch shape and overlap, keeping what does not depend on the batch
  // (topology, routing model, expert placements, dedup ratios, route cache, cost model): much cheaper than a
  // new StepSimulator, and run() then gives exactly what a new one built with this batch would. Throws
  // ConfigError like the constructor (e.g. TBO with fewer than 2 sequences).
  void rebatch(const BatchShape& batch, Overlap overlap);
  // Chrome trace-event JSON of the last run (needs record_trace).
  [[nodiscard]] std::string trace_json() const;
  [[nodiscard]] const StepSetup& setup() const;  // of the first pipeline stage (expansion.stage = 0)
  [[nodiscard]] int stages() const;              // pipeline stages (plan.pp)
  [[nodiscard]] const ForwardPass& forward_pass(int micro_batch = 0, int stage = 0) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One-shot convenience: StepSimulator(setup).run(step).
StepResult simulate_step(const StepSetup& setup, std::uint64_t step = 0);

}  // namespace moesim
