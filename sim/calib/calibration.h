// A GPU's fitted cost model: what `moesim calibrate` writes to
// hardware/calibration/<gpu>.json and CalibratedCostModel reads. Plain data.
//
// For each measured curve (one kernel, dtype and key, points along one axis) it
// stores the ratio  measured time / reference time,  where the reference time is
// the nameplate roofline max(flops / peak, bytes / HBM bandwidth) of the
// reference work of query.h. A ratio, unlike a time, transfers to shapes that
// were not measured (a new (n, k) borrows the ratio of its nearest measured
// neighbours) and to other GPUs (extrapolation.h).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "sim/calib/alltoall.h"

namespace moesim::calib {

struct Curve {
  std::string kernel;
  std::string dtype;
  std::string variant;            // grouped_gemm: routing ("uniform", "zipf1.2"); "" otherwise
  std::vector<double> key;        // query.h: the family's key axes
  std::vector<double> x;          // axis values, strictly increasing
  std::vector<double> ratio;      // measured / reference time at each x
  std::vector<double> aux;        // grouped_gemm: imbalance at each x; empty otherwise
  std::vector<std::string> from;  // "file:line" of each point
};

// The nameplate figures the ratios are relative to (copied from the GPU description at fitting time).
struct Reference {
  std::map<std::string, double> peak_flops;  // "bf16", "fp16", "fp8", "int8", "fp4" (those the GPU has)
  double hbm_bytes_per_s = 0;
  double nvlink_bytes_per_s = 0;  // per direction
  double peak_for(const std::string& precision) const;  // fp4 -> fp8 -> bf16, int8 -> fp8 -> bf16, fp16 -> bf16
};

struct Exclusion {
  std::string where;   // file:line
  std::string kernel;
  std::string reason;
};

struct Calibration {
  std::string gpu_id;       // "h200-sxm"
  std::string generated_by;  // the command that wrote it
  std::string device_name;  // as the records name it ("NVIDIA H200")
  std::vector<std::string> environment;  // distinct "driver X, CUDA Y, cuBLAS Z, NCCL W" strings
  std::vector<std::string> data_files;
  Reference reference;
  // Measured scalars (0 when not measured).
  double kernel_floor_s = 0;       // GPU time of one empty kernel: the part of a kernel time that does not scale
  double launch_eager_s = 0;       // per kernel, back-to-back eager launches (host ahead)
  double launch_graph_s = 0;       // per kernel inside a CUDA graph
  double copy_bytes_per_s = 0;     // best D2D copy, read + write bytes / time
  double p2p_bytes_per_s = 0;      // best GPU->GPU copy over NVLink
  std::vector<Curve> curves;
  std::vector<AllToAllFit> alltoall;
  int points = 0;  // records fitted
  std::vector<Exclusion> excluded;
};

}  // namespace moesim::calib
