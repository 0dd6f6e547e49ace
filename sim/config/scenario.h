// A serving scenario (scenarios/README.md): a model and precision, a cluster
// (system x scale-up domains), a deployment (instance pools with parallel
// plans and scheduler limits, KV cache, MTP, overlap, routing), a workload,
// optional SLOs and price. Immutable and validated; no JSON types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/config/hardware_spec.h"
#include "sim/config/model_spec.h"
#include "sim/config/provenance.h"
#include "sim/core/time.h"
#include "sim/model/model_math.h"
#include "sim/model/plan.h"

namespace moesim {

enum class PoolRole { kAggregated, kPrefill, kDecode };
const char* pool_role_name(PoolRole r);

enum class RouterPolicy { kRoundRobin, kLeastLoaded };
const char* router_policy_name(RouterPolicy r);

// Per attention rank (one data-parallel attention replica of an instance).
struct SchedulerLimits {
  int max_batch_size = 256;         // sequences resident (running) on a rank
  int max_tokens_per_step = 8192;   // new tokens of one rank's batch in one step (decode + prefill)
  int chunk_size = 8192;            // prefill tokens of one request in one step
};

struct PoolSpec {
  std::string name;
  PoolRole role = PoolRole::kAggregated;
  int instances = 1;
  ParallelPlan plan;
  SchedulerLimits limits;
  std::string pointer;  // JSON pointer of the pool, for errors found later
};

struct KvCacheSpec {
  KvDtype dtype = KvDtype::kBf16;
  double memory_fraction = 0.90;
  double reserve_bytes = 4.0 * 1024 * 1024 * 1024;
  int block_tokens = 64;
};

struct MtpSpec {
  int depth = 0;                   // draft tokens per step (0: off)
  std::vector<double> acceptance;  // conditional acceptance of draft position i given 1..i-1 accepted
  bool acceptance_default = false; // true: derived from published-measurements.md F2
};

struct LengthDistribution {
  enum class Kind { kFixed, kUniform, kNormal };
  Kind kind = Kind::kFixed;
  double mean = 0;  // fixed value, or normal mean
  double sd = 0;    // normal
  int min = 1;      // uniform / normal clip
  int max = 1;
};

struct TraceEntry {
  Duration arrival{};
  int input = 0;
  int output = 0;
};

enum class ArrivalKind { kPoisson, kClosedLoop, kTrace };

struct WorkloadSpec {
  ArrivalKind arrival = ArrivalKind::kClosedLoop;
  double rate_per_s = 0;     // Poisson
  int concurrency = 0;       // closed loop
  std::string trace_file;    // trace
  std::vector<TraceEntry> trace;
  LengthDistribution input;
  LengthDistribution output;
  std::optional<long long> requests;  // stop issuing after this many
  std::optional<Duration> duration;   // stop issuing after this time
  long long warmup_requests = 0;      // the first N requests (in arrival order) are not measured
  Duration warmup_duration{};         // requests arriving before this are not measured
  std::uint64_t seed = 1;
};

struct SloTarget {
  double percentile = 0;  // e.g. 99
  Duration max{};
};

struct SloSpec {
  std::optional<SloTarget> ttft;
  std::optional<SloTarget> tpot;
};

struct ScenarioSpec {
  std::string file;
  std::string id;
  std::string name;
  std::string mirrors;     // published-measurements.md key this scenario mirrors ("F6"), or ""
  ModelSpec model;
  std::string precision;   // precision variant name
  ClusterSpec cluster;
  std::vector<PoolSpec> pools;
  KvCacheSpec kv;
  MtpSpec mtp;
  bool two_batch_overlap = false;
  bool staged_dispatch = false;     // "dispatcher": "staged" (library all-to-all with its copies; sim/model/ops.h)
  std::string routing = "uniform";  // expert routing model (sim/model/routing.h syntax: "zipf:1.2", "trace:<file>")
  bool eplb = false;                 // expert placement balanced on the routing popularity (EPLB)
  RouterPolicy router = RouterPolicy::kLeastLoaded;
  WorkloadSpec workload;
  SloSpec slo;
  std::optional<double> price_per_gpu_hour;  // USD; falls back to the system's estimate when absent
  Provenance provenance;
  std::vector<std::string> input_files;  // scenario, model, system, GPU (and trace) files
  std::uint64_t input_hash = 0;          // FNV-1a 64 over the bytes of input_files

  int pool_gpus(const PoolSpec& p) const { return p.instances * p.plan.gpus(); }
  int used_gpus() const;
  bool disaggregated() const;
  const PrecisionVariant& precision_variant() const { return model.precision(precision); }
};

// Per-position conditional acceptance from published mean accepted lengths
// (1 + sum of prod p_j): F2 gives 1.92 / 2.58 / 2.82 for MTP1/2/3, so
// p1 = 0.92, p2 = 0.66/0.92, p3 = 0.24/0.66. Depths above 3 repeat p3.
std::vector<double> default_mtp_acceptance(int depth);

// Loads and validates a scenario; ConfigError(file, JSON pointer, message) on bad input.
// seed_override replaces workload.seed when given.
ScenarioSpec load_scenario(const std::string& path, std::optional<std::uint64_t> seed_override = std::nullopt);

// Reads a trace file: one request per line "arrival_s,input_tokens,output_tokens"
// ('#' comments and blank lines skipped); arrivals must be non-decreasing.
std::vector<TraceEntry> load_trace(const std::string& path);

}  // namespace moesim
