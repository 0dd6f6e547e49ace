// Published measurements (validate/published/*.json) that the calibrated model
// and its extrapolation rule are checked against: Hopper kernels (DeepGEMM,
// FlashMLA on H800 = H100 compute and HBM) and Blackwell MoE all-to-all
// (DeepEP, TRT-LLM). Reported by `moesim validate`, never gated: a published
// number reflects a software stack the calibration did not measure.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sim/calib/calibration.h"
#include "sim/config/hardware_spec.h"

namespace moesim::calib {

struct PublishedEntry {
  std::string file;
  std::string pointer;  // "/entries/3"
  std::string id;       // "K2 m=64 n=2112 k=7168"
  std::string ref;      // "K2" (shared/reference/published-measurements.md)
  std::string source;   // key into the file's "sources"
  std::string published_gpu;  // as published ("H800 SXM5")
  std::string gpu;      // the moesim GPU id that stands for it ("h100-sxm")
  // What was measured.
  std::string kind;     // "gemm" | "grouped_gemm" | "mla_decode" | "moe_alltoall"
  std::string dtype;
  std::map<std::string, double> shape;  // gemm: m n k; grouped_gemm: n k experts tokens_per_expert;
                                        // mla_decode: batch context heads; moe_alltoall: ranks tokens_per_rank topk bytes_per_token
  std::string metric;   // "tflops" | "gbps" | "logical_gbps"
  double value = 0;
};

std::vector<PublishedEntry> load_published(const std::string& folder);

struct PublishedCheck {
  PublishedEntry entry;
  std::optional<double> predicted;  // in the entry's metric
  std::string source;               // cost source or "alltoall fit (N GPUs measured)"
  std::string note;                 // why there is no prediction, or what it rests on
  double error_pct() const;         // signed: (predicted - published) / published
};

// `gpus`: descriptions by id; `calibrations`: full fits by measured GPU id.
std::vector<PublishedCheck> check_published(const std::vector<PublishedEntry>& entries,
                                            const std::map<std::string, GpuSpec>& gpus,
                                            const std::map<std::string, Calibration>& calibrations);

}  // namespace moesim::calib
