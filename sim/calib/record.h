// One measured point of the validate/kernels harness (validate/README.md), read
// strictly from JSON lines. A malformed line is a ConfigError naming
// "<file>:<line>" and the JSON pointer of the offending member (exit 2); extra
// members are tolerated. Lines written by Harness::check for a failed check
// ("status":"check_failed") and records whose check_rel_err is above the
// kernel's tolerance are kept apart: they are reported, never fitted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace moesim::calib {

// The shape keys of every kernel; only the record's kernel's members are set.
struct RecordShape {
  // gemm
  std::int64_t m = 0, n = 0, k = 0;
  // grouped_gemm (n, k above)
  std::int64_t experts = 0, total_tokens = 0;
  std::vector<std::int64_t> expert_tokens;  // "tokens": per-expert token counts
  std::string routing;
  // router / permute / unpermute (experts above)
  std::int64_t tokens = 0, topk = 0, groups = 0, topk_groups = 0, hidden = 0;
  std::string scoring;
  // mla_decode
  std::int64_t batch = 0, context = 0, heads = 0, kv_dim = 0, v_dim = 0;
  // nccl_alltoall
  std::int64_t gpus = 0, bytes_per_peer = 0;
  std::string pattern;
  std::vector<std::vector<std::int64_t>> matrix;  // bytes from rank i to rank j
  // copy / p2p ("bytes"), p2p method; launch
  std::int64_t bytes = 0;
  std::string method;
  bool graph = false;
  std::int64_t kernels = 0;
  bool host_ahead = true;  // launch: the host ran ahead of the GPU (GPU-side time)
};

struct Record {
  std::string file;
  int line = 0;
  std::string gpu;  // device name as the harness saw it ("NVIDIA H200")
  std::string environment;  // "driver D, CUDA C, cuBLAS B, NCCL N" from the record's members (those present)
  std::string kernel;
  std::string dtype;
  std::string impl;  // "" when the record has none
  RecordShape shape;
  std::string shape_text;  // the "shape" member as written (canonical JSON dump), for identity and reports
  double median_us = 0, p10_us = 0, p90_us = 0;
  int reps = 0;
  double check_rel_err = 0;  // +inf when the record says null (non-finite)
  double flops = 0, bytes = 0;
  bool check_failed = false;  // a "status":"check_failed" line (no timing)

  std::string where() const { return file + ":" + std::to_string(line); }
};

// Kernels whose records moesim knows how to read.
bool is_known_kernel(const std::string& kernel);
// The largest check_rel_err with which a kernel's record may be fitted (the harness's own tolerances).
double check_tolerance(const std::string& kernel);

// Parses JSON-lines text; `file` names it in errors. Blank lines are skipped.
// Records of unknown kernels are returned too (is_known_kernel() tells them apart).
std::vector<Record> parse_records(const std::string& text, const std::string& file);

// The whole text of a measurement file (ConfigError if it cannot be read).
std::string read_measurement_text(const std::string& path);
// The *.jsonl files of the folders, sorted (ConfigError for a folder that is not one).
std::vector<std::string> jsonl_files(const std::vector<std::string>& folders);

// Reads one file (ConfigError if it cannot be read).
std::vector<Record> read_records_file(const std::string& path);

// All *.jsonl files of the given folders, in sorted path order.
std::vector<Record> read_records(const std::vector<std::string>& folders);

}  // namespace moesim::calib
