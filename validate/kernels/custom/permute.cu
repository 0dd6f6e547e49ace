// Kernels "permute" and "unpermute": single-GPU MoE dispatch / combine.
//
// permute: x [T, H] (bf16, or fp8 e4m3 + FP32 scale per 128 channels as DeepEP
//   sends it) and ids [T, k] -> rows [T*k, H] grouped by expert (expert e owns
//   rows offsets[e] .. offsets[e+1]-1), plus dst_row [T, k] (where row (t, j)
//   went) and offsets [E+1].
//   Large path (T*k > 1024), two launches:
//     1. count_scan: per-block shared histogram -> global counts; the last block
//        to finish does the exclusive scan over E, writes offsets, resets the
//        counters (the counters are self-cleaning: zero between calls).
//     2. copy: one block per token; k threads claim slots with atomicAdd on the
//        per-expert cursor (order inside an expert is arbitrary), then the block
//        reads the row once (16-byte loads) and writes it k times.
//   Small path (T*k <= 1024), one launch: each block computes the slots of its
//     token directly (slot = #ids < e + #earlier ids == e; stable order), block
//     (0,0) writes offsets; the row is split over gridDim.y blocks.
// unpermute: y [T*k, H] bf16 (expert outputs in permuted order), dst_row, w [T,k]
//   -> out[t] = sum_j w[t,j] * y[dst_row[t,j]], FP32 accumulation, bf16 out.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "../suites.h"
#include "common.cuh"

namespace moesim::validate {
namespace custom {
namespace {

constexpr int kSmallTK = 1024;

__global__ void count_scan_kernel(const int* __restrict__ ids, int n, int E, int* __restrict__ counts,
                                  int* __restrict__ offsets, int* __restrict__ cursor,
                                  unsigned* __restrict__ done) {
  extern __shared__ int sh[];  // E
  __shared__ bool last;
  for (int e = threadIdx.x; e < E; e += blockDim.x) sh[e] = 0;
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    atomicAdd(&sh[__ldg(ids + i)], 1);
  __syncthreads();
  for (int e = threadIdx.x; e < E; e += blockDim.x)
    if (sh[e]) atomicAdd(&counts[e], sh[e]);
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last = (atomicAdd(done, 1u) == gridDim.x - 1);
  __syncthreads();
  if (!last) return;
  __threadfence();
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    sh[e] = atomicExch(&counts[e], 0);
    cursor[e] = 0;
  }
  __syncthreads();
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    const int per = (E + 31) / 32;
    int loc = 0;
    for (int i = 0; i < per; ++i) {
      int e = lane * per + i;
      if (e < E) loc += sh[e];
    }
    int inc = loc;
    for (int off = 1; off < 32; off <<= 1) {
      int o = __shfl_up_sync(0xffffffffu, inc, off);
      if (lane >= off) inc += o;
    }
    int run = inc - loc;
    for (int i = 0; i < per; ++i) {
      int e = lane * per + i;
      if (e < E) { offsets[e] = run; run += sh[e]; }
    }
    if (lane == 31) offsets[E] = inc;
    if (lane == 0) *done = 0;
  }
}

// Copies one row (nvec uint4 of payload + nsvec uint4 of scales) to k rows.
template <int K>
__global__ void __launch_bounds__(128) permute_copy_kernel(
    const uint4* __restrict__ x, const uint4* __restrict__ xs, const int* __restrict__ ids, int nvec,
    int nsvec, const int* __restrict__ offsets, int* __restrict__ cursor, uint4* __restrict__ out,
    uint4* __restrict__ outs, int* __restrict__ dst_row) {
  __shared__ int dst[K];
  const int t = blockIdx.x;
  if (threadIdx.x < K) {
    int e = __ldg(ids + (size_t)t * K + threadIdx.x);
    int p = __ldg(offsets + e) + atomicAdd(&cursor[e], 1);
    dst[threadIdx.x] = p;
    dst_row[(size_t)t * K + threadIdx.x] = p;
  }
  __syncthreads();
  int d[K];
#pragma unroll
  for (int j = 0; j < K; ++j) d[j] = dst[j];
  const uint4* src = x + (size_t)t * nvec;
  int v = threadIdx.x;
  for (; v + 3 * 128 < nvec; v += 4 * 128) {
    uint4 a0 = __ldg(src + v), a1 = __ldg(src + v + 128), a2 = __ldg(src + v + 256), a3 = __ldg(src + v + 384);
#pragma unroll
    for (int j = 0; j < K; ++j) {
      uint4* o = out + (size_t)d[j] * nvec + v;
      o[0] = a0; o[128] = a1; o[256] = a2; o[384] = a3;
    }
  }
  for (; v < nvec; v += 128) {
    uint4 a = __ldg(src + v);
#pragma unroll
    for (int j = 0; j < K; ++j) out[(size_t)d[j] * nvec + v] = a;
  }
  if (nsvec) {
    for (int u = threadIdx.x; u < nsvec; u += 128) {
      uint4 a = __ldg(xs + (size_t)t * nsvec + u);
#pragma unroll
      for (int j = 0; j < K; ++j) outs[(size_t)d[j] * nsvec + u] = a;
    }
  }
}

// Small T*k: one launch, stable slots; grid (T, ysplit).
template <int K>
__global__ void __launch_bounds__(128) permute_small_kernel(
    const uint4* __restrict__ x, const uint4* __restrict__ xs, const int* __restrict__ ids, int n /*T*K*/,
    int E, int nvec, int nsvec, int chunk, int* __restrict__ offsets, uint4* __restrict__ out,
    uint4* __restrict__ outs, int* __restrict__ dst_row) {
  __shared__ int cnt[K];
  __shared__ int myid[K];
  const int t = blockIdx.x;
  if (threadIdx.x < K) { cnt[threadIdx.x] = 0; myid[threadIdx.x] = __ldg(ids + (size_t)t * K + threadIdx.x); }
  __syncthreads();
  int c[K];
#pragma unroll
  for (int j = 0; j < K; ++j) c[j] = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    int e = __ldg(ids + i);
#pragma unroll
    for (int j = 0; j < K; ++j) c[j] += (e < myid[j]) || (e == myid[j] && i < t * K + j);
  }
#pragma unroll
  for (int j = 0; j < K; ++j) {
    int v = c[j];
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    if ((threadIdx.x & 31) == 0 && v) atomicAdd(&cnt[j], v);
  }
  __syncthreads();
  int d[K];
#pragma unroll
  for (int j = 0; j < K; ++j) d[j] = cnt[j];
  if (blockIdx.y == 0 && threadIdx.x < K) dst_row[(size_t)t * K + threadIdx.x] = d[threadIdx.x];
  if (blockIdx.x == 0 && blockIdx.y == 0) {
    // offsets = exclusive scan of the histogram (shared memory, E ints).
    extern __shared__ int hist[];
    for (int e = threadIdx.x; e < E; e += blockDim.x) hist[e] = 0;
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) atomicAdd(&hist[__ldg(ids + i)], 1);
    __syncthreads();
    if (threadIdx.x < 32) {
      const int lane = threadIdx.x, per = (E + 31) / 32;
      int loc = 0;
      for (int i = 0; i < per; ++i) { int e = lane * per + i; if (e < E) loc += hist[e]; }
      int inc = loc;
      for (int off = 1; off < 32; off <<= 1) { int o = __shfl_up_sync(0xffffffffu, inc, off); if (lane >= off) inc += o; }
      int run = inc - loc;
      for (int i = 0; i < per; ++i) { int e = lane * per + i; if (e < E) { offsets[e] = run; run += hist[e]; } }
      if (lane == 31) offsets[E] = inc;
    }
  }
  const int v0 = blockIdx.y * chunk, v1 = min(nvec, v0 + chunk);
  const uint4* src = x + (size_t)t * nvec;
  for (int v = v0 + threadIdx.x; v < v1; v += 128) {
    uint4 a = __ldg(src + v);
#pragma unroll
    for (int j = 0; j < K; ++j) out[(size_t)d[j] * nvec + v] = a;
  }
  if (nsvec && blockIdx.y == 0) {
    for (int u = threadIdx.x; u < nsvec; u += 128) {
      uint4 a = __ldg(xs + (size_t)t * nsvec + u);
#pragma unroll
      for (int j = 0; j < K; ++j) outs[(size_t)d[j] * nsvec + u] = a;
    }
  }
}

template <int K>
__global__ void __launch_bounds__(128) unpermute_kernel(const uint4* __restrict__ y, const int* __restrict__ dst_row,
                                                        const float* __restrict__ w, int nvec, int chunk,
                                                        uint4* __restrict__ out) {
  const int t = blockIdx.x;
  int rows[K];
  float ws[K];
#pragma unroll
  for (int j = 0; j < K; ++j) { rows[j] = __ldg(dst_row + (size_t)t * K + j); ws[j] = __ldg(w + (size_t)t * K + j); }
  const int v0 = blockIdx.y * chunk, v1 = min(nvec, v0 + chunk);
  for (int v = v0 + threadIdx.x; v < v1; v += 128) {
    uint4 a[K];
#pragma unroll
    for (int j = 0; j < K; ++j) a[j] = __ldg(y + (size_t)rows[j] * nvec + v);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
#pragma unroll
    for (int j = 0; j < K; ++j) {
      const __nv_bfloat162* b = reinterpret_cast<const __nv_bfloat162*>(&a[j]);
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        float2 f = __bfloat1622float2(b[q]);
        acc[2 * q] = fmaf(ws[j], f.x, acc[2 * q]);
        acc[2 * q + 1] = fmaf(ws[j], f.y, acc[2 * q + 1]);
      }
    }
    uint4 o;
    __nv_bfloat162* ob = reinterpret_cast<__nv_bfloat162*>(&o);
#pragma unroll
    for (int q = 0; q < 4; ++q) ob[q] = __floats2bfloat162_rn(acc[2 * q], acc[2 * q + 1]);
    out[(size_t)t * nvec + v] = o;
  }
}

struct PermuteBufs {
  // inputs
  DevBuf<uint8_t> x;     // [T, row_bytes]
  DevBuf<float> xs;      // [T, H/128] (fp8 only)
  DevBuf<int> ids;       // [T, K]
  // outputs
  DevBuf<uint8_t> out;   // [T*K, row_bytes]
  DevBuf<float> outs;    // [T*K, H/128]
  DevBuf<int> dst_row;   // [T, K]
  DevBuf<int> offsets;   // [E+1]
};

struct PermuteCtx {
  int T, H, K, E;
  bool fp8;
  DevBuf<int> counts, cursor;
  DevBuf<unsigned> done;
  size_t row_bytes() const { return fp8 ? (size_t)H : (size_t)H * 2; }
  int nvec() const { return (int)(row_bytes() / 16); }
  int nsvec() const { return fp8 ? H / 128 / 4 : 0; }
  void init(cudaStream_t s) {
    counts.alloc(E);
    cursor.alloc(E);
    done.alloc(1);
    MOESIM_CUDA_CHECK(cudaMemsetAsync(counts.p, 0, counts.bytes(), s));
    MOESIM_CUDA_CHECK(cudaMemsetAsync(cursor.p, 0, cursor.bytes(), s));
    MOESIM_CUDA_CHECK(cudaMemsetAsync(done.p, 0, done.bytes(), s));
  }
  void alloc(PermuteBufs& b) const {
    b.x.alloc((size_t)T * row_bytes());
    if (fp8) b.xs.alloc((size_t)T * H / 128);
    b.ids.alloc((size_t)T * K);
    b.out.alloc((size_t)T * K * row_bytes());
    if (fp8) b.outs.alloc((size_t)T * K * H / 128);
    b.dst_row.alloc((size_t)T * K);
    b.offsets.alloc(E + 1);
  }
};

template <int K>
void launch_permute_k(PermuteCtx& c, PermuteBufs& b, cudaStream_t s) {
  const int n = c.T * K, nvec = c.nvec(), nsvec = c.nsvec();
  const uint4* xs = c.fp8 ? reinterpret_cast<const uint4*>(b.xs.p) : nullptr;
  uint4* outs = c.fp8 ? reinterpret_cast<uint4*>(b.outs.p) : nullptr;
  if (n <= kSmallTK) {
    int ysplit = std::max(1, std::min((264 + c.T - 1) / c.T, (nvec + 127) / 128));
    int chunk = (nvec + ysplit - 1) / ysplit;
    permute_small_kernel<K><<<dim3(c.T, ysplit), 128, c.E * sizeof(int), s>>>(
        reinterpret_cast<const uint4*>(b.x.p), xs, b.ids.p, n, c.E, nvec, nsvec, chunk, b.offsets.p,
        reinterpret_cast<uint4*>(b.out.p), outs, b.dst_row.p);
    CUSTOM_CHECK_LAUNCH();
  } else {
    int blocks = std::min(264, (n + 1023) / 1024);
    count_scan_kernel<<<blocks, 256, c.E * sizeof(int), s>>>(b.ids.p, n, c.E, c.counts.p, b.offsets.p,
                                                           c.cursor.p, c.done.p);
    CUSTOM_CHECK_LAUNCH();
    permute_copy_kernel<K><<<c.T, 128, 0, s>>>(reinterpret_cast<const uint4*>(b.x.p), xs, b.ids.p, nvec, nsvec,
                                               b.offsets.p, c.cursor.p, reinterpret_cast<uint4*>(b.out.p), outs,
                                               b.dst_row.p);
    CUSTOM_CHECK_LAUNCH();
  }
}

void launch_permute(PermuteCtx& c, PermuteBufs& b, cudaStream_t s) {
  if (c.K == 8) launch_permute_k<8>(c, b, s);
  else if (c.K == 4) launch_permute_k<4>(c, b, s);
  else throw std::runtime_error("permute: k must be 4 or 8");
}

void launch_unpermute(int T, int H, int K, const __nv_bfloat16* y, const int* dst_row, const float* w,
                      __nv_bfloat16* out, cudaStream_t s) {
  const int nvec = H / 8;
  int ysplit = std::max(1, std::min((264 + T - 1) / T, (nvec + 127) / 128));
  int chunk = (nvec + ysplit - 1) / ysplit;
  dim3 grid(T, ysplit);
  if (K == 8)
    unpermute_kernel<8><<<grid, 128, 0, s>>>(reinterpret_cast<const uint4*>(y), dst_row, w, nvec, chunk,
                                             reinterpret_cast<uint4*>(out));
  else if (K == 4)
    unpermute_kernel<4><<<grid, 128, 0, s>>>(reinterpret_cast<const uint4*>(y), dst_row, w, nvec, chunk,
                                             reinterpret_cast<uint4*>(out));
  else throw std::runtime_error("unpermute: k must be 4 or 8");
  CUSTOM_CHECK_LAUNCH();
}

// Random distinct top-k ids per token (uniform over experts).
std::vector<int> random_ids(int T, int K, int E) {
  std::mt19937_64 rng(next_seed());
  std::vector<int> ids((size_t)T * K), perm(E);
  std::iota(perm.begin(), perm.end(), 0);
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < K; ++j) {
      int r = j + (int)(rng() % (uint64_t)(E - j));
      std::swap(perm[j], perm[r]);
      ids[(size_t)t * K + j] = perm[j];
    }
  return ids;
}

void fill_inputs(PermuteCtx& c, PermuteBufs& b, cudaStream_t s) {
  if (c.fp8) {
    fill_fp8(reinterpret_cast<__nv_fp8_e4m3*>(b.x.p), b.x.n, -400.f, 400.f, s);
    fill_f32(b.xs.p, b.xs.n, 0.001f, 0.01f, s);
  } else {
    fill_bf16(reinterpret_cast<__nv_bfloat16*>(b.x.p), b.x.n / 2, -2.f, 2.f, s);
  }
  b.ids.from_host(random_ids(c.T, c.K, c.E));
}

// Exact check of permute; returns the number of wrong items (0 = pass).
long check_permute(PermuteCtx& c, cudaStream_t s) {
  PermuteBufs b;
  c.alloc(b);
  fill_inputs(c, b, s);
  b.out.poison(s);
  b.outs.poison(s);
  b.dst_row.poison(s);
  b.offsets.poison(s);
  launch_permute(c, b, s);
  // Twice, to prove the counters reset themselves between calls.
  b.out.poison(s);
  b.dst_row.poison(s);
  b.offsets.poison(s);
  launch_permute(c, b, s);
  MOESIM_CUDA_CHECK(cudaStreamSynchronize(s));
  auto hx = b.x.to_host(), ho = b.out.to_host();
  auto hxs = b.xs.to_host(), hos = b.outs.to_host();
  auto hid = b.ids.to_host(), hd = b.dst_row.to_host(), hoff = b.offsets.to_host();
  long bad = 0;
  std::vector<int> cnt(c.E + 1, 0);
  for (int v : hid) cnt[v + 1]++;
  for (int e = 0; e < c.E; ++e) cnt[e + 1] += cnt[e];
  for (int e = 0; e <= c.E; ++e) bad += (hoff[e] != cnt[e]);
  const size_t rb = c.row_bytes(), nsc = c.fp8 ? c.H / 128 : 0;
  std::vector<char> seen((size_t)c.T * c.K, 0);
  for (int t = 0; t < c.T; ++t)
    for (int j = 0; j < c.K; ++j) {
      int e = hid[(size_t)t * c.K + j], p = hd[(size_t)t * c.K + j];
      if (p < cnt[e] || p >= cnt[e + 1] || seen[p]) { ++bad; continue; }
      seen[p] = 1;
      if (std::memcmp(&ho[(size_t)p * rb], &hx[(size_t)t * rb], rb) != 0) ++bad;
      if (nsc && std::memcmp(&hos[(size_t)p * nsc], &hxs[(size_t)t * nsc], nsc * 4) != 0) ++bad;
    }
  return bad;
}

double check_unpermute(int T, int H, int K, cudaStream_t s) {
  DevBuf<__nv_bfloat16> y((size_t)T * K * H), out((size_t)T * H);
  DevBuf<int> dst((size_t)T * K);
  DevBuf<float> w((size_t)T * K);
  fill_bf16(y.p, y.n, -2.f, 2.f, s);
  fill_f32(w.p, w.n, 0.01f, 1.f, s);
  std::vector<int> perm((size_t)T * K);
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937_64 rng(next_seed());
  std::shuffle(perm.begin(), perm.end(), rng);
  dst.from_host(perm);
  out.poison(s);
  launch_unpermute(T, H, K, y.p, dst.p, w.p, out.p, s);
  MOESIM_CUDA_CHECK(cudaStreamSynchronize(s));
  auto hy = y.to_host(), ho = out.to_host();
  auto hw = w.to_host();
  std::vector<float> ref((size_t)T * H, 0.f), got((size_t)T * H);
  for (int t = 0; t < T; ++t)
    for (int j = 0; j < K; ++j) {
      const __nv_bfloat16* row = &hy[(size_t)perm[(size_t)t * K + j] * H];
      float wj = hw[(size_t)t * K + j];
      for (int i = 0; i < H; ++i) ref[(size_t)t * H + i] += wj * bf2f(row[i]);
    }
  for (size_t i = 0; i < got.size(); ++i) got[i] = bf2f(ho[i]);
  return rel_l2_error(got.data(), ref.data(), got.size());
}

}  // namespace
}  // namespace custom

void run_permute_suite(Harness& h) {
  using namespace custom;
  cudaStream_t s;
  MOESIM_CUDA_CHECK(cudaStreamCreate(&s));
  const int l2 = l2_bytes(h.device());
  struct Cfg { int H, K, E; };
  const Cfg cfgs[] = {{7168, 8, 256}, {7168, 4, 128}};
  std::vector<int> Ts;
  if (h.quick) Ts = {1, 128, 4096};
  else for (int t = 1; t <= 16384; t *= 2) Ts.push_back(t);
  int failures = 0;
  for (const Cfg& cf : cfgs) {
    for (int T : Ts) {
      std::string shape = strfmt(R"({"tokens":%d,"hidden":%d,"topk":%d,"experts":%d})", T, cf.H, cf.K, cf.E);
      // ---- permute, bf16 and fp8 payloads ----
      for (int fp8 = 0; fp8 <= 1; ++fp8) {
        if (h.quick && fp8 && T != 4096) continue;
        PermuteCtx c{T, cf.H, cf.K, cf.E, (bool)fp8};
        c.init(s);
        long bad = check_permute(c, s);
        double err = bad ? INFINITY : 0.0;
        if (bad) {
          ++failures;
          report_check_failure("permute", shape, err, strfmt("%ld wrong rows/offsets", bad).c_str());
        }
        const double row = (double)c.row_bytes() + (fp8 ? cf.H / 128 * 4.0 : 0.0);
        const double bytes = (double)T * row + (double)T * cf.K * row + (double)T * cf.K * 8 + (cf.E + 1) * 4.0;
        const int nsets = rotation_sets(bytes, l2, 16);
        std::vector<PermuteBufs> bufs(nsets);
        for (auto& b : bufs) { c.alloc(b); fill_inputs(c, b, s); }
        Timing t = h.time([&](int rep, cudaStream_t st) { launch_permute(c, bufs[rep % nsets], st); }, s);
        h.record("permute", fp8 ? "fp8" : "bf16", shape, t, err, 0.0, bytes,
                 strfmt(R"("launches":%d,"input_sets":%d,"ids":"uniform_random")", T * cf.K <= kSmallTK ? 1 : 2,
                        nsets));
        std::fprintf(stderr, "permute   %s H=%d k=%d E=%d T=%6d  %9.2f us  %7.1f GB/s  bad=%ld\n",
                     fp8 ? "fp8 " : "bf16", cf.H, cf.K, cf.E, T, t.median_us, bytes / t.median_us * 1e-3, bad);
      }
      // ---- unpermute (bf16) ----
      {
        double err = check_unpermute(T, cf.H, cf.K, s);
        if (!(err <= 1e-2)) {
          ++failures;
          report_check_failure("unpermute", shape, err, "rel L2 error vs FP32 CPU > 1e-2");
        }
        const double bytes = (double)T * cf.K * cf.H * 2 + (double)T * cf.H * 2 + (double)T * cf.K * 8;
        const int nsets = rotation_sets(bytes, l2, 16);
        std::vector<DevBuf<__nv_bfloat16>> ys(nsets), outs(nsets);
        std::vector<DevBuf<int>> ds(nsets);
        std::vector<DevBuf<float>> ws(nsets);
        for (int k = 0; k < nsets; ++k) {
          ys[k].alloc((size_t)T * cf.K * cf.H);
          outs[k].alloc((size_t)T * cf.H);
          ws[k].alloc((size_t)T * cf.K);
          fill_bf16(ys[k].p, ys[k].n, -2.f, 2.f, s);
          fill_f32(ws[k].p, ws[k].n, 0.01f, 1.f, s);
          std::vector<int> perm((size_t)T * cf.K);
          std::iota(perm.begin(), perm.end(), 0);
          std::mt19937_64 rng(next_seed());
          std::shuffle(perm.begin(), perm.end(), rng);
          ds[k].from_host(perm);
        }
        Timing t = h.time(
            [&](int rep, cudaStream_t st) {
              int k = rep % nsets;
              launch_unpermute(T, cf.H, cf.K, ys[k].p, ds[k].p, ws[k].p, outs[k].p, st);
            },
            s);
        h.record("unpermute", "bf16", shape, t, err, 2.0 * T * cf.K * cf.H, bytes,
                 strfmt(R"("input_sets":%d)", nsets));
        std::fprintf(stderr, "unpermute bf16 H=%d k=%d E=%d T=%6d  %9.2f us  %7.1f GB/s  err=%.2e\n", cf.H, cf.K,
                     cf.E, T, t.median_us, bytes / t.median_us * 1e-3, err);
      }
    }
  }
  MOESIM_CUDA_CHECK(cudaStreamDestroy(s));
  if (failures) std::fprintf(stderr, "!!!!! permute suite: %d failed checks !!!!!\n", failures);
}

}  // namespace moesim::validate
