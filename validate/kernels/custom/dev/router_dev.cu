// DEV ONLY (router): a stand-in Harness whose timing follows harness.cu (a spin kernel
// keeps the host ahead, then a batch of event-timed launches), and a main that runs the
// router suite only. Build: dev/build_router.sh OUT [router.cu]. CMake must not compile it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "../../suites.h"

namespace moesim::validate {

namespace {
__global__ void k_spin(unsigned long long ns) {
  unsigned long long t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (t - t0 < ns);
}
}  // namespace

Harness::Harness(std::FILE* out, int device) : out_(out), device_(device) {
  cudaDeviceProp p{};
  MOESIM_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  env_json_ = std::string("\"gpu\":\"") + p.name + "\",\"note\":\"router_dev\"";
}

Timing Harness::time(const std::function<void(int, cudaStream_t)>& launch, cudaStream_t stream,
                     const TimeOptions& opts) {
  auto w0 = std::chrono::steady_clock::now();
  for (int i = 0; i < opts.warmup; ++i) launch(i, stream);
  auto w1 = std::chrono::steady_clock::now();
  const double host_us = std::chrono::duration<double, std::micro>(w1 - w0).count() / std::max(1, opts.warmup);
  MOESIM_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<cudaEvent_t> ev(2 * opts.max_reps);
  for (auto& e : ev) MOESIM_CUDA_CHECK(cudaEventCreate(&e));
  std::vector<float> ms;
  double total = 0;
  const int batch = std::min(opts.min_reps, opts.max_reps);
  while ((int)ms.size() < opts.max_reps && ((int)ms.size() < opts.min_reps || total < opts.target_ms)) {
    const int base = (int)ms.size(), nb = std::min(batch, opts.max_reps - base);
    k_spin<<<1, 1, 0, stream>>>(
        (unsigned long long)std::min((std::max(host_us, 2.0) * 1.5 + 6.0) * nb * 1000.0 + 20000.0, 20e6));
    for (int i = 0; i < nb; ++i) {
      MOESIM_CUDA_CHECK(cudaEventRecord(ev[2 * (base + i)], stream));
      launch(base + i + opts.warmup, stream);
      MOESIM_CUDA_CHECK(cudaEventRecord(ev[2 * (base + i) + 1], stream));
    }
    MOESIM_CUDA_CHECK(cudaStreamSynchronize(stream));
    for (int i = 0; i < nb; ++i) {
      float m = 0;
      MOESIM_CUDA_CHECK(cudaEventElapsedTime(&m, ev[2 * (base + i)], ev[2 * (base + i) + 1]));
      ms.push_back(m);
      total += m;
    }
  }
  for (auto& e : ev) MOESIM_CUDA_CHECK(cudaEventDestroy(e));
  std::sort(ms.begin(), ms.end());
  Timing t;
  t.reps = (int)ms.size();
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

}  // namespace moesim::validate

int main() {
  using namespace moesim::validate;
  try {
    Harness h(stdout, 0);
    run_router_suite(h);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FATAL: %s\n", e.what());
    return 1;
  }
  return 0;
}
