#include "sim/calib/query.h"

#include <algorithm>
#include <numeric>

namespace moesim::calib {

namespace {

bool is_fp8_class(Precision p) { return p == Precision::kFp8 || p == Precision::kFp4 || p == Precision::kInt8; }

}  // namespace

std::optional<Query> query_for(const Op& op) {
  const OpShape& s = op.shape;
  Query q;
  switch (op.kind) {
    case OpKind::kGemm:
      if (s.m <= 0 || s.n <= 0 || s.k <= 0) return std::nullopt;
      q.kernel = "gemm";
      // FP4 / INT8 GEMMs run on the FP8 path on Hopper: they are priced from the FP8 fits.
      q.dtype = is_fp8_class(op.precision) ? (s.scale_block == 128 ? "fp8_block128" : "fp8") : "bf16";
      q.key = {static_cast<double>(s.n), static_cast<double>(s.k)};
      q.x = static_cast<double>(s.m);
      return q;
    case OpKind::kGroupedGemm: {
      if (s.n <= 0 || s.k <= 0 || s.expert_tokens.empty()) return std::nullopt;
      const std::int64_t total = std::accumulate(s.expert_tokens.begin(), s.expert_tokens.end(), std::int64_t{0});
      if (total <= 0) return std::nullopt;
      q.kernel = "grouped_gemm";
      q.dtype = is_fp8_class(op.precision) ? "fp8" : "bf16";
      const double e = static_cast<double>(s.expert_tokens.size());
      q.key = {static_cast<double>(s.n), static_cast<double>(s.k), e};
      q.x = static_cast<double>(total);
      const double mx = static_cast<double>(*std::max_element(s.expert_tokens.begin(), s.expert_tokens.end()));
      q.aux = mx * e / static_cast<double>(total);
      return q;
    }
    case OpKind::kAttentionDecode:
      // Only MLA decode (one latent KV head of 576, values 512) was measured.
      if (s.kv_dim != 576 || s.v_dim != 512 || s.batch <= 0 || s.context <= 0 || s.heads <= 0) return std::nullopt;
      if (s.new_tokens > 1) return std::nullopt;
      q.kernel = "mla_decode";
      q.dtype = s.kv_bytes_per_element < 2 ? "fp8" : "bf16";
      q.key = {static_cast<double>(s.heads), static_cast<double>(s.batch)};
      q.x = static_cast<double>(s.context);
      return q;
    case OpKind::kRouter:
      if (s.tokens <= 0 || s.experts <= 0 || s.topk <= 0) return std::nullopt;
      q.kernel = "router";
      q.dtype = "fp32";
      q.key = {static_cast<double>(s.experts), static_cast<double>(s.topk)};
      q.x = static_cast<double>(s.tokens);
      return q;
    case OpKind::kPermute:
    case OpKind::kUnpermute:
      if (s.tokens <= 0 || s.hidden <= 0 || s.topk <= 0 || s.experts <= 0) return std::nullopt;
      q.kernel = op.kind == OpKind::kPermute ? "permute" : "unpermute";
      q.dtype = (op.kind == OpKind::kPermute && s.payload_bytes_per_element < 2) ? "fp8" : "bf16";
      q.key = {static_cast<double>(s.hidden), static_cast<double>(s.topk), static_cast<double>(s.experts)};
      q.x = static_cast<double>(s.tokens);
      return q;
    default:
      return std::nullopt;
  }
}

double dtype_operand_bytes(const Query& q) {
  if (q.kernel == "gemm" || q.kernel == "grouped_gemm") return q.dtype == "bf16" ? 2.0 : 1.0;
  return 2.0;
}

Work reference_work(const Op& op, const Query& q, double el) {
  const OpShape& s = op.shape;
  Work w;
  if (q.kernel == "gemm") {
    const double m = static_cast<double>(s.m), n = static_cast<double>(s.n), k = static_cast<double>(s.k);
    w.flops = 2 * m * n * k;
    w.bytes = (m * k + n * k) * el + 2 * m * n;
  } else if (q.kernel == "grouped_gemm") {
    const double n = static_cast<double>(s.n), k = static_cast<double>(s.k);
    double active = 0;
    for (auto t : s.expert_tokens) active += t > 0 ? 1 : 0;
    w.flops = 2 * n * k * q.x;
    w.bytes = active * n * k * el + q.x * k * el + q.x * n * 2;
  } else if (q.kernel == "mla_decode") {
    const double b = static_cast<double>(s.batch), c = static_cast<double>(s.context),
                 h = static_cast<double>(s.heads);
    const double kv = static_cast<double>(s.kv_dim), v = static_cast<double>(s.v_dim);
    w.flops = 2 * b * h * c * (kv + v);
    w.bytes = b * c * kv * s.kv_bytes_per_element + b * h * (kv + v) * 2;
  } else if (q.kernel == "router") {
    const double t = static_cast<double>(s.tokens), e = static_cast<double>(s.experts),
                 k = static_cast<double>(s.topk);
    w.flops = t * e;
    w.bytes = t * e * 4 + t * k * 8;
  } else if (q.kernel == "permute") {
    const double t = static_cast<double>(s.tokens), h = static_cast<double>(s.hidden),
                 k = static_cast<double>(s.topk);
    const double row = h * s.payload_bytes_per_element;
    w.bytes = t * row + t * k * row + t * k * 8;
  } else if (q.kernel == "unpermute") {
    const double t = static_cast<double>(s.tokens), h = static_cast<double>(s.hidden),
                 k = static_cast<double>(s.topk);
    w.flops = 2 * t * k * h;
    w.bytes = t * k * h * 2 + t * h * 2 + t * k * 8;
  }
  return w;
}

}  // namespace moesim::calib
