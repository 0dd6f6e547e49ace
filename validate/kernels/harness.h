// Measurement harness shared by every kernel suite under validate/kernels/.
//
// A suite checks its kernel against a reference on fresh random inputs, then
// times it with Harness::time and writes one JSON line per point with
// Harness::record. The line carries the environment (GPU, SM clock, driver,
// CUDA/cuBLAS/NCCL versions, date) so that every committed measurement has its
// provenance attached.
#pragma once

#include <cuda_runtime.h>

#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>

namespace moesim::validate {

// Throws std::runtime_error with file:line and the CUDA error string.
#define MOESIM_CUDA_CHECK(expr)                                                        \
  do {                                                                                 \
    cudaError_t err_ = (expr);                                                         \
    if (err_ != cudaSuccess)                                                           \
      throw std::runtime_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                               ": " #expr ": " + cudaGetErrorString(err_));            \
  } while (0)

struct Timing {
  double median_us = 0;
  double p10_us = 0;
  double p90_us = 0;
  int reps = 0;
};

struct TimeOptions {
  int warmup = 5;          // launches before timing starts
  int min_reps = 20;       // at least this many timed repetitions
  int max_reps = 200;      // at most this many
  double target_ms = 60;   // stop adding repetitions once this much GPU time was timed
  bool use_graph = false;  // capture `launch` into a CUDA graph and time graph replays
};

class Harness {
 public:
  // `out` receives JSON lines; `device` is the CUDA device ordinal the suite uses.
  Harness(std::FILE* out, int device);

  // Times `launch(rep)` on `stream` with CUDA events, one event pair per
  // repetition, after opts.warmup untimed calls. `rep` counts from 0 and lets the
  // suite rotate between input sets so repeated runs do not measure the L2 cache.
  Timing time(const std::function<void(int rep, cudaStream_t stream)>& launch,
              cudaStream_t stream, const TimeOptions& opts = {});

  // Writes one JSON line:
  // {"gpu":..,"sm_clock_mhz":..,"driver":..,"cuda":..,"cublas":..,"nccl":..,
  //  "date":..,"kernel":kernel,"dtype":dtype,"shape":<shape_json>,
  //  "median_us":..,"p10_us":..,"p90_us":..,"reps":..,"check_rel_err":..,
  //  "flops":flops,"bytes":bytes <extra_json members, if any>}
  // shape_json must be a JSON object literal, e.g. R"({"m":128,"n":4096,"k":7168})".
  // extra_json, if not empty, is a comma-free list of extra members without braces,
  // e.g. R"("note":"graph")" — appended as-is.
  // flops / bytes are the minimum work the kernel must do (each input read
  // once, each output written once): the denominators of the roofline fractions.
  void record(const std::string& kernel, const std::string& dtype, const std::string& shape_json,
              const Timing& t, double check_rel_err, double flops, double bytes,
              const std::string& extra_json = "");

  int device() const { return device_; }
  // Measured ceilings, filled by the copy and GEMM microbenchmarks when they run
  // first; 0 until then. Suites may print fractions of these on stderr.
  double copy_bytes_per_s = 0;
  // Short run for smoke tests: suites take a handful of points per family.
  bool quick = false;

 private:
  std::FILE* out_;
  int device_;
  std::string env_json_;  // the environment members, computed once
};

// Relative error ||out - ref|| / ||ref|| in the L2 norm; NaN anywhere gives +inf.
double rel_l2_error(const float* out, const float* ref, std::size_t n);

}  // namespace moesim::validate
