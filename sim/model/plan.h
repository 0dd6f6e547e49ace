// A parallel plan for one model instance, and what it implies for memory.
// Parsed from "ep=72", "tp=8", "tp=1,ep=8,redundant=32" (keys: tp, ep,
// dense_tp, redundant, pp, mtp).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "sim/config/hardware_spec.h"
#include "sim/config/model_spec.h"
#include "sim/model/model_math.h"

namespace moesim {

struct ParallelPlan {
  int tp = 1;                // attention tensor-parallel degree; gpus/tp attention data-parallel replicas
  int ep = 1;                // expert-parallel degree
  int dense_tp = 0;          // dense FFN and shared-expert TP degree (0: same as tp)
  int redundant_experts = 0; // extra expert slots over all EP ranks (EPLB)
  int pp = 1;                // pipeline stages
  bool mtp = false;          // load the MTP module(s)

  int gpus_per_stage() const { return tp > ep ? tp : ep; }
  int gpus() const { return gpus_per_stage() * pp; }
  int attention_dp() const { return gpus_per_stage() / tp; }
  int moe_tp() const { return gpus_per_stage() / ep; }  // each expert split across this many GPUs
  int effective_dense_tp() const { return dense_tp > 0 ? dense_tp : tp; }
  std::string to_string() const;
};

// The model layers pipeline stage `stage` of `pp` holds: contiguous, `layers / pp` each, the first
// `layers % pp` stages one more (so no stage is empty while pp <= layers, and the first stage holds
// ceil(layers / pp), as plan_memory assumes). The MTP module, if loaded, runs on the last stage. Pure.
struct LayerRange {
  int first = 0;
  int count = 0;
};
LayerRange stage_layers(int layers, int pp, int stage);

// Throws ConfigError(where, pointer, ...) on malformed text; `pointer` names the
// JSON path or CLI option ("--plan") that held it.
ParallelPlan parse_plan(std::string_view text, const std::string& where, const std::string& pointer);

// Throws ConfigError when the plan does not divide the model (EP larger than the
// expert count with no redundancy, TP that does not divide the heads, ...).
void check_plan(const ParallelPlan& p, const ModelSpec& m, const std::string& where, const std::string& pointer);

struct MemoryOptions {
  KvDtype kv_dtype = KvDtype::kBf16;
  double memory_fraction = 0.90;  // of the memory left after weights and the reserve
  double reserve_bytes = 4.0 * 1024 * 1024 * 1024;  // activations, CUDA graphs, workspaces
};

struct MemoryPlan {
  std::map<TensorGroup, double> weight_bytes_by_group;  // per GPU
  double weight_bytes_per_gpu = 0;
  int expert_slots_per_gpu = 0;  // the most routed-expert slots any GPU holds
  double kv_budget_bytes = 0;    // per GPU, <= 0 when the model does not fit
  double kv_bytes_per_token = 0; // per GPU holding a token's cache
  double kv_tokens_per_gpu = 0;
  bool fits = false;
};

MemoryPlan plan_memory(const ModelSpec& m, const PrecisionVariant& v, const GpuSpec& gpu, const ParallelPlan& p,
                       const MemoryOptions& opts);

}  // namespace moesim
