// Helpers shared by the library-backed suites (copy, launch, gemm, grouped_gemm,
// nccl): deterministic random fills, error norms on the device, cuBLAS checks.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdarg>
#include <cstdint>
#include <string>

#include "harness.h"

namespace moesim::validate {

#define MOESIM_CUBLAS_CHECK(expr)                                                          \
  do {                                                                                     \
    cublasStatus_t st_ = (expr);                                                           \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                      \
      throw std::runtime_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) +    \
                               ": " #expr ": cublas status " + std::to_string((int)st_)); \
  } while (0)

// printf into a std::string.
std::string strf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Deterministic 64-bit mixing (splitmix64 finalizer).
__host__ __device__ inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
// Uniform in [-1, 1) from (seed, index).
__host__ __device__ inline float uniform_pm1(uint64_t seed, uint64_t i) {
  uint64_t h = mix64(seed * 0x100000001B3ull + i);
  return (float)((h >> 40) * (1.0 / 8388608.0)) - 1.0f;  // 24 bits -> [0,2) - 1
}

// Host-side RNG (splitmix64 stream), identical on every platform.
struct HostRng {
  uint64_t s;
  explicit HostRng(uint64_t seed) : s(seed) {}
  uint64_t next() { s += 0x9E3779B97F4A7C15ull; return mix64(s); }
  double uniform01() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
};

// Fills: x = amp * uniform_pm1(seed, i).
void fill_bf16(__nv_bfloat16* p, size_t n, uint64_t seed, float amp, cudaStream_t s);
void fill_f32(float* p, size_t n, uint64_t seed, float amp, float offset, cudaStream_t s);
// q = fp8(amp * uniform_pm1(seed, i)).
void fill_fp8(__nv_fp8_e4m3* p, size_t n, uint64_t seed, float amp, cudaStream_t s);
void fill_u8(uint8_t* p, size_t n, uint64_t seed, cudaStream_t s);
// Elementwise conversion to float: dst[i] = float(src[i]) * scale.
void bf16_to_f32(const __nv_bfloat16* src, float* dst, size_t n, cudaStream_t s);
void fp8_to_f32(const __nv_fp8_e4m3* src, float* dst, size_t n, float scale, cudaStream_t s);
// Block-scaled dequantisation of a row-major [rows][cols] fp8 matrix:
// dst[r][c] = q[r][c] * sc[(r / rb) * sc_ld_r + (c / 128)]   (rb = 128 or 1).
void fp8_to_f32_blockscaled(const __nv_fp8_e4m3* src, float* dst, size_t rows, size_t cols,
                            const float* sc, int rb, size_t sc_ld_r, cudaStream_t s);
// Fills `out` with a NaN pattern (bf16 0xFFFF) so unwritten outputs fail checks.
void poison_bf16(__nv_bfloat16* p, size_t n, cudaStream_t s);

// ||out - ref|| / ||ref|| over a rows x cols block, both row-major with leading
// dimensions ld_out / ld_ref (elements). NaN/inf in out gives +inf.
double rel_err_bf16_vs_f32(const __nv_bfloat16* out, size_t ld_out, const float* ref,
                           size_t ld_ref, size_t rows, size_t cols, cudaStream_t s);

// Spins the GPU for about `ns` nanoseconds (globaltimer).
void launch_spin(uint64_t ns, cudaStream_t s);

inline size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

}  // namespace moesim::validate
