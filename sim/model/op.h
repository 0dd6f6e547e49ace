// One operation a GPU runs in a forward pass, with the shape a kernel would see.
// Produced by the op expansion (sim/model/ops*), priced by a CostModel
// (sim/cost/cost_model.h). Plain data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/config/hardware_spec.h"

namespace moesim {

enum class OpKind {
  kGemm,             // dense GEMM: out[m,n] = A[m,k] · W[k,n]  (m = tokens)
  kGroupedGemm,      // MoE experts on one GPU: one GEMM per local expert with its own token count
  kAttentionDecode,  // attention core, one new token per sequence over a cached context
  kAttentionPrefill, // attention core over a chunk of new tokens (causal) plus a cached prefix
  kRouter,           // scoring + top-k on router logits (the router GEMM is a kGemm)
  kPermute,          // dispatch layout on one GPU: rows grouped by expert
  kUnpermute,        // combine on one GPU: weighted sum of the k expert outputs per token
  kElementwise,      // norms, RoPE, activations, residual adds: memory-bound
  kCommunication,    // a collective; timed by the network model, never by a CostModel
};

const char* op_kind_name(OpKind k);

// What the kernel sees. Only the members of the op's kind are meaningful.
struct OpShape {
  // kGemm
  std::int64_t m = 0, n = 0, k = 0;
  // kGemm at FP8: 128 = 128x128 weight-block and 1x128 activation-block scales (DeepSeek FP8, the
  // calibration's "fp8_block128" GEMMs); 0 = per-tensor scales. Added for the calibrated cost model.
  std::int64_t scale_block = 0;
  // kGroupedGemm: n, k as above; tokens per local expert (0 allowed)
  std::vector<std::int64_t> expert_tokens;
  // kAttentionDecode / kAttentionPrefill
  std::int64_t batch = 0;        // sequences
  std::int64_t context = 0;      // cached tokens per sequence (mean over the batch)
  std::int64_t new_tokens = 0;   // per sequence (1 for decode)
  std::int64_t heads = 0;        // query heads on this GPU
  std::int64_t kv_dim = 0;       // MLA: 576 (latent+rope); GQA: head_dim
  std::int64_t v_dim = 0;        // MLA: 512; GQA: head_dim
  std::int64_t kv_heads = 0;     // GQA kv heads on this GPU (MLA: 1)
  double kv_bytes_per_element = 2;
  // kRouter / kPermute / kUnpermute
  std::int64_t tokens = 0, experts = 0, topk = 0, hidden = 0;
  double payload_bytes_per_element = 2;  // permute payload: 1 for FP8 (+ scales), 2 for BF16
};

struct Op {
  OpKind kind = OpKind::kElementwise;
  std::string name;          // "q_a_proj", "experts.gate_up", "mla_decode", ...
  Precision precision = Precision::kBf16;  // the tensor-core path it runs on
  double flops = 0;          // minimum arithmetic
  double bytes = 0;          // minimum HBM traffic: each input read once, each output written once
  OpShape shape;
  int kernels = 1;           // kernel launches it takes
};

}  // namespace moesim
