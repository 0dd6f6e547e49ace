// Device-to-device copy bandwidth (bytes read + bytes written), 1 MB .. 4 GB.
// Two implementations: cudaMemcpyAsync D2D ("memcpy") and a 16-byte vectorised
// grid-stride kernel ("kernel"). Inputs rotate over a pool larger than 2x L2.
#include <algorithm>
#include <vector>

#include "common.cuh"
#include "suites.h"

namespace moesim::validate {

namespace {

__global__ void k_copy16(const uint4* __restrict__ src, uint4* __restrict__ dst, size_t n16) {
  size_t stride = (size_t)gridDim.x * blockDim.x;
  size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  for (; i + 3 * stride < n16; i += 4 * stride) {
    uint4 a = src[i], b = src[i + stride], c = src[i + 2 * stride], d = src[i + 3 * stride];
    dst[i] = a; dst[i + stride] = b; dst[i + 2 * stride] = c; dst[i + 3 * stride] = d;
  }
  for (; i < n16; i += stride) dst[i] = src[i];
}

__global__ void k_count_mismatch(const uint8_t* a, const uint8_t* b, size_t n, unsigned long long* bad) {
  unsigned long long c = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    c += a[i] != b[i];
  if (c) atomicAdd(bad, c);
}

}  // namespace

void run_copy_suite(Harness& h) {
  cudaStream_t s;
  MOESIM_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaDeviceProp p{};
  MOESIM_CUDA_CHECK(cudaGetDeviceProperties(&p, h.device()));
  const size_t MB = 1ull << 20;
  std::vector<size_t> sizes;
  if (h.quick) sizes = {1 * MB, 64 * MB, 1024 * MB};
  else for (size_t b = MB; b <= 4096 * MB; b *= 2) sizes.push_back(b);
  size_t max_size = sizes.back();
  size_t free_b = 0, tot_b = 0;
  cudaMemGetInfo(&free_b, &tot_b);
  while (max_size > 64 * MB && 2 * max_size + 512 * MB > free_b) {
    std::fprintf(stderr, "[copy] skipping %zu MB: not enough free device memory\n", max_size / MB);
    sizes.pop_back();
    max_size = sizes.back();
  }
  // Pool: at least 3x L2 so that rotated small copies come from HBM.
  size_t pool = std::max(max_size, round_up(3 * (size_t)p.l2CacheSize, MB));
  uint8_t *src, *dst;
  unsigned long long* bad;
  MOESIM_CUDA_CHECK(cudaMalloc(&src, pool));
  MOESIM_CUDA_CHECK(cudaMalloc(&dst, pool));
  MOESIM_CUDA_CHECK(cudaMalloc(&bad, sizeof *bad));
  fill_u8(src, pool, 0xC0FFEE, s);
  int blocks = p.multiProcessorCount * 8;
  double best_bw = 0;

  for (const char* impl : {"memcpy", "kernel"}) {
    bool is_kernel = impl[0] == 'k';
    for (size_t bytes : sizes) {
      size_t nsets = std::max<size_t>(1, pool / bytes);
      auto launch = [&](int rep, cudaStream_t st) {
        size_t off = (rep % nsets) * bytes;
        if (is_kernel) k_copy16<<<blocks, 256, 0, st>>>((const uint4*)(src + off), (uint4*)(dst + off), bytes / 16);
        else MOESIM_CUDA_CHECK(cudaMemcpyAsync(dst + off, src + off, bytes, cudaMemcpyDeviceToDevice, st));
      };
      // Check: every rotation set after poisoning the destination.
      MOESIM_CUDA_CHECK(cudaMemsetAsync(dst, 0xA5, pool, s));
      for (size_t r = 0; r < nsets; ++r) launch((int)r, s);
      MOESIM_CUDA_CHECK(cudaGetLastError());
      MOESIM_CUDA_CHECK(cudaMemsetAsync(bad, 0, sizeof *bad, s));
      k_count_mismatch<<<blocks, 256, 0, s>>>(src, dst, nsets * bytes, bad);
      unsigned long long nbad = 0;
      MOESIM_CUDA_CHECK(cudaMemcpyAsync(&nbad, bad, sizeof nbad, cudaMemcpyDeviceToHost, s));
      MOESIM_CUDA_CHECK(cudaStreamSynchronize(s));
      double err = (double)nbad / (double)(nsets * bytes);
      std::string shape = strf("{\"bytes\":%zu}", bytes);
      if (!h.check("copy", "u8", shape, err, 0.0, impl)) continue;
      TimeOptions o;
      o.warmup = 3;
      o.min_reps = 10;
      o.max_reps = 100;
      o.target_ms = 40;
      Timing t = h.time(launch, s, o);
      h.record("copy", "u8", shape, t, err, 0, 2.0 * bytes, strf("\"impl\":\"%s\"", impl));
      double bw = 2.0 * bytes / (t.median_us * 1e-6);
      if (bytes >= 256 * MB) best_bw = std::max(best_bw, bw);
      std::fprintf(stderr, "[copy] %-6s %8zu KB  %9.2f us  %7.1f GB/s\n", impl, bytes / 1024, t.median_us, bw / 1e9);
    }
  }
  if (best_bw > 0) h.copy_bytes_per_s = best_bw;
  cudaFree(src);
  cudaFree(dst);
  cudaFree(bad);
  cudaStreamDestroy(s);
}

}  // namespace moesim::validate
