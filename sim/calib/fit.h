// Fitting a GPU's calibration from its usable records (prepare.h).
//   compute kernels: one Curve per (kernel, dtype, variant, key), points sorted
//     by x, ratio = median time / reference time (calibration.h) with the
//     reference taken from `gpu`'s nameplate figures; equal x within a curve
//     (should not happen after prepare) keeps the geometric mean;
//   nccl_alltoall: one AllToAllFit per GPU count (alltoall.h), all patterns;
//   copy: best read+write bandwidth; p2p: best GPU->GPU bandwidth;
//   launch: per-kernel GPU time (host ahead) eager and in a graph, and the floor
//     = GPU time of a single empty kernel (eager, host ahead).
#pragma once

#include <vector>

#include "sim/calib/calibration.h"
#include "sim/calib/record.h"
#include "sim/config/hardware_spec.h"

namespace moesim::calib {

Calibration fit_calibration(const std::vector<Record>& records, const GpuSpec& gpu,
                            std::vector<Exclusion> excluded = {});

}  // namespace moesim::calib
