// Per-token quantities of a model, as pure functions of its description:
// parameter counts, FLOPs, KV-cache bytes and MoE all-to-all bytes.
// Formulas: shared/reference/specs.md A.2, C.1, C.2, C.4.
#pragma once

#include <map>
#include <string>

#include "sim/config/model_spec.h"

namespace moesim {

struct ParamCounts {
  // Totals over the main model (excluding MTP modules), by tensor group.
  std::map<TensorGroup, double> by_group;
  double norms = 0;        // RMSNorm weights (counted in totals, not in FLOPs)
  double total = 0;        // all parameters of the main model
  double active = 0;       // parameters touched by one token, incl. the input embedding row
  double active_linear = 0;  // GEMM parameters per token: excl. input embedding, incl. lm_head
  double mtp = 0;          // all MTP-module parameters (embedding and head shared with the main model)

  // Per layer, for the op expansion.
  double attention_per_layer = 0;   // projections (+biases), one layer
  double expert = 0;                // one routed expert (3·H·I)
  double shared_expert = 0;         // all shared experts of one layer
  double dense_ffn_layer = 0;       // one dense FFN layer
  double router_per_layer = 0;      // router weight (+bias)
};

ParamCounts count_params(const ModelSpec& m);

// 2 × active linear parameters.
double linear_flops_per_token(const ModelSpec& m);

// Attention-core FLOPs one new token spends per cached token, over all layers
// (MLA absorbed decode: 2·h·(d_k + d_v)·L with d_k = kv_lora + rope, d_v = kv_lora;
// GQA: 4·h·head_dim per full layer).
double attention_flops_per_token_per_cached_token(const ModelSpec& m);

enum class KvDtype { kBf16, kFp8, kFp8FlashMla };
const char* kv_dtype_name(KvDtype d);

// KV-cache bytes per token for the whole model on one replica of the cache
// (MLA latent: replicated under TP, not divided). For GQA, `tp` divides the kv
// heads (ceil). Layers with a sliding window or chunk are counted in full here:
// the per-token figure for tokens within the window; kv_window_capped() tells
// whether the model has such layers.
double kv_bytes_per_token(const ModelSpec& m, KvDtype dtype, int tp = 1);
double kv_bytes_per_token_full_layers_only(const ModelSpec& m, KvDtype dtype, int tp = 1);

enum class DispatchDtype { kFp8, kNvfp4, kBf16 };
const char* dispatch_dtype_name(DispatchDtype d);
// Bytes per token per MoE layer, counted once per selected expert (DeepEP).
double dispatch_bytes_per_token_per_layer(const ModelSpec& m, DispatchDtype d);
double combine_bytes_per_token_per_layer(const ModelSpec& m);

// Weight bytes of the whole model (main model, plus MTP when include_mtp) under a precision variant.
double weight_bytes(const ModelSpec& m, const PrecisionVariant& v, bool include_mtp = false);

}  // namespace moesim
