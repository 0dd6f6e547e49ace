#include "sim/cost/roofline.h"

#include <algorithm>
#include <stdexcept>

namespace moesim {

RooflineTerms roofline_terms(const Op& op, const GpuSpec& gpu) {
  RooflineTerms t;
  if (op.flops > 0) {
    const double peak = gpu.peak_for(op.precision).value() * gpu.roofline.compute_efficiency;
    if (!(peak > 0)) throw std::invalid_argument("roofline: GPU " + gpu.id + " has no compute peak");
    t.compute_s = op.flops / peak;
  }
  if (op.bytes > 0) {
    const double bw = gpu.hbm_bandwidth.value() * gpu.roofline.memory_efficiency;
    if (!(bw > 0)) throw std::invalid_argument("roofline: GPU " + gpu.id + " has no memory bandwidth");
    t.memory_s = op.bytes / bw;
  }
  return t;
}

OpCost RooflineCostModel::cost(const Op& op, const GpuSpec& gpu, const CostOptions& opts) const {
  if (op.kind == OpKind::kCommunication)
    throw std::invalid_argument("roofline: communication op \"" + op.name + "\" is timed by the network model");
  const RooflineTerms t = roofline_terms(op, gpu);
  const Duration launch =
      (opts.cuda_graphs ? gpu.roofline.launch_overhead_graph : gpu.roofline.launch_overhead) * op.kernels;
  const double work = std::max(t.compute_s, t.memory_s);
  OpCost c;
  c.source = CostSource::kRoofline;
  c.bound = t.compute_s >= t.memory_s ? Bound::kCompute : Bound::kMemory;
  if (to_seconds(launch) > work) c.bound = Bound::kLatency;
  c.time = (work > 0 ? duration_from_seconds_ceil(work) : Duration{0}) + launch;
  return c;
}

}  // namespace moesim
