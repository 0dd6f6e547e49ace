// What a capacity planner reads from a serving run: latency percentiles,
// throughput per GPU / per domain / per kW / per dollar, SLO attainment,
// utilisation and the per-step attribution; as a JSON report, a text table
// (one column per scenario), a per-request CSV and a Chrome trace.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sim/config/scenario.h"
#include "sim/obs/metrics.h"
#include "sim/serve/serving_sim.h"

namespace moesim::obs {

struct SloResult {
  std::string metric;  // "ttft" or "tpot"
  double percentile = 0;
  double target_ms = 0;
  double achieved_ms = 0;  // the percentile reached
  bool met = false;
  double attainment = 0;   // fraction of measured requests within the target
};

struct PoolSummary {
  std::string name;
  std::string role;
  int instances = 0;
  int gpus = 0;
  std::string plan;
  int ranks_per_instance = 0;
  double kv_tokens_per_rank = 0;
  double weight_gb_per_gpu = 0;
  double gpu_busy = 0;          // busy time / (instances x makespan)
  // Mean use of the pool GPUs' nominal link bandwidth per direction over the makespan: bytes they sent over
  // NVLink (resp. their NICs) / (GPUs x bandwidth x makespan). Collectives of the steps and KV hand-overs.
  double scale_up_link_busy = 0, scale_out_link_busy = 0;
  long long steps = 0;
  double step_ms_mean = 0;
  double attention_ms_mean = 0, experts_ms_mean = 0, communication_ms_mean = 0, other_ms_mean = 0;
  double decode_batch_per_rank_mean = 0;  // decode sequences per rank per step
  int decode_batch_per_rank_max = 0;
  double kv_peak_fraction = 0;  // fullest rank's peak / capacity
  long long preemptions = 0;
  long long step_evaluations = 0;  // step-simulator runs (grid points) behind the step times
  double input_tokens_per_s_per_gpu = 0;   // over the makespan
  double output_tokens_per_s_per_gpu = 0;  // decode-step tokens over the makespan
  double output_tokens_per_s_per_gpu_busy = 0;  // decode-step tokens over the pool's busy time (capacity at the batch reached)
  double input_tokens_per_s_per_gpu_busy = 0;   // prompt tokens over the pool's busy time
};

struct Summary {
  std::string scenario;
  std::string name;
  std::string mirrors;
  std::uint64_t seed = 0;
  std::string input_hash;  // 16 hex digits
  std::string system;
  int gpus = 0;          // used by the pools
  int domain_gpus = 0;   // GPUs per scale-up domain (NVL72 rack / HGX node)
  double watts_per_gpu = 0;
  std::string power_basis;  // "node" or "gpu-tdp"
  double price_per_gpu_hour = 0;
  bool has_price = false;
  long long requests = 0, measured = 0, finished = 0;
  double window_s = 0, makespan_s = 0;
  Distribution ttft_ms, tpot_ms, itl_ms, e2e_ms, tokens_per_s_per_user;
  double output_tokens_per_s = 0;         // steady window, all requests' tokens
  double output_tokens_per_s_per_gpu = 0;
  double output_tokens_per_s_per_gpu_whole_run = 0;  // all output / makespan (trtllm-bench style)
  double input_tokens_per_s_per_gpu = 0;  // prefill GPUs (all GPUs when aggregated), steady window
  double requests_per_s = 0;              // measured completions / window
  double output_tokens_per_s_per_domain = 0;
  double output_tokens_per_s_per_kw = 0;
  double usd_per_million_output_tokens = 0;
  std::vector<SloResult> slo;
  std::vector<PoolSummary> pools;
  long long kv_transfers = 0;
  double kv_transfer_gb = 0;
  Distribution kv_transfer_ms;
  double events = 0;
  int mtp_depth = 0;
  double mtp_mean_accepted = 0;
  std::string cost_basis;  // what the op costs rest on (sim/cost/cost_basis.h); set by the caller
};

Summary summarize_run(const ScenarioSpec& sc, serve::ServingResult& res);

nlohmann::json summary_json(const Summary& s);
// The full report: summary + scenario identity (seed, input hash, files).
nlohmann::json report_json(const ScenarioSpec& sc, const Summary& s);
// The readable table: one column per summary.
std::string summary_table(std::span<const Summary> runs);
// A line or two on why the first run differs from each other one.
std::string attribution(std::span<const Summary> runs);
// One line per request.
std::string requests_csv(const serve::ServingResult& res);
// One CSV line per token delivery of every request (a delivery of k > 1 tokens is one MTP step's accepted tokens):
// id, measured, delivery index, time, tokens, gap since the previous delivery (the first: the TTFT). Needs a run
// with ServingOptions::token_times.
std::string tokens_csv(const serve::ServingResult& res);
// Chrome trace-event JSON (opens in Perfetto): sampled steps per instance and
// the life of up to max_requests evenly sampled requests.
std::string chrome_trace(const serve::ServingResult& res, std::size_t max_requests = 200);

}  // namespace moesim::obs
