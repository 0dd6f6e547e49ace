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
#include <utility>
#include <vector>

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
  // Added (harness owner): before each batch of timed repetitions, enqueue a short
  // spin kernel so that the host runs ahead of the GPU and the event pairs measure
  // GPU time, not host launch latency. false = measure as eager code sees it.
  bool host_ahead = true;
  // Added: with use_graph, capture launch(v) for v = 0..graph_variants-1 into that
  // many graphs and replay graph (rep % graph_variants), so graphs can rotate inputs.
  int graph_variants = 1;
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

  // Added: judges a check. Returns rel_err <= tol (NaN/inf fail). A failure is
  // printed on stderr with the point, counted (check_failures()), and written as
  // one JSON line {"status":"check_failed",...} without timing fields.
  bool check(const std::string& kernel, const std::string& dtype, const std::string& shape_json,
             double rel_err, double tol, const std::string& note = "");
  // Added: the environment members as a JSON fragment (no braces).
  const std::string& env_json() const { return env_json_; }
  // Added: current SM clock in MHz (NVML if loadable, else the device's max clock).
  double sm_clock_mhz() const;
  // Added: stderr summary per kernel family (points, best fraction of roofline),
  // accumulated by record().
  void print_summary(std::FILE* f) const;

  // Measured ceilings, filled by the copy and GEMM microbenchmarks when they run
  // first; 0 until then. Suites may print fractions of these on stderr.
  double copy_bytes_per_s = 0;
  // Short run for smoke tests: suites take a handful of points per family.
  bool quick = false;

 private:
  std::FILE* out_;
  int device_;
  std::string env_json_;  // the environment members, computed once
  struct FamilyStats { int points = 0; double best_frac = 0; std::string best_shape; };
  std::vector<std::pair<std::string, FamilyStats>> families_;  // insertion order
  void* nvml_dev_ = nullptr;  // nvmlDevice_t when NVML was loaded
  double max_sm_clock_mhz_ = 0;
};

// Added: process-wide count of failed checks (Harness::check and the NCCL suite).
void count_check_failure();
int check_failures();
// Added: JSON string escaping (quotes included in the result).
std::string json_string(const std::string& s);

// Relative error ||out - ref|| / ||ref|| in the L2 norm; NaN anywhere gives +inf.
double rel_l2_error(const float* out, const float* ref, std::size_t n);

}  // namespace moesim::validate
