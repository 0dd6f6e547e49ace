// Internal to the op expansion (ops.cc, ops_attention.cc): small builders of
// single ops with their FLOPs and minimum HBM bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/config/hardware_spec.h"
#include "sim/config/model_spec.h"
#include "sim/model/formats.h"
#include "sim/model/ops.h"

namespace moesim::ops_detail {

// Bytes per input activation element of a GEMM that computes at `p` (dynamic
// per-token quantisation to FP8 for the FP8 and FP4 paths; BF16 otherwise).
double input_bytes(Precision p);

// out[m,n] = A[m,k]·W[k,n] with weights stored in `f`. A GEMM with m = 0 does no work.
PlannedOp gemm(std::string name, OpGroup group, std::int64_t m, std::int64_t n, std::int64_t k, Format f,
               const GpuSpec& gpu);
// A memory-bound op that moves `bytes`.
PlannedOp elementwise(std::string name, OpGroup group, double bytes);

struct AttentionInputs {
  const ModelSpec* model = nullptr;
  Format format = Format::kBf16;  // attention weights
  const GpuSpec* gpu = nullptr;
  int tp = 1;
  Phase phase = Phase::kDecode;
  AttnLayerKind kind = AttnLayerKind::kFull;
  int span = 0;
  double kv_bytes_per_element = 2;
  std::vector<SequenceShape> seqs;  // this GPU's attention group's sequences
};

// The attention block of one layer on one GPU: input norm, projections,
// attention core, o_proj and the post-attention norm (MLA or GQA).
std::vector<PlannedOp> attention_ops(const AttentionInputs& in);

}  // namespace moesim::ops_detail
