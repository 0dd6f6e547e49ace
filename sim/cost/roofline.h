// The roofline cost model: an op takes
//   max(FLOPs / (peak(precision) · compute_efficiency), bytes / (HBM bandwidth · memory_efficiency))
//   + kernels · launch overhead (the CUDA-graph figure when graphs are on),
// with the efficiencies and overheads of GpuSpec::roofline. The peak is the
// GPU's tensor-core peak for the op's precision, falling back to the nearest
// slower path the GPU has (GpuSpec::peak_for). Bound: compute or memory,
// whichever term is larger; latency when the launch overhead exceeds both.
// Plus ZeroCostModel: every op takes no time (communication-only bounds).
#pragma once

#include "sim/cost/cost_model.h"

namespace moesim {

class RooflineCostModel final : public CostModel {
 public:
  OpCost cost(const Op& op, const GpuSpec& gpu, const CostOptions& opts) const override;
  std::string name() const override { return "roofline"; }
};

class ZeroCostModel final : public CostModel {
 public:
  OpCost cost(const Op&, const GpuSpec&, const CostOptions&) const override { return {}; }
  std::string name() const override { return "zero"; }
};

// The two roofline terms in seconds, without launch overhead (for reports and tests).
struct RooflineTerms {
  double compute_s = 0;
  double memory_s = 0;
};
RooflineTerms roofline_terms(const Op& op, const GpuSpec& gpu);

}  // namespace moesim
