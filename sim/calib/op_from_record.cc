#include "sim/calib/op_from_record.h"

namespace moesim::calib {

std::optional<Op> op_from_record(const Record& r) {
  Op op;
  op.name = r.kernel;
  op.flops = r.flops;
  op.bytes = r.bytes;
  const RecordShape& s = r.shape;
  OpShape& o = op.shape;
  if (r.kernel == "gemm") {
    if (r.dtype != "bf16" && r.dtype != "fp8" && r.dtype != "fp8_block128") return std::nullopt;
    op.kind = OpKind::kGemm;
    op.precision = r.dtype == "bf16" ? Precision::kBf16 : Precision::kFp8;
    o.m = s.m;
    o.n = s.n;
    o.k = s.k;
    o.scale_block = r.dtype == "fp8_block128" ? 128 : 0;
  } else if (r.kernel == "grouped_gemm") {
    if (r.dtype != "bf16" && r.dtype != "fp8") return std::nullopt;
    op.kind = OpKind::kGroupedGemm;
    op.precision = r.dtype == "bf16" ? Precision::kBf16 : Precision::kFp8;
    o.n = s.n;
    o.k = s.k;
    o.expert_tokens = s.expert_tokens;
    int active = 0;
    for (auto t : s.expert_tokens) active += t > 0 ? 1 : 0;
    op.kernels = active;
  } else if (r.kernel == "mla_decode") {
    if (r.dtype != "bf16" && r.dtype != "fp8") return std::nullopt;
    op.kind = OpKind::kAttentionDecode;
    op.precision = Precision::kBf16;  // the MMA path; an FP8 cache is dequantised to BF16
    o.batch = s.batch;
    o.context = s.context;
    o.new_tokens = 1;
    o.heads = s.heads;
    o.kv_dim = s.kv_dim;
    o.v_dim = s.v_dim;
    o.kv_heads = 1;
    o.kv_bytes_per_element = r.dtype == "fp8" ? 1 : 2;
  } else if (r.kernel == "router") {
    op.kind = OpKind::kRouter;
    o.tokens = s.tokens;
    o.experts = s.experts;
    o.topk = s.topk;
  } else if (r.kernel == "permute" || r.kernel == "unpermute") {
    if (r.dtype != "bf16" && !(r.kernel == "permute" && r.dtype == "fp8")) return std::nullopt;
    op.kind = r.kernel == "permute" ? OpKind::kPermute : OpKind::kUnpermute;
    o.tokens = s.tokens;
    o.hidden = s.hidden;
    o.topk = s.topk;
    o.experts = s.experts;
    o.payload_bytes_per_element = r.dtype == "fp8" ? 1.0 + 4.0 / 128 : 2;  // fp8: e4m3 row + one fp32 scale per 128
  } else {
    return std::nullopt;
  }
  return op;
}

}  // namespace moesim::calib
