// All-to-all time on the GPUs of one NVLink domain, fitted to the NCCL
// measurements (kernel "nccl_alltoall"). Pure functions, so that the network
// model's collectives can use the same efficiency.
//
// One fit per GPU count and traffic pattern ("uniform", "skewed", "dirichlet";
// the simulator's balanced MoE dispatch uses "uniform"). The axis is the
// bottleneck rank's off-GPU bytes: max over ranks of max(bytes sent to other
// GPUs, bytes received from other GPUs). Inside the measured range the time is
// interpolated linearly in bytes between neighbouring measured points (time is
// close to affine in bytes between them: a latency plus bytes over a
// bandwidth); outside it an alpha-beta line t = alpha + bytes / beta, fitted by
// least relative squares, is used.
// Extrapolation to another GPU scales the bandwidth part by the NVLink
// per-direction bandwidth ratio and keeps alpha (latency) unchanged.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace moesim::calib {

struct AllToAllPoint {
  double offgpu_bytes = 0;  // bottleneck rank's off-GPU bytes
  double seconds = 0;
};

struct AllToAllFit {
  int gpus = 0;
  std::string pattern = "uniform";
  std::vector<double> offgpu_bytes;  // strictly increasing
  std::vector<double> seconds;
  double alpha_s = 0;    // latency term
  double beta_Bps = 0;   // asymptotic bottleneck bandwidth (bytes/s)
};

// Bottleneck off-GPU bytes of a byte matrix (bytes from rank i to rank j).
double bottleneck_offgpu_bytes(const std::vector<std::vector<double>>& matrix);

// Points with equal bytes are merged by geometric mean of their times.
AllToAllFit fit_alltoall(int gpus, const std::string& pattern, std::vector<AllToAllPoint> points);

// Time on the measured GPU.
double alltoall_seconds(const AllToAllFit& fit, double offgpu_bytes);
// Time on a GPU whose NVLink per-direction bandwidth is `bandwidth_ratio` times the measured one's.
double alltoall_seconds_scaled(const AllToAllFit& fit, double offgpu_bytes, double bandwidth_ratio);
// The fit for `gpus` ranks and `pattern`: exact when measured, else the largest measured GPU count
// with that pattern (nullptr if the pattern was never measured).
const AllToAllFit* alltoall_fit_for(const std::vector<AllToAllFit>& fits, int gpus,
                                    const std::string& pattern = "uniform");

// A uniform MoE dispatch/combine: each rank sends tokens_per_rank * min(ranks, topk) * bytes_per_token
// bytes spread evenly over all ranks, itself included; the off-GPU share is (ranks-1)/ranks.
double moe_alltoall_offgpu_bytes(double tokens_per_rank, int ranks, int topk, double bytes_per_token);
// Logical bandwidth as DeepEP / TRT-LLM define it: tokens * min(ranks, topk) * bytes_per_token / time.
double moe_logical_bandwidth(double tokens_per_rank, int ranks, int topk, double bytes_per_token, double seconds);

}  // namespace moesim::calib
