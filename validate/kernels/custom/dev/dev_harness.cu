// DEV ONLY: a minimal stand-in for validate/kernels/harness.cu so the custom
// suites can be built and run alone (custom/dev/build.sh). Not part of the real
// harness build; CMake must not compile anything under custom/dev/.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../../harness.h"

namespace moesim::validate {

Harness::Harness(std::FILE* out, int device) : out_(out), device_(device) {
  cudaDeviceProp p{};
  MOESIM_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  env_json_ = std::string("\"gpu\":\"") + p.name + "\",\"note\":\"dev_harness\"";
}

Timing Harness::time(const std::function<void(int, cudaStream_t)>& launch, cudaStream_t stream,
                     const TimeOptions& opts) {
  for (int i = 0; i < opts.warmup; ++i) launch(i, stream);
  MOESIM_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<cudaEvent_t> ev(2 * opts.max_reps);
  for (auto& e : ev) MOESIM_CUDA_CHECK(cudaEventCreate(&e));
  std::vector<float> ms;
  double total = 0;
  int rep = 0;
  while (rep < opts.max_reps && (rep < opts.min_reps || total < opts.target_ms)) {
    MOESIM_CUDA_CHECK(cudaEventRecord(ev[2 * rep], stream));
    launch(rep + opts.warmup, stream);
    MOESIM_CUDA_CHECK(cudaEventRecord(ev[2 * rep + 1], stream));
    MOESIM_CUDA_CHECK(cudaEventSynchronize(ev[2 * rep + 1]));
    float m = 0;
    MOESIM_CUDA_CHECK(cudaEventElapsedTime(&m, ev[2 * rep], ev[2 * rep + 1]));
    ms.push_back(m);
    total += m;
    ++rep;
  }
  for (auto& e : ev) MOESIM_CUDA_CHECK(cudaEventDestroy(e));
  std::sort(ms.begin(), ms.end());
  Timing t;
  t.reps = rep;
  t.median_us = ms[ms.size() / 2] * 1e3;
  t.p10_us = ms[ms.size() / 10] * 1e3;
  t.p90_us = ms[(ms.size() * 9) / 10] * 1e3;
  return t;
}

void Harness::record(const std::string& kernel, const std::string& dtype, const std::string& shape_json,
                     const Timing& t, double check_rel_err, double flops, double bytes,
                     const std::string& extra_json) {
  std::fprintf(out_,
               "{%s,\"kernel\":\"%s\",\"dtype\":\"%s\",\"shape\":%s,\"median_us\":%.3f,\"p10_us\":%.3f,"
               "\"p90_us\":%.3f,\"reps\":%d,\"check_rel_err\":%.3e,\"flops\":%.6e,\"bytes\":%.6e%s%s}\n",
               env_json_.c_str(), kernel.c_str(), dtype.c_str(), shape_json.c_str(), t.median_us, t.p10_us,
               t.p90_us, t.reps, std::isfinite(check_rel_err) ? check_rel_err : 1e300, flops, bytes,
               extra_json.empty() ? "" : ",", extra_json.c_str());
  std::fflush(out_);
}

double rel_l2_error(const float* out, const float* ref, std::size_t n) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(out[i])) return INFINITY;
    double d = (double)out[i] - ref[i];
    num += d * d;
    den += (double)ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace moesim::validate
