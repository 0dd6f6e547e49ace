// Helpers shared by the custom kernels (router, permute, mla_decode).
// Everything lives in moesim::validate::custom so that nothing clashes with the
// library suites' helpers in validate/kernels/common.cuh.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "../harness.h"

namespace moesim::validate::custom {

#define CUSTOM_CHECK_LAUNCH() MOESIM_CUDA_CHECK(cudaGetLastError())

// Owning device buffer (cudaMalloc; never managed memory).
template <class T>
struct DevBuf {
  T* p = nullptr;
  size_t n = 0;
  DevBuf() = default;
  explicit DevBuf(size_t n_) { alloc(n_); }
  void alloc(size_t n_) {
    release();
    n = n_;
    if (n) MOESIM_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
  }
  void release() {
    if (p) cudaFree(p);
    p = nullptr;
    n = 0;
  }
  ~DevBuf() { release(); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  DevBuf(DevBuf&& o) noexcept : p(o.p), n(o.n) { o.p = nullptr; o.n = 0; }
  DevBuf& operator=(DevBuf&& o) noexcept {
    if (this != &o) { release(); p = o.p; n = o.n; o.p = nullptr; o.n = 0; }
    return *this;
  }
  size_t bytes() const { return n * sizeof(T); }
  // Fill with 0xFF bytes: NaN for float/bf16, -1 for ints.
  void poison(cudaStream_t s) { if (n) MOESIM_CUDA_CHECK(cudaMemsetAsync(p, 0xFF, bytes(), s)); }
  std::vector<T> to_host() const {
    std::vector<T> h(n);
    if (n) MOESIM_CUDA_CHECK(cudaMemcpy(h.data(), p, bytes(), cudaMemcpyDeviceToHost));
    return h;
  }
  void from_host(const std::vector<T>& h) {
    if (h.size() != n) alloc(h.size());
    if (n) MOESIM_CUDA_CHECK(cudaMemcpy(p, h.data(), bytes(), cudaMemcpyHostToDevice));
  }
};

__host__ __device__ inline uint64_t cmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
// Uniform in [0, 1) with 24 random bits.
__host__ __device__ inline float cuni01(uint64_t seed, uint64_t i) {
  return (float)(cmix64(seed * 0x100000001B3ull + i) >> 40) * (1.0f / 16777216.0f);
}

// Fresh seeds for every check: one random_device draw per process, then a counter.
inline uint64_t next_seed() {
  static uint64_t base = [] {
    std::random_device rd;
    uint64_t b = ((uint64_t)rd() << 32) ^ rd();
    std::fprintf(stderr, "[custom] base seed %llu\n", (unsigned long long)b);
    return b;
  }();
  static uint64_t ctr = 0;
  return cmix64(base + (++ctr));
}

// Shared-memory address of a generic pointer, and a wait on an mbarrier phase (the bulk-copy kernels).
__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done;
  do {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}

// Device fills. The kernels have internal linkage: every .cu gets its own copy.
namespace {
__global__ void k_fill_f32(float* p, size_t n, uint64_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = lo + (hi - lo) * cuni01(seed, i);
}
// Approximately standard normal (Box-Muller).
__global__ void k_fill_normal_f32(float* p, size_t n, uint64_t seed, float sigma) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    float u1 = cuni01(seed, 2 * i) + 1e-7f, u2 = cuni01(seed, 2 * i + 1);
    p[i] = sigma * sqrtf(-2.f * logf(u1)) * cospif(2.f * u2);
  }
}
__global__ void k_fill_bf16(__nv_bfloat16* p, size_t n, uint64_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = __float2bfloat16(lo + (hi - lo) * cuni01(seed, i));
}
__global__ void k_fill_fp8(__nv_fp8_e4m3* p, size_t n, uint64_t seed, float lo, float hi) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = __nv_fp8_e4m3(lo + (hi - lo) * cuni01(seed, i));
}

}  // namespace

inline int fill_blocks(size_t n) { return (int)std::min<size_t>((n + 255) / 256, 132 * 16); }
inline void fill_f32(float* p, size_t n, float lo, float hi, cudaStream_t s) {
  if (!n) return;
  k_fill_f32<<<fill_blocks(n), 256, 0, s>>>(p, n, next_seed(), lo, hi);
  CUSTOM_CHECK_LAUNCH();
}
inline void fill_normal_f32(float* p, size_t n, float sigma, cudaStream_t s) {
  if (!n) return;
  k_fill_normal_f32<<<fill_blocks(n), 256, 0, s>>>(p, n, next_seed(), sigma);
  CUSTOM_CHECK_LAUNCH();
}
inline void fill_bf16(__nv_bfloat16* p, size_t n, float lo, float hi, cudaStream_t s) {
  if (!n) return;
  k_fill_bf16<<<fill_blocks(n), 256, 0, s>>>(p, n, next_seed(), lo, hi);
  CUSTOM_CHECK_LAUNCH();
}
inline void fill_fp8(__nv_fp8_e4m3* p, size_t n, float lo, float hi, cudaStream_t s) {
  if (!n) return;
  k_fill_fp8<<<fill_blocks(n), 256, 0, s>>>(p, n, next_seed(), lo, hi);
  CUSTOM_CHECK_LAUNCH();
}

inline float bf2f(__nv_bfloat16 x) { return __bfloat162float(x); }

inline int l2_bytes(int device) {
  int v = 0;
  MOESIM_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrL2CacheSize, device));
  return v;
}
inline int sm_count(int device) {
  int v = 0;
  MOESIM_CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, device));
  return v;
}
// Number of rotated input sets so that the sets together span >= 2x L2.
inline int rotation_sets(double ws_bytes, int l2, int cap) {
  if (ws_bytes >= 2.0 * l2) return 1;
  int n = (int)std::ceil(2.0 * l2 / std::max(ws_bytes, 1.0));
  return std::max(1, std::min(n, cap));
}

inline std::string strfmt(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string strfmt(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

// Loud failure line: checks never get hidden.
inline void report_check_failure(const char* kernel, const std::string& shape, double err, const char* what) {
  std::fprintf(stderr, "!!!!! CHECK FAILED: kernel=%s shape=%s err=%g (%s) !!!!!\n", kernel, shape.c_str(), err, what);
}

}  // namespace moesim::validate::custom
