// Kernel "ep_layer": one DeepSeek-R1 routed-MoE layer with expert parallelism.
//
// One process, N GPUs (ncclCommInitAll), one stream and one host thread per GPU
// (as one process per GPU would drive it). GPU g holds the routed experts
// [g*E/N, (g+1)*E/N) with FP8 e4m3 weights (per-tensor fp32 scale per expert and
// matrix) and T tokens of BF16 hidden states. Per layer, on every GPU:
//   router   : logits[T,256] fp32 = x[T,7168] bf16 . Wr[256,7168]^T (cublasGemmEx,
//              bf16 in, fp32 out) + our router kernel (custom/router.cu: sigmoid +
//              bias, group-limited 8 groups / top-4, top-8, weights renormalised x2.5)
//   permute  : per-128 fp8 quantisation of x (DeepEP's dispatch format: e4m3 row +
//              56 fp32 scales) + our permute kernel (custom/permute.cu) -> rows grouped
//              by global expert, hence by destination GPU; one row per (token,
//              expert) (no per-GPU deduplication, as DeepEP low-latency)
//   counts   : per-(destination, local expert) row counts exchanged by grouped
//              ncclSend/ncclRecv, copied to the host, stream synchronised (the host
//              needs the sizes for the all-to-all(v) and the per-expert GEMMs)
//   dispatch : all-to-all(v) of payload (7168 B) + scales (224 B) per row, grouped
//              ncclSend/ncclRecv (self included)
//   experts  : regroup received rows expert-major and requantise to the static
//              per-tensor activation scale, FP8 cuBLASLt gate_up per local expert
//              (n=4096, k=7168), SwiGLU + fp8 quantisation (static per-tensor scale),
//              FP8 cuBLASLt down (n=7168, k=2048), gather back to arrival order
//   combine  : all-to-all(v) of the BF16 expert outputs back to the token owners
//   unpermute: our unpermute kernel: out[T,7168] bf16 = sum of the 8 weighted rows
// No shared expert. The per-expert GEMMs are one cuBLASLt call per active local
// expert (cuBLAS 13.1 has no cuBLASLt grouped GEMM), launched by the host once the
// counts are known.
#include <nccl.h>

#include <array>
#include <atomic>
#include <functional>
#include <barrier>
#include <chrono>
#include <cub/block/block_scan.cuh>
#include <memory>
#include <mutex>
#include <thread>

#include "nccl_check.cuh"
#include "common.cuh"
#include "ep_layer.cuh"
#include "lt_gemm.cuh"
#include "suites.h"

// Our router and permute/unpermute kernels live in anonymous namespaces of
// custom/router.cu and custom/permute.cu. Compile them into this translation unit
// (their suite entry points renamed so they do not clash with the real ones).
#define run_router_suite moesim_ep_layer_unused_router_suite
#define run_permute_suite moesim_ep_layer_unused_permute_suite
#include "custom/permute.cu"
#include "custom/router.cu"
#undef run_router_suite
#undef run_permute_suite

namespace moesim::validate {
namespace ep {
namespace {


constexpr int H = 7168, E = 256, K = 8, I = 2048, NB = H / 128;
constexpr int ROW_FP8 = H, ROW_SC = NB * 4, ROW_DISPATCH = ROW_FP8 + ROW_SC, ROW_COMBINE = 2 * H;
constexpr float SX = 1.0f / 448.0f;   // static per-tensor activation scale of the gate_up input (|x| <= 1)
constexpr float SA = 24.0f / 448.0f;  // static per-tensor scale of the SwiGLU output (saturating)
constexpr float SKEW_BIAS = 0.1f;     // "skewed": router bias + this on experts 0..7
constexpr int N_HOT = 8;
const char* kPhases[] = {"router", "permute", "counts", "dispatch", "experts", "combine", "unpermute"};
constexpr int NPH = 7;

// ---------------------------------------------------------------- kernels
// x bf16 [T][H] -> q e4m3 [T][H] + sc fp32 [T][H/128]; one warp per 128-block.
__global__ void k_quant_x(const __nv_bfloat16* __restrict__ x, __nv_fp8_e4m3* __restrict__ q,
                          float* __restrict__ sc, int nblk) {
  const int w = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
  if (w >= nblk) return;
  uint2 raw = *reinterpret_cast<const uint2*>(x + (size_t)w * 128 + lane * 4);
  float2 a = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&raw.x));
  float2 b = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&raw.y));
  float m = fmaxf(fmaxf(fabsf(a.x), fabsf(a.y)), fmaxf(fabsf(b.x), fabsf(b.y)));
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
  const float s = m > 0.f ? m / 448.f : 1.f, inv = 1.f / s;
  reinterpret_cast<__nv_fp8x4_e4m3*>(q + (size_t)w * 128)[lane] =
      __nv_fp8x4_e4m3(make_float4(a.x * inv, a.y * inv, b.x * inv, b.y * inv));
  if (lane == 0) sc[w] = s;
}

__global__ void k_counts(const int* __restrict__ off, int* __restrict__ cnt) {
  const int e = threadIdx.x;
  if (e < E) cnt[e] = off[e + 1] - off[e];
}

// rcnt[s*EL+e] rows from source s for local expert e (N*EL == E chunks).
// src_off[c]: arrival offset of chunk c (source-major), src_off[E] = total;
// exp_off[c]: offset of chunk c in the expert-major layout (expert, then source).
__global__ void __launch_bounds__(E) k_layout(const int* __restrict__ rcnt, int N, int EL, int* __restrict__ src_off,
                                               int* __restrict__ exp_off) {
  using Scan = cub::BlockScan<int, E>;
  __shared__ typename Scan::TempStorage tmp;
  const int c = threadIdx.x;
  int v = rcnt[c], ex, tot;
  Scan(tmp).ExclusiveSum(v, ex, tot);
  src_off[c] = ex;
  if (c == 0) src_off[E] = tot;
  __syncthreads();
  const int e = c / N, s = c % N;  // thread c takes chunk (s, e) in expert-major order
  int v2 = rcnt[s * EL + e], ex2;
  Scan(tmp).ExclusiveSum(v2, ex2);
  exp_off[s * EL + e] = ex2;
}

// Received rows (arrival order) -> expert-major e4m3 rows at the static scale SX.
__global__ void __launch_bounds__(128) k_regroup(const uint4* __restrict__ rx, const float* __restrict__ rxs,
                                                 const int* __restrict__ src_off, const int* __restrict__ exp_off,
                                                 uint4* __restrict__ xg, int* __restrict__ emap) {
  __shared__ int dest;
  const int r = blockIdx.x;
  if (threadIdx.x == 0) {
    int lo = 0, hi = E;
    while (hi - lo > 1) {
      int mid = (lo + hi) >> 1;
      if (src_off[mid] <= r) lo = mid; else hi = mid;
    }
    dest = exp_off[lo] + (r - src_off[lo]);
    emap[r] = dest;
  }
  __syncthreads();
  const int d = dest;
  constexpr int NV = H / 16;
  for (int v = threadIdx.x; v < NV; v += 128) {
    uint4 a = __ldg(rx + (size_t)r * NV + v);
    const float s = __ldg(rxs + (size_t)r * NB + v / 8) * (1.0f / SX);
    const __nv_fp8x4_e4m3* in = reinterpret_cast<const __nv_fp8x4_e4m3*>(&a);
    uint4 o;
    __nv_fp8x4_e4m3* out = reinterpret_cast<__nv_fp8x4_e4m3*>(&o);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      float4 f = static_cast<float4>(in[q]);
      out[q] = __nv_fp8x4_e4m3(make_float4(f.x * s, f.y * s, f.z * s, f.w * s));
    }
    xg[(size_t)d * NV + v] = o;
  }
}

// h1 bf16 [R][2I] (gate | up) -> a e4m3 [R][I] = silu(gate) * up / SA.
__global__ void k_swiglu(const uint4* __restrict__ h1, uint2* __restrict__ a, size_t n8) {
  constexpr int RV = I / 8;  // 8-element vectors per output row
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n8; i += (size_t)gridDim.x * blockDim.x) {
    const size_t r = i / RV, c = i % RV;
    uint4 g = __ldg(h1 + r * 2 * RV + c), u = __ldg(h1 + r * 2 * RV + RV + c);
    const __nv_bfloat162* gb = reinterpret_cast<const __nv_bfloat162*>(&g);
    const __nv_bfloat162* ub = reinterpret_cast<const __nv_bfloat162*>(&u);
    float o[8];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      float2 gf = __bfloat1622float2(gb[q]), uf = __bfloat1622float2(ub[q]);
      o[2 * q] = gf.x / (1.f + __expf(-gf.x)) * uf.x * (1.0f / SA);
      o[2 * q + 1] = gf.y / (1.f + __expf(-gf.y)) * uf.y * (1.0f / SA);
    }
    uint2 w;
    *reinterpret_cast<__nv_fp8x4_e4m3*>(&w.x) = __nv_fp8x4_e4m3(make_float4(o[0], o[1], o[2], o[3]));
    *reinterpret_cast<__nv_fp8x4_e4m3*>(&w.y) = __nv_fp8x4_e4m3(make_float4(o[4], o[5], o[6], o[7]));
    a[i] = w;
  }
}

// yr[r] = y[emap[r]] (bf16 rows of H).
__global__ void __launch_bounds__(128) k_gather(const uint4* __restrict__ y, const int* __restrict__ emap,
                                                uint4* __restrict__ yr) {
  constexpr int NV = H * 2 / 16;
  const int r = blockIdx.x;
  const int src = __ldg(emap + r);
  for (int v = threadIdx.x; v < NV; v += 128) yr[(size_t)r * NV + v] = __ldg(y + (size_t)src * NV + v);
}

// ---------------------------------------------------------------- state
template <class T>
struct Dev {  // device buffer on the current device; freed by the owner thread
  T* p = nullptr;
  size_t n = 0;
  void alloc(size_t n_) {
    free();
    n = n_;
    if (n) MOESIM_CUDA_CHECK(cudaMalloc(&p, n * sizeof(T)));
  }
  void free() {
    if (p) cudaFree(p);
    p = nullptr;
    n = 0;
  }
  ~Dev() { free(); }
};

float w1_scale(int e) { return 0.0022f * (1.0f + 0.05f * (e % 5)); }
float w2_scale(int e) { return 0.0022f * (1.0f + 0.04f * (e % 7)); }

struct Rank {
  int g = 0, N = 1, EL = E, dev = 0;
  cudaStream_t s = nullptr;
  ncclComm_t comm = nullptr;
  cublasHandle_t cb = nullptr;
  std::unique_ptr<LtGemm> lt;
  Dev<__nv_fp8_e4m3> w1, w2;  // [EL][2I][H], [EL][H][I]
  Dev<__nv_bfloat16> wr;      // [E][H]
  Dev<float> bias;            // [E]
  Dev<float> scales;          // 16-float slots: 0 SX, 1 SA, 2+e w1, 2+EL+e w2
  cudaEvent_t ev[NPH + 1];
  // per point
  int T = 0;
  std::unique_ptr<custom::PermuteCtx> pc;
  std::unique_ptr<custom::PermuteBufs> pb;
  Dev<__nv_bfloat16> x, cr, out;
  Dev<float> logits, wts;
  Dev<int> cnt, rcnt, src_off, exp_off, emap;
  int *h_off = nullptr, *h_rcnt = nullptr;  // pinned
  size_t rcap = 0;
  Dev<__nv_fp8_e4m3> rx, xg, act;
  Dev<float> rxs;
  Dev<__nv_bfloat16> h1, y, yr;
  // host layout of the current layer
  std::vector<int> sc, so, rc, ro, m, eo;
  int R = 0;

  const float* slot(int i) const { return scales.p + 16 * i; }
};

void init_rank(Rank& r, int g, int N, int dev, uint64_t seed_world) {
  (void)seed_world;
  r.g = g; r.N = N; r.EL = E / N; r.dev = dev;
  MOESIM_CUDA_CHECK(cudaSetDevice(dev));
  MOESIM_CUDA_CHECK(cudaStreamCreateWithFlags(&r.s, cudaStreamNonBlocking));
  MOESIM_CUBLAS_CHECK(cublasCreate(&r.cb));
  MOESIM_CUBLAS_CHECK(cublasSetStream(r.cb, r.s));
  r.lt = std::make_unique<LtGemm>();
  for (auto& e : r.ev) MOESIM_CUDA_CHECK(cudaEventCreate(&e));
  const int EL = r.EL;
  r.w1.alloc((size_t)EL * 2 * I * H);
  r.w2.alloc((size_t)EL * H * I);
  for (int e = 0; e < EL; ++e) {  // weights are a function of the global expert index
    const int ge = g * EL + e;
    fill_fp8(r.w1.p + (size_t)e * 2 * I * H, (size_t)2 * I * H, mix64(0xE1000 + ge), 16.f, r.s);
    fill_fp8(r.w2.p + (size_t)e * H * I, (size_t)H * I, mix64(0xE2000 + ge), 16.f, r.s);
  }
  r.wr.alloc((size_t)E * H);
  fill_bf16(r.wr.p, r.wr.n, 0x5EED0, 0.035f, r.s);
  r.bias.alloc(E);
  std::vector<float> hs((size_t)(2 + 2 * EL) * 16, 0.f);
  hs[0] = SX;
  hs[16] = SA;
  for (int e = 0; e < EL; ++e) {
    hs[(size_t)(2 + e) * 16] = w1_scale(g * EL + e);
    hs[(size_t)(2 + EL + e) * 16] = w2_scale(g * EL + e);
  }
  r.scales.alloc(hs.size());
  MOESIM_CUDA_CHECK(cudaMemcpy(r.scales.p, hs.data(), hs.size() * 4, cudaMemcpyHostToDevice));
  MOESIM_CUDA_CHECK(cudaMallocHost(&r.h_off, (E + 1) * sizeof(int)));
  MOESIM_CUDA_CHECK(cudaMallocHost(&r.h_rcnt, E * sizeof(int)));
  r.cnt.alloc(E); r.rcnt.alloc(E); r.src_off.alloc(E + 1); r.exp_off.alloc(E);
  MOESIM_CUDA_CHECK(cudaStreamSynchronize(r.s));
}

// Per-point inputs: hidden states are a function of (rank, T); the router bias of the routing.
void setup_point(Rank& r, int T, bool skewed, uint64_t x_seed) {
  MOESIM_CUDA_CHECK(cudaSetDevice(r.dev));
  r.T = T;
  r.pc.reset(new custom::PermuteCtx{T, H, K, E, true});
  r.pc->init(r.s);
  r.pb = std::make_unique<custom::PermuteBufs>();
  r.pc->alloc(*r.pb);
  r.x.alloc((size_t)T * H);
  fill_bf16(r.x.p, r.x.n, x_seed, 1.0f, r.s);
  r.logits.alloc((size_t)T * E);
  r.wts.alloc((size_t)T * K);
  r.cr.alloc((size_t)T * K * H);
  r.out.alloc((size_t)T * H);
  std::vector<float> hb(E);
  HostRng rng(0xB1A5);
  for (int e = 0; e < E; ++e) hb[e] = 0.01f * (float)(2 * rng.uniform01() - 1) + (skewed && e < N_HOT ? SKEW_BIAS : 0.f);
  MOESIM_CUDA_CHECK(cudaMemcpyAsync(r.bias.p, hb.data(), E * 4, cudaMemcpyHostToDevice, r.s));
  MOESIM_CUDA_CHECK(cudaStreamSynchronize(r.s));
}

void free_point(Rank& r) {
  MOESIM_CUDA_CHECK(cudaSetDevice(r.dev));
  r.pb.reset(); r.pc.reset();
  r.x.free(); r.logits.free(); r.wts.free(); r.cr.free(); r.out.free();
  r.rx.free(); r.rxs.free(); r.xg.free(); r.act.free(); r.h1.free(); r.y.free(); r.yr.free(); r.emap.free();
  r.rcap = 0;
}

void ensure_recv(Rank& r, int R) {
  if ((size_t)R <= r.rcap) return;
  const size_t c = std::max<size_t>(R, 1);
  r.rx.alloc(c * H); r.rxs.alloc(c * NB); r.emap.alloc(c); r.xg.alloc(c * H);
  r.h1.alloc(c * 2 * I); r.act.alloc(c * I); r.y.alloc(c * H); r.yr.alloc(c * H);
  r.rcap = c;
}
size_t recv_bytes_per_row() { return (size_t)H + NB * 4 + 4 + H + 2 * I * 2 + I + 2 * H * 2; }

// Phases router .. counts (ends with the host holding the counts).
void layer_front(Rank& r, bool ev) {
  const int T = r.T, N = r.N, EL = r.EL;
  cudaStream_t s = r.s;
  if (ev) MOESIM_CUDA_CHECK(cudaEventRecord(r.ev[0], s));
  const float one = 1.f, zero = 0.f;
  MOESIM_CUBLAS_CHECK(cublasGemmEx(r.cb, CUBLAS_OP_T, CUBLAS_OP_N, E, T, H, &one, r.wr.p, CUDA_R_16BF, H, r.x.p,
                                   CUDA_R_16BF, H, &zero, r.logits.p, CUDA_R_32F, E, CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT));
  custom::launch_router(custom::kVariants[0], r.logits.p, r.bias.p, T, r.pb->ids.p, r.wts.p, s);
  if (ev) MOESIM_CUDA_CHECK(cudaEventRecord(r.ev[1], s));
  const int nblk = T * NB;
  k_quant_x<<<(nblk + 7) / 8, 256, 0, s>>>(r.x.p, reinterpret_cast<__nv_fp8_e4m3*>(r.pb->x.p), r.pb->xs.p, nblk);
  MOESIM_CUDA_CHECK(cudaGetLastError());
  custom::launch_permute(*r.pc, *r.pb, s);
  if (ev) MOESIM_CUDA_CHECK(cudaEventRecord(r.ev[2], s));
  k_counts<<<1, E, 0, s>>>(r.pb->offsets.p, r.cnt.p);
  MOESIM_CUDA_CHECK(cudaGetLastError());
  MOESIM_NCCL_CHECK(ncclGroupStart());
  for (int j = 0; j < N; ++j) {
    MOESIM_NCCL_CHECK(ncclSend(r.cnt.p + j * EL, EL, ncclInt32, j, r.comm, s));
    MOESIM_NCCL_CHECK(ncclRecv(r.rcnt.p + j * EL, EL, ncclInt32, j, r.comm, s));
  }
  MOESIM_NCCL_CHECK(ncclGroupEnd());
  k_layout<<<1, E, 0, s>>>(r.rcnt.p, N, EL, r.src_off.p, r.exp_off.p);
  MOESIM_CUDA_CHECK(cudaGetLastError());
  MOESIM_CUDA_CHECK(cudaMemcpyAsync(r.h_off, r.pb->offsets.p, (E + 1) * sizeof(int), cudaMemcpyDeviceToHost, s));
  MOESIM_CUDA_CHECK(cudaMemcpyAsync(r.h_rcnt, r.rcnt.p, E * sizeof(int), cudaMemcpyDeviceToHost, s));
  MOESIM_CUDA_CHECK(cudaStreamSynchronize(s));
  // Host layout.
  r.sc.assign(N, 0); r.so.assign(N, 0); r.rc.assign(N, 0); r.ro.assign(N, 0); r.m.assign(EL, 0); r.eo.assign(EL + 1, 0);
  int acc = 0;
  for (int j = 0; j < N; ++j) {
    r.so[j] = r.h_off[j * EL];
    r.sc[j] = r.h_off[(j + 1) * EL] - r.so[j];
    int c = 0;
    for (int e = 0; e < EL; ++e) { c += r.h_rcnt[j * EL + e]; r.m[e] += r.h_rcnt[j * EL + e]; }
    r.rc[j] = c; r.ro[j] = acc; acc += c;
  }
  r.R = acc;
  for (int e = 0; e < EL; ++e) r.eo[e + 1] = r.eo[e] + r.m[e];
  if (r.h_off[E] != T * K) throw std::runtime_error(strf("rank %d: permute offsets total %d != T*K %d", r.g, r.h_off[E], T * K));
  if (ev) MOESIM_CUDA_CHECK(cudaEventRecord(r.ev[3], s));
}

// Phases dispatch .. unpermute.
void layer_back(Rank& r, bool ev) {
  const int N = r.N, EL = r.EL, R = r.R;
  cudaStream_t s = r.s;
  if ((size_t)R > r.rcap) throw std::runtime_error("receive buffers too small");
  uint8_t* sx = r.pb->out.p;
  float* sxs = r.pb->outs.p;
  MOESIM_NCCL_CHECK(ncclGroupStart());
  for (int j = 0; j < N; ++j) {
    if (r.sc[j]) {
      MOESIM_NCCL_CHECK(ncclSend(sx + (size_t)r.so[j] * H, (size_t)r.sc[j] * H, ncclUint8, j, r.comm, s));
      MOESIM_NCCL_CHECK(ncclSend(sxs + (size_t)r.so[j] * NB, (size_t)r.sc[j] * NB, ncclFloat32, j, r.comm, s));
    }
    if (r.rc[j]) {
      MOESIM_NCCL_CHECK(ncclRecv(r.rx.p + (size_t)r.ro[j] * H, (size_t)r.rc[j] * H, ncclUint8, j, r.comm, s));
      MOESIM_NCCL_CHECK(ncclRecv(r.rxs.p + (size_t)r.ro[j] * NB, (size_t)r.rc[j] * NB, ncclFloat32, j, r.comm, s));
    }
  }
  MOESIM_NCCL_CHECK(ncclGroupEnd());
  if (ev) MOESIM_CUDA_CHECK(cudaEventRecord(r.ev[4], s));
  if (R > 0) {
    k_regroup<<<R, 128, 0, s>>>(reinterpret_cast<const uint4*>(r.rx.p), r.rxs.p, r.src_off.p, r.exp_off.p,
                                reinterpret_cast<uint4*>(r.xg.p), r.emap.p);
    MOESIM_CUDA_CHECK(cudaGetLastError());
    for (int e = 0; e < EL; ++e) {
      if (!r.m[e]) continue;
      LtPlan* p = r.lt->plan(Prec::FP8, r.m[e], 2 * I, H);
      if (!p) throw std::runtime_error(strf("cuBLASLt: no fp8 algorithm for m=%d n=%d k=%d", r.m[e], 2 * I, H));
      MOESIM_CUBLAS_CHECK(r.lt->run(p, r.w1.p + (size_t)e * 2 * I * H, r.xg.p + (size_t)r.eo[e] * H,
                                    r.h1.p + (size_t)r.eo[e] * 2 * I, r.slot(2 + e), r.slot(0), s));
    }
    const size_t n8 = (size_t)R * I / 8;
    k_swiglu<<<(int)std::min<size_t>((n8 + 255) / 256, 132 * 8), 256, 0, s>>>(
        reinterpret_cast<const uint4*>(r.h1.p), reinterpret_cast<uint2*>(r.act.p), n8);
    MOESIM_CUDA_CHECK(cudaGetLastError());
    for (int e = 0; e < EL; ++e) {
      if (!r.m[e]) continue;
      LtPlan* p = r.lt->plan(Prec::FP8, r.m[e], H, I);
      if (!p) throw std::runtime_error(strf("cuBLASLt: no fp8 algorithm for m=%d n=%d k=%d", r.m[e], H, I));
      MOESIM_CUBLAS_CHECK(r.lt->run(p, r.w2.p + (size_t)e * H * I, r.act.p + (size_t)r.eo[e] * I,
                                    r.y.p + (size_t)r.eo[e] * H, r.slot(2 + EL + e), r.slot(1), s));
    }
    k_gather<<<R, 128, 0, s>>>(reinterpret_cast<const uint4*>(r.y.p), r.emap.p, reinterpret_cast<uint4*>(r.yr.p));
    MOESIM_CUDA_CHECK(cudaGetLastError());
  }
  if (ev) MOESIM_CUDA_CHECK(cudaEventRecord(r.ev[5], s));
  MOESIM_NCCL_CHECK(ncclGroupStart());
  for (int j = 0; j < N; ++j) {
    if (r.rc[j])
      MOESIM_NCCL_CHECK(ncclSend(r.yr.p + (size_t)r.ro[j] * H, (size_t)r.rc[j] * H, ncclBfloat16, j, r.comm, s));
    if (r.sc[j])
      MOESIM_NCCL_CHECK(ncclRecv(r.cr.p + (size_t)r.so[j] * H, (size_t)r.sc[j] * H, ncclBfloat16, j, r.comm, s));
  }
  MOESIM_NCCL_CHECK(ncclGroupEnd());
  if (ev) MOESIM_CUDA_CHECK(cudaEventRecord(r.ev[6], s));
  custom::launch_unpermute(r.T, H, K, r.cr.p, r.pb->dst_row.p, r.wts.p, r.out.p, s);
  if (ev) MOESIM_CUDA_CHECK(cudaEventRecord(r.ev[7], s));
}

struct World {
  int N = 0;
  std::vector<ncclComm_t> comms;
  std::vector<std::unique_ptr<Rank>> ranks;
  explicit World(int n) : N(n) {
    std::vector<int> devs(n);
    for (int i = 0; i < n; ++i) devs[i] = i;
    comms.resize(n);
    MOESIM_NCCL_CHECK(ncclCommInitAll(comms.data(), n, devs.data()));
    for (int i = 0; i < n; ++i) {
      ranks.push_back(std::make_unique<Rank>());
      init_rank(*ranks[i], i, n, i, 0);
      ranks[i]->comm = comms[i];
    }
  }
  ~World() {
    for (auto& r : ranks) {
      cudaSetDevice(r->dev);
      cudaStreamSynchronize(r->s);
      free_point(*r);
      cudaFreeHost(r->h_off);
      cudaFreeHost(r->h_rcnt);
      for (auto& e : r->ev) cudaEventDestroy(e);
      r->lt.reset();
      cublasDestroy(r->cb);
      r->w1.free(); r->w2.free(); r->wr.free(); r->bias.free(); r->scales.free();
      r->cnt.free(); r->rcnt.free(); r->src_off.free(); r->exp_off.free();
      cudaStreamDestroy(r->s);
    }
    for (auto& c : comms) ncclCommDestroy(c);
  }
};

// Runs fn(rank) on one host thread per GPU; an exception in any thread ends the
// process (the other ranks would wait in NCCL forever).
void on_all(World& w, const std::function<void(Rank&)>& fn) {
  std::vector<std::thread> th;
  for (auto& rp : w.ranks) {
    Rank* r = rp.get();
    th.emplace_back([r, &fn]() {
      try {
        MOESIM_CUDA_CHECK(cudaSetDevice(r->dev));
        fn(*r);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "[ep_layer] FATAL on GPU %d: %s\n", r->g, e.what());
        std::fflush(nullptr);
        std::_Exit(4);
      }
    });
  }
  for (auto& t : th) t.join();
}

uint64_t x_seed(int g, int T) { return mix64(0xA0000 + 1000003ull * g + T); }

double quant(std::vector<double> v, double f) {
  std::sort(v.begin(), v.end());
  double pos = f * (v.size() - 1);
  size_t lo = (size_t)pos, hi = std::min(v.size() - 1, lo + 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

std::string shape_json(int N, int T, bool skewed) {
  return strf(R"({"gpus":%d,"tokens_per_gpu":%d,"hidden":%d,"experts":%d,"topk":%d,"expert_ffn":%d,"routing":"%s","shared_expert":false})",
              N, T, H, E, K, I, skewed ? "skewed" : "uniform");
}

// One untimed layer on every rank (routing, buffer sizing, plan creation); returns
// GPU 0's output when want_out.
std::vector<float> run_once(World& w, int T, bool skewed, bool want_out) {
  std::vector<float> out;
  on_all(w, [&](Rank& r) {
    setup_point(r, T, skewed, x_seed(r.g, T));
    layer_front(r, false);
    ensure_recv(r, r.R);
    layer_back(r, false);
    MOESIM_CUDA_CHECK(cudaStreamSynchronize(r.s));
    if (want_out && r.g == 0) {
      std::vector<__nv_bfloat16> h((size_t)T * H);
      MOESIM_CUDA_CHECK(cudaMemcpy(h.data(), r.out.p, h.size() * 2, cudaMemcpyDeviceToHost));
      out.resize(h.size());
      for (size_t i = 0; i < h.size(); ++i) out[i] = __bfloat162float(h[i]);
    }
  });
  return out;
}

}  // namespace
}  // namespace ep

void run_ep_layer_suite(std::FILE* outf, int N, bool quick) {
  using namespace ep;
  setenv("NCCL_NVLS_ENABLE", "0", 1);  // never NVLink multicast (shared hosts)
  int ndev = 0;
  MOESIM_CUDA_CHECK(cudaGetDeviceCount(&ndev));
  if (N < 1 || N > ndev || E % N) throw std::runtime_error(strf("--ep-layer %d: need 1..%d GPUs dividing 256", N, ndev));
  Harness h(outf, 0);

  // ---- check: GPU 0's tokens through the N-GPU layer vs a 1-GPU layer with all 256 experts
  const int TC = 64;
  bool check_ok = true;
  double check_err[2] = {0, 0};
  {
    std::vector<float> ref[2];
    {
      World w1(1);
      for (int sk = 0; sk < 2; ++sk) ref[sk] = run_once(w1, TC, sk, true);
      for (auto& r : w1.ranks) free_point(*r);
    }
    if (N > 1) {
      World wn(N);
      for (int sk = 0; sk < 2; ++sk) {
        std::vector<float> got = run_once(wn, TC, sk, true);
        check_err[sk] = rel_l2_error(got.data(), ref[sk].data(), got.size());
        double rms = 0;
        for (float v : ref[sk]) rms += (double)v * v;
        rms = std::sqrt(rms / ref[sk].size());
        std::fprintf(stderr, "[ep_layer] check N=%d T=%d %s: rel L2 err %.3e (reference rms %.3g)\n", N, TC,
                     sk ? "skewed" : "uniform", check_err[sk], rms);
        check_ok &= h.check("ep_layer", "fp8", shape_json(N, TC, sk), check_err[sk], 2e-2,
                            "GPU 0 output vs 1-GPU run of the same kernels with all 256 experts");
        if (!(rms > 1e-3)) {
          check_ok = false;
          h.check("ep_layer", "fp8", shape_json(N, TC, sk), INFINITY, 2e-2, "reference output is ~zero");
        }
      }
    }
  }
  if (!check_ok) {
    std::fprintf(stderr, "[ep_layer] check failed; not timing\n");
    return;
  }

  // ---- timing
  std::vector<int> Ts = quick ? std::vector<int>{1, 128, 2048}
                              : std::vector<int>{1, 4, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
  World w(N);
  std::fprintf(stderr, "[ep_layer] %d GPUs, %d experts per GPU, fp8 weights (%.1f GB per GPU)\n", N, E / N,
               (double)(E / N) * 3 * H * I / 1e9);
  for (int sk = 0; sk < 2; ++sk) {
    for (int T : Ts) {
      const std::string shape = shape_json(N, T, sk);
      // Fit: the largest receive (every row to one GPU) must fit next to the send side.
      std::atomic<bool> fits{true};
      on_all(w, [&](Rank& r) {
        size_t fr = 0, tot = 0;
        MOESIM_CUDA_CHECK(cudaMemGetInfo(&fr, &tot));
        size_t need = (size_t)T * (H * 2 * 2 + E * 4 + K * (ROW_DISPATCH + 2 * H + 16)) +
                      (size_t)N * T * K * recv_bytes_per_row() + (1ull << 30);
        if (need > fr) fits = false;
      });
      if (!fits) {
        std::fprintf(stderr, "[ep_layer] SKIP %s: does not fit\n", shape.c_str());
        continue;
      }
      run_once(w, T, sk, false);  // routing, buffers, cuBLASLt plans and algorithm choice
      // Routing statistics (fixed inputs: identical on every repetition).
      std::vector<std::vector<long>> rows(N, std::vector<long>(N, 0));  // rows[i][j]: rows i -> j
      for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) rows[i][j] = w.ranks[i]->sc[j];
      std::vector<long> recv(N, 0);
      long total = 0;
      bool consistent = true;
      for (int j = 0; j < N; ++j) {
        for (int i = 0; i < N; ++i) recv[j] += rows[i][j];
        consistent &= recv[j] == w.ranks[j]->R;
        total += recv[j];
      }
      if (!consistent || total != (long)N * T * K) {
        h.check("ep_layer", "fp8", shape, INFINITY, 0, "send/receive row counts inconsistent");
        continue;
      }
      double dmax = 0, mx = 0, mean = (double)total / N;
      double max_disp = 0, max_comb = 0;
      for (int g = 0; g < N; ++g) {
        double s_off = 0, r_off = 0;
        for (int j = 0; j < N; ++j)
          if (j != g) { s_off += rows[g][j]; r_off += rows[j][g]; }
        double disp = std::max(s_off, r_off) * ROW_DISPATCH, comb = std::max(s_off, r_off) * ROW_COMBINE;
        dmax = std::max(dmax, disp + comb);
        max_disp = std::max(max_disp, disp);
        max_comb = std::max(max_comb, comb);
        mx = std::max(mx, (double)recv[g]);
      }
      // Warm-up, then timed repetitions: host barrier (all streams idle), start events,
      // one layer, end events, sync.
      const int warm = 2, min_reps = quick ? 5 : 10, max_reps = quick ? 10 : 40;
      const double target_us = quick ? 1e5 : 2.5e5;
      std::vector<std::vector<std::array<float, NPH + 1>>> ev_times(N);  // per rank, per rep: cumulative ms
      std::barrier<> bar(N);
      std::vector<double> layer_us;
      std::mutex mu;
      std::vector<double> per_rank_us(N);
      std::atomic<bool> stop{false};
      on_all(w, [&](Rank& r) {
        for (int it = 0; it < warm; ++it) {
          bar.arrive_and_wait();
          layer_front(r, false);
          layer_back(r, false);
          MOESIM_CUDA_CHECK(cudaStreamSynchronize(r.s));
        }
        for (int rep = 0; rep < max_reps; ++rep) {
          bar.arrive_and_wait();
          layer_front(r, true);
          layer_back(r, true);
          MOESIM_CUDA_CHECK(cudaStreamSynchronize(r.s));
          std::array<float, NPH + 1> t{};
          for (int p = 1; p <= NPH; ++p) MOESIM_CUDA_CHECK(cudaEventElapsedTime(&t[p], r.ev[0], r.ev[p]));
          {
            std::lock_guard<std::mutex> lk(mu);
            ev_times[r.g].push_back(t);
          }
          bar.arrive_and_wait();
          if (r.g == 0) {
            double mxus = 0;
            for (int g = 0; g < N; ++g) mxus = std::max(mxus, 1e3 * (double)ev_times[g].back()[NPH]);
            layer_us.push_back(mxus);
            double sum = 0;
            for (double v : layer_us) sum += v;
            if ((int)layer_us.size() >= min_reps && sum >= target_us) stop = true;
          }
          bar.arrive_and_wait();
          if (stop) break;
        }
      });
      // Output finite check (GPU 0, first min(T,64) rows).
      bool finite = true;
      {
        Rank& r0 = *w.ranks[0];
        MOESIM_CUDA_CHECK(cudaSetDevice(r0.dev));
        std::vector<__nv_bfloat16> hbuf((size_t)std::min(T, 64) * H);
        MOESIM_CUDA_CHECK(cudaMemcpy(hbuf.data(), r0.out.p, hbuf.size() * 2, cudaMemcpyDeviceToHost));
        for (auto v : hbuf) finite &= std::isfinite(__bfloat162float(v));
      }
      if (!finite) {
        h.check("ep_layer", "fp8", shape, INFINITY, 0, "non-finite output on GPU 0 after timing");
        continue;
      }
      Timing tm;
      tm.median_us = quant(layer_us, 0.5);
      tm.p10_us = quant(layer_us, 0.1);
      tm.p90_us = quant(layer_us, 0.9);
      tm.reps = (int)layer_us.size();
      std::string ph = "{";
      for (int p = 0; p < NPH; ++p) {
        std::vector<double> d;
        for (auto& t : ev_times[0]) d.push_back(1e3 * (t[p + 1] - t[p]));
        ph += strf("%s\"%s\":%.2f", p ? "," : "", kPhases[p], quant(d, 0.5));
      }
      ph += "}";
      std::string prk = "[", rr = "[";
      for (int g = 0; g < N; ++g) {
        std::vector<double> d;
        for (auto& t : ev_times[g]) d.push_back(1e3 * t[NPH]);
        prk += strf("%s%.2f", g ? "," : "", quant(d, 0.5));
        rr += strf("%s%ld", g ? "," : "", recv[g]);
      }
      prk += "]";
      rr += "]";
      const double flops = 6.0 * H * I * (double)N * T * K + 2.0 * H * E * (double)N * T;
      const double check_e = check_err[sk];
      h.record("ep_layer", "fp8", shape, tm, check_e, flops, dmax,
               strf("\"impl\":\"nccl_send_recv+cublasLt_fp8_per_expert\",\"timing\":\"cuda_events_max_over_gpus\","
                    "\"host_sync\":\"between repetitions, and once inside the layer (counts to host)\","
                    "\"phases_gpu0_us\":%s,\"per_gpu_median_us\":%s,\"recv_rows_per_gpu\":%s,"
                    "\"recv_max_over_mean\":%.4f,\"dispatch_offgpu_bytes_max\":%.0f,\"combine_offgpu_bytes_max\":%.0f,"
                    "\"dispatch_row_bytes\":%d,\"combine_row_bytes\":%d,\"dedup\":\"per_token_expert\","
                    "\"weights\":\"fp8_e4m3_per_tensor\",\"act_scales\":\"dispatch per-128 dynamic; GEMM inputs static per-tensor\","
                    "\"skew_bias\":%g,\"hot_experts\":%d,\"check_tokens_per_gpu\":%d,\"nvls\":false",
                    ph.c_str(), prk.c_str(), rr.c_str(), mx / mean, max_disp, max_comb, ROW_DISPATCH, ROW_COMBINE,
                    sk ? SKEW_BIAS : 0.0f, sk ? N_HOT : 0, TC));
      std::fflush(outf);
      std::fprintf(stderr, "[ep_layer] N=%d %-7s T=%6d  %10.2f us (p10 %.2f p90 %.2f, %d reps)  recv max/mean %.3f  gpu0 %s\n",
                   N, sk ? "skewed" : "uniform", T, tm.median_us, tm.p10_us, tm.p90_us, tm.reps, mx / mean, ph.c_str());
      on_all(w, [&](Rank& r) { free_point(r); });
    }
  }
}

}  // namespace moesim::validate
