// Where an Op sits in the calibration: which measured family prices it
// (kernel, dtype), the family's discrete key, the interpolation axis, and the
// reference work the fitted ratios are relative to. One function serves both
// fitting (an Op built from each measured record) and pricing (an Op from the op
// expansion), so the two cannot disagree about what a shape means.
//
// Families, keys and axes (x is interpolated in log space; keys are matched
// exactly, or by the nearest measured keys in log space, see predict.h):
//   gemm          dtype bf16|fp8|fp8_block128   key (n, k)               x = m
//   grouped_gemm  dtype bf16|fp8                key (n, k, experts)      x = total tokens, aux = imbalance
//   mla_decode    dtype bf16|fp8 (KV cache)     key (heads, batch)       x = context
//   router        dtype fp32                    key (experts, topk)      x = tokens
//   permute       dtype bf16|fp8 (payload)      key (hidden, topk, experts)  x = tokens
//   unpermute     dtype bf16                    key (hidden, topk, experts)  x = tokens
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sim/model/op.h"

namespace moesim::calib {

struct Query {
  std::string kernel;
  std::string dtype;
  std::vector<double> key;
  double x = 0;
  double aux = 1;  // grouped_gemm: imbalance = max tokens per expert / mean over all local experts (>= 1)
};

// The calibrated family of `op`, or nullopt when none was measured (prefill and
// GQA attention, elementwise ops, FP8 MLA with another layout, ...).
std::optional<Query> query_for(const Op& op);

// Minimum work of the op as the calibration counts it, from the shape alone
// (independent of how the op expansion filled Op::flops / Op::bytes). Weight and
// activation bytes per element come from `operand_bytes` (1 for fp8, 2 for bf16,
// 0.5 for fp4 weights on Blackwell).
struct Work {
  double flops = 0;
  double bytes = 0;
};
Work reference_work(const Op& op, const Query& q, double operand_bytes);

// Bytes per GEMM operand element for the query's dtype (gemm/grouped_gemm), 2 otherwise.
double dtype_operand_bytes(const Query& q);

}  // namespace moesim::calib
