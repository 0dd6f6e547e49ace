// Records of the harness kernel "ep_layer" (validate/kernels/ep_layer.cu): one
// routed-MoE layer with expert parallelism over N GPUs, timed end to end, with
// the phase times of GPU 0. Read strictly; errors name "<file>:<line>" and the
// member's JSON pointer (exit 2).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace moesim::calib {

struct EpLayerRecord {
  std::string where;  // file:line
  std::string gpu;    // device name as the harness saw it
  int gpus = 0;
  std::int64_t tokens_per_gpu = 0;
  std::int64_t hidden = 0, experts = 0, topk = 0, expert_ffn = 0;
  std::string routing;  // "uniform" or "skewed"
  double skew_bias = 0;  // skewed: added to the router's selection bias of experts 0 .. hot_experts-1
  int hot_experts = 0;
  bool shared_expert = false;
  std::string dedup;  // "per_token_expert": one dispatch row per (token, expert)
  double dispatch_row_bytes = 0, combine_row_bytes = 0;
  double median_us = 0, p10_us = 0, p90_us = 0;
  double recv_max_over_mean = 0;  // rows received by the most loaded GPU over the mean
  std::map<std::string, double> phases_us;  // GPU 0: router, permute, counts, dispatch, experts, combine, unpermute
  bool check_failed = false;
};

// The "ep_layer" lines of JSON-lines text (other kernels are skipped).
std::vector<EpLayerRecord> parse_ep_layer_records(const std::string& text, const std::string& file);
// The "ep_layer" records of every *.jsonl file of the folders, in sorted path order.
std::vector<EpLayerRecord> read_ep_layer_records(const std::vector<std::string>& folders);

}  // namespace moesim::calib
