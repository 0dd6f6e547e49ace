// Pricing an op from a calibration: the fitted ratio at the op's shape times the
// op's reference time (calibration.h), and the Blackwell extrapolation rule.
//
// Ratio at a shape: the curves whose key equals the op's key are interpolated
// in log-log space along x (interp.h); for grouped GEMMs the routing variants
// (uniform, zipf) are then interpolated in log imbalance at the op's imbalance
// (clamped to the measured imbalances). A key that was not measured borrows
// from the nearest measured keys (Euclidean distance in log key space), up to
// three of those that cover x, weighted by inverse squared distance in log
// ratio. x outside every usable curve: no value (the caller falls back to the
// roofline and says so).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sim/calib/calibration.h"
#include "sim/calib/query.h"
#include "sim/config/hardware_spec.h"

namespace moesim::calib {

struct RatioPrediction {
  double ratio = 0;
  bool exact_key = true;  // false: borrowed from neighbouring measured keys
};

// `curves` may hold any curves; only those of q.kernel and q.dtype are used.
std::optional<RatioPrediction> predict_ratio(const std::vector<const Curve*>& curves, const Query& q);

// The precision whose peak the reference uses on the measured GPU ("bf16" or "fp8").
std::string source_precision(const Query& q);
// ... and on a target GPU, from the op's own precision ("fp4" for an NVFP4 GEMM on Blackwell).
std::string target_precision(const Op& op, const Query& q);
double target_operand_bytes(const Op& op, const Query& q);
std::string precision_name(Precision p);

// max(flops / peak(precision), bytes / HBM bandwidth) of reference_work(op, q, operand_bytes).
double reference_seconds(const Op& op, const Query& q, const Reference& ref, const std::string& precision,
                         double operand_bytes);
// The nameplate figures of a GPU description.
Reference reference_of(const GpuSpec& gpu);

// The extrapolation rule: the measured time minus the per-kernel floor scales by
// the ratio of reference times (compute-bound work by the peak FLOP/s ratio at the
// op's precision, memory-bound work by the HBM bandwidth ratio); the floor does not.
//   t_dst = floor + (t_src - floor) * ref_dst / ref_src,   floor = min(floor_s, t_src)
double extrapolate_seconds(double t_src, double floor_s, double ref_src_s, double ref_dst_s);

}  // namespace moesim::calib
