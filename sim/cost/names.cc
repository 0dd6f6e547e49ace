// Names of the op and cost enums, for reports and traces.
#include "sim/cost/cost_model.h"
#include "sim/model/op.h"

namespace moesim {

const char* op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::kGemm: return "gemm";
    case OpKind::kGroupedGemm: return "grouped_gemm";
    case OpKind::kAttentionDecode: return "attention_decode";
    case OpKind::kAttentionPrefill: return "attention_prefill";
    case OpKind::kRouter: return "router";
    case OpKind::kPermute: return "permute";
    case OpKind::kUnpermute: return "unpermute";
    case OpKind::kElementwise: return "elementwise";
    case OpKind::kCommunication: return "communication";
  }
  return "?";
}

const char* bound_name(Bound b) {
  switch (b) {
    case Bound::kCompute: return "compute";
    case Bound::kMemory: return "memory";
    case Bound::kLatency: return "latency";
    case Bound::kNetwork: return "network";
  }
  return "?";
}

const char* cost_source_name(CostSource s) {
  switch (s) {
    case CostSource::kRoofline: return "roofline";
    case CostSource::kCalibrated: return "calibrated";
    case CostSource::kCalibratedExtrapolated: return "calibrated_extrapolated";
    case CostSource::kRooflineOutsideCalibration: return "roofline_outside_calibration";
  }
  return "?";
}

}  // namespace moesim
