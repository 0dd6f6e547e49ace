// The cost of an op on a GPU. The roofline model is the first implementation;
// the calibrated model (fitted to the measurements under validate/data/) slots
// in behind the same interface, falling back to the roofline outside the
// measured range and saying so.
#pragma once

#include <string>

#include "sim/config/hardware_spec.h"
#include "sim/core/time.h"
#include "sim/model/op.h"

namespace moesim {

enum class Bound { kCompute, kMemory, kLatency, kNetwork };
const char* bound_name(Bound b);

enum class CostSource { kRoofline, kCalibrated, kCalibratedExtrapolated, kRooflineOutsideCalibration };
const char* cost_source_name(CostSource s);

struct OpCost {
  Duration time{};
  Bound bound = Bound::kCompute;
  CostSource source = CostSource::kRoofline;
};

struct CostOptions {
  bool cuda_graphs = true;  // launch overhead per kernel with or without CUDA graphs
};

class CostModel {
 public:
  virtual ~CostModel() = default;
  // Time of `op` (never a kCommunication op) on `gpu`.
  virtual OpCost cost(const Op& op, const GpuSpec& gpu, const CostOptions& opts) const = 0;
  virtual std::string name() const = 0;
};

}  // namespace moesim
