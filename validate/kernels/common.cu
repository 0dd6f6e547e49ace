#include "common.cuh"

#include <cmath>
#include <cstring>
#include <cstdio>
#include <vector>

namespace moesim::validate {

std::string strf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char buf[1024];
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < (int)sizeof buf) return std::string(buf, n > 0 ? n : 0);
  std::string s(n + 1, '\0');
  va_start(ap, fmt);
  vsnprintf(s.data(), s.size(), fmt, ap);
  va_end(ap);
  s.resize(n);
  return s;
}

namespace {

constexpr int kThreads = 256;
inline unsigned grid_for(size_t n) {
  size_t b = (n + kThreads - 1) / kThreads;
  if (b > 65535u * 16u) b = 65535u * 16u;
  return (unsigned)(b ? b : 1);
}

__global__ void k_fill_bf16(__nv_bfloat16* p, size_t n, uint64_t seed, float amp) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = __float2bfloat16(amp * uniform_pm1(seed, i));
}
__global__ void k_fill_f32(float* p, size_t n, uint64_t seed, float amp, float off) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = off + amp * uniform_pm1(seed, i);
}
__global__ void k_fill_fp8(__nv_fp8_e4m3* p, size_t n, uint64_t seed, float amp) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = __nv_fp8_e4m3(amp * uniform_pm1(seed, i));
}
__global__ void k_fill_u8(uint8_t* p, size_t n, uint64_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = (uint8_t)(mix64(seed + i) >> 56);
}
__global__ void k_bf16_to_f32(const __nv_bfloat16* s, float* d, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    d[i] = __bfloat162float(s[i]);
}
__global__ void k_fp8_to_f32(const __nv_fp8_e4m3* s, float* d, size_t n, float scale) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    d[i] = float(s[i]) * scale;
}
__global__ void k_fp8_bs(const __nv_fp8_e4m3* s, float* d, size_t rows, size_t cols, const float* sc,
                         int rb, size_t ldr) {
  size_t n = rows * cols;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    size_t r = i / cols, c = i % cols;
    d[i] = float(s[i]) * sc[(r / rb) * ldr + c / 128];
  }
}
__global__ void k_poison(__nv_bfloat16* p, size_t n) {
  __nv_bfloat16_raw raw;
  raw.x = 0xFFFF;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = __nv_bfloat16(raw);
}
__global__ void k_err(const __nv_bfloat16* o, size_t ldo, const float* r, size_t ldr, size_t rows,
                      size_t cols, double* acc) {
  double se = 0, sr = 0;
  unsigned long long bad = 0;
  size_t n = rows * cols;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    size_t rr = i / cols, cc = i % cols;
    double ov = __bfloat162float(o[rr * ldo + cc]);
    double rv = r[rr * ldr + cc];
    if (!isfinite(ov)) bad++;
    else { se += (ov - rv) * (ov - rv); }
    sr += rv * rv;
  }
  atomicAdd(&acc[0], se);
  atomicAdd(&acc[1], sr);
  if (bad) atomicAdd(reinterpret_cast<unsigned long long*>(&acc[2]), bad);
}
__global__ void k_spin(uint64_t ns) {
  uint64_t t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (t - t0 < ns);
}

}  // namespace

void fill_bf16(__nv_bfloat16* p, size_t n, uint64_t seed, float amp, cudaStream_t s) {
  k_fill_bf16<<<grid_for(n), kThreads, 0, s>>>(p, n, seed, amp);
  MOESIM_CUDA_CHECK(cudaGetLastError());
}
void fill_f32(float* p, size_t n, uint64_t seed, float amp, float offset, cudaStream_t s) {
  k_fill_f32<<<grid_for(n), kThreads, 0, s>>>(p, n, seed, amp, offset);
  MOESIM_CUDA_CHECK(cudaGetLastError());
}
void fill_fp8(__nv_fp8_e4m3* p, size_t n, uint64_t seed, float amp, cudaStream_t s) {
  k_fill_fp8<<<grid_for(n), kThreads, 0, s>>>(p, n, seed, amp);
  MOESIM_CUDA_CHECK(cudaGetLastError());
}
void fill_u8(uint8_t* p, size_t n, uint64_t seed, cudaStream_t s) {
  k_fill_u8<<<grid_for(n), kThreads, 0, s>>>(p, n, seed);
  MOESIM_CUDA_CHECK(cudaGetLastError());
}
void bf16_to_f32(const __nv_bfloat16* src, float* dst, size_t n, cudaStream_t s) {
  k_bf16_to_f32<<<grid_for(n), kThreads, 0, s>>>(src, dst, n);
  MOESIM_CUDA_CHECK(cudaGetLastError());
}
void fp8_to_f32(const __nv_fp8_e4m3* src, float* dst, size_t n, float scale, cudaStream_t s) {
  k_fp8_to_f32<<<grid_for(n), kThreads, 0, s>>>(src, dst, n, scale);
  MOESIM_CUDA_CHECK(cudaGetLastError());
}
void fp8_to_f32_blockscaled(const __nv_fp8_e4m3* src, float* dst, size_t rows, size_t cols,
                            const float* sc, int rb, size_t sc_ld_r, cudaStream_t s) {
  k_fp8_bs<<<grid_for(rows * cols), kThreads, 0, s>>>(src, dst, rows, cols, sc, rb, sc_ld_r);
  MOESIM_CUDA_CHECK(cudaGetLastError());
}
void poison_bf16(__nv_bfloat16* p, size_t n, cudaStream_t s) {
  k_poison<<<grid_for(n), kThreads, 0, s>>>(p, n);
  MOESIM_CUDA_CHECK(cudaGetLastError());
}
double rel_err_bf16_vs_f32(const __nv_bfloat16* out, size_t ld_out, const float* ref, size_t ld_ref,
                           size_t rows, size_t cols, cudaStream_t s) {
  double* acc = nullptr;
  MOESIM_CUDA_CHECK(cudaMallocAsync(&acc, 3 * sizeof(double), s));
  MOESIM_CUDA_CHECK(cudaMemsetAsync(acc, 0, 3 * sizeof(double), s));
  size_t n = rows * cols;
  unsigned g = grid_for(n);
  if (g > 4096) g = 4096;
  k_err<<<g, kThreads, 0, s>>>(out, ld_out, ref, ld_ref, rows, cols, acc);
  MOESIM_CUDA_CHECK(cudaGetLastError());
  double h[3];
  MOESIM_CUDA_CHECK(cudaMemcpyAsync(h, acc, sizeof h, cudaMemcpyDeviceToHost, s));
  MOESIM_CUDA_CHECK(cudaFreeAsync(acc, s));
  MOESIM_CUDA_CHECK(cudaStreamSynchronize(s));
  unsigned long long bad;
  memcpy(&bad, &h[2], sizeof bad);
  if (bad) return INFINITY;
  if (h[1] == 0) return h[0] == 0 ? 0 : INFINITY;
  return std::sqrt(h[0] / h[1]);
}
void launch_spin(uint64_t ns, cudaStream_t s) {
  k_spin<<<1, 1, 0, s>>>(ns);
  MOESIM_CUDA_CHECK(cudaGetLastError());
}

}  // namespace moesim::validate
