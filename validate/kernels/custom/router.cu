// Kernel "router": top-k expert selection from FP32 router logits [T, E].
//
// Variants:
//   sigmoid (DeepSeek-V3/R1 "noaux_tc", Kimi K2): s = sigmoid(x); selection on
//     s + bias; optional group limit (group score = sum of the top-2 biased
//     scores of the group, keep topk_groups groups); weights = s of the chosen
//     experts renormalised to sum 1, times route_scale.
//   softmax (Mistral Large 3 / Qwen3 as specified): selection on the logits;
//     weights = softmax over the chosen k (= softmax over E, renormalised).
// Ties break towards the lower expert index (the CPU reference does the same).
// Outputs: ids int32 [T, k], weights fp32 [T, k]; the order inside a token's k is
// not part of the contract (DeepSeek's own gate uses topk(sorted=False)).
// Algorithms: v5 (LPT = 8 or 4 lanes per token) for all four variants, except kimi_k2
// below T = 8192 tokens, which runs v4 (one warp per token, below; faster there).
#include <algorithm>
#include <climits>
#include <numeric>
#include <type_traits>

#include "../suites.h"
#include "common.cuh"

namespace moesim::validate {
namespace custom {
namespace {

struct RouterVariant {
  const char* model;
  int E, K, groups, topk_groups;
  bool sigmoid;
  float route_scale;
};

constexpr RouterVariant kVariants[] = {
    {"deepseek_r1", 256, 8, 8, 4, true, 2.5f},
    {"kimi_k2", 384, 8, 1, 1, true, 2.827f},
    {"mistral_large3", 128, 4, 1, 1, false, 1.0f},
    {"qwen3", 128, 8, 1, 1, false, 1.0f},
};

// ---------------------------------------------------------------------------
// v5 (sessions 4-5): LPT lanes per token (8; 4 for E=128), TPW = 32/LPT tokens (a
// "quad") per warp iteration, persistent grid.
//   Load: lane 0 of each warp copies whole quads (TPW consecutive tokens, contiguous in
//     memory) into shared memory with cp.async.bulk (STAGES-deep ring, one mbarrier per
//     stage). Lane l8 of a token holds the V = E/LPT contiguous experts l8*V .. l8*V+V-1,
//     read with 16-byte shared loads in a lane-permuted chunk order so that the 8 lanes
//     of one load phase hit 8 different bank groups (DeepSeek: lane = group of 32):
//     chunk i ^ rho where the lane has a multiple of 8 chunks (one XOR per address),
//     else (i + rho) mod C. The copies carry an L2 evict-first hint (read once).
//   1. selection values sel in registers (sigmoid by ex2.approx + rcp.approx, + bias
//      from shared memory; or the logit);
//   2. each lane takes the sorted top-K of its V values (sorting networks on floats over
//      chunks of K, bitonic top-K merges);
//   3. DeepSeek: group score = top[0] + top[1] (the reference's float sum); rank =
//      number of groups with a higher score or an equal score and a lower index (7
//      segment shuffles); the TG groups of rank < TG stay, the others offer -inf;
//   4. the token's top-K by a butterfly of bitonic top-K merges over its LPT lanes (the
//      last level only as a set): tau = the K-th largest allowed value (exact on
//      multisets: min/max networks keep equal values);
//   5. each lane marks its slots with sel >= tau in a bit mask (the sign bits of sel - tau
//      shifted in, 2 instructions a value; set.ge for Kimi); if the token's marks
//      total exactly K the lanes write the ids at their segment-scan offsets. Otherwise
//      (equal floats at the boundary) the tie path keeps {sel > tau} plus the
//      lowest-index slots with sel == tau, as many as are missing: one more compare per
//      value (recomputed from shared memory) and one more segment scan. Session 4 ran K
//      serial arg-max rounds there instead; one such quad (a few per 10^5 tokens of
//      random logits) kept its warp busy for 10-40 us and the whole persistent launch
//      with it: the "bimodal" launches of session 4 (dev/logs/session5_router.md).
//   6. output: lane j < min(K, LPT) of a token reads its chosen ids j, j+LPT, ...,
//      recomputes the weights from the logits still in shared memory, sums over the
//      token's lanes and writes.
// ---------------------------------------------------------------------------
constexpr int kR5Warps = 8;  // warps per block
// Dev knobs (compile-time; defaults are the measured choices).
#ifndef ROUTER5_STAGES_DS
#define ROUTER5_STAGES_DS 2
#endif
#ifndef ROUTER5_MINB_DS
#define ROUTER5_MINB_DS 3  // blocks per SM the register budget is sized for
#endif
#ifndef ROUTER5_LPT_E128
#define ROUTER5_LPT_E128 4  // lanes per token for E=128 (8: 4 tokens per warp, 4: 8, 2: 16)
#endif
#ifndef ROUTER5_LPT_K4
#define ROUTER5_LPT_K4 ROUTER5_LPT_E128  // mistral_large3
#endif
#ifndef ROUTER5_LPT_K8
#define ROUTER5_LPT_K8 ROUTER5_LPT_E128  // qwen3
#endif
#define ROUTER5_MINB_E128(lpt) ((lpt) == 8 ? 5 : 3)
#ifndef ROUTER5_STCS
#define ROUTER5_STCS 0  // 1: streaming (evict-first) stores of ids and weights
#endif
#ifndef ROUTER5_KIMI
#define ROUTER5_KIMI 8192  // kimi_k2 on v5 from this T on, on v4 below (0: v4 always)
#endif
#ifndef ROUTER5_EVF
#define ROUTER5_EVF 1  // 1: the bulk copies carry an L2 evict-first hint (read once)
#endif
#ifndef ROUTER5_XSW
#define ROUTER5_XSW 1  // 1: XOR chunk swizzle where C % 8 == 0 (else the rotation)
#endif
#ifndef ROUTER5_SGNMASK
#define ROUTER5_SGNMASK 1  // 1: selection mask from the signs of sel - tau (2 instructions a value)
#endif
#ifndef ROUTER5_LEANIDS
#define ROUTER5_LEANIDS 1  // 1: id expansion without the per-id bounds branch
#endif
#ifndef ROUTER5_DIAG
#define ROUTER5_DIAG 0  // dev: count tie-path quads and time each input set alone
#endif
#ifndef ROUTER5_STAGES_E128
#define ROUTER5_STAGES_E128 2
#endif

__device__ __forceinline__ void cef(float& a, float& b) {  // descending compare-exchange
  const float h = fmaxf(a, b), l = fminf(a, b);
  a = h;
  b = l;
}
// Sorting networks (descending), verified exhaustively with the 0-1 principle:
// 4 inputs 5 exchanges, 8 inputs 19 (Batcher).
__device__ __forceinline__ void sort_desc(float (&v)[4]) {
  cef(v[0], v[1]);
  cef(v[2], v[3]);
  cef(v[0], v[2]);
  cef(v[1], v[3]);
  cef(v[1], v[2]);
}
__device__ __forceinline__ void sort_desc(float (&v)[8]) {
  cef(v[0], v[1]);
  cef(v[2], v[3]);
  cef(v[4], v[5]);
  cef(v[6], v[7]);
  cef(v[0], v[2]);
  cef(v[1], v[3]);
  cef(v[4], v[6]);
  cef(v[5], v[7]);
  cef(v[1], v[2]);
  cef(v[5], v[6]);
  cef(v[0], v[4]);
  cef(v[1], v[5]);
  cef(v[2], v[6]);
  cef(v[3], v[7]);
  cef(v[2], v[4]);
  cef(v[3], v[5]);
  cef(v[1], v[2]);
  cef(v[3], v[4]);
  cef(v[5], v[6]);
}
// acc (sorted desc) := sorted top-N of acc and c (sorted desc): max(acc[i], c[N-1-i])
// is bitonic and holds the top N; the half-cleaners sort it.
template <int N>
__device__ __forceinline__ void merge_top(float (&acc)[N], const float (&c)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) acc[i] = fmaxf(acc[i], c[N - 1 - i]);
#pragma unroll
  for (int d = N / 2; d > 0; d >>= 1)
#pragma unroll
    for (int i = 0; i < N; ++i)
      if ((i & d) == 0) cef(acc[i], acc[i + d]);
}
template <int V, int K>
__device__ __forceinline__ void topk_sorted(const float (&x)[V], float (&top)[K]) {
  static_assert(V % K == 0, "V must be a multiple of K");
#pragma unroll
  for (int a = 0; a < V / K; ++a) {
    float ch[K];
#pragma unroll
    for (int i = 0; i < K; ++i) ch[i] = x[a * K + i];
    sort_desc(ch);
    if (a == 0) {
#pragma unroll
      for (int i = 0; i < K; ++i) top[i] = ch[i];
    } else {
      merge_top<K>(top, ch);
    }
  }
}

// Chunk rotation: at step i lane l8 reads its chunk (i + rot(l8)) mod C. Chunk c of
// lane l8 lies in bank group (l8*C + c) mod 8 (E/4 is a multiple of 8), so the 8 lanes
// of a token (one phase of a 16-byte shared load) must hit 8 different groups.
template <int C>
__host__ __device__ constexpr int rot5(int l8) {
  if constexpr (C == 8) return l8;
  else if constexpr (C == 4) return l8 >> 1;
  else if constexpr (C == 12) return (int)((0x177001AAu >> (4 * l8)) & 15u);  // found by search
  else return 0;
}
template <int C>
constexpr bool rot5_conflict_free() {
  for (int i = 0; i < C; ++i) {
    unsigned seen = 0;
    for (int l = 0; l < 8; ++l) {
      const int c = (i + rot5<C>(l)) % C;
      seen |= 1u << ((l * C + c) % 8);
    }
    if (seen != 0xffu) return false;
  }
  return true;
}
static_assert(rot5_conflict_free<4>() && rot5_conflict_free<8>() && rot5_conflict_free<12>(), "rotation");

// sigmoid(x) = 1 / (1 + 2^(-x log2 e)); ex2.approx and rcp.approx (a few ulp: the
// checks compare weights to 1e-5 and id sets exactly, near-ties counted apart).
__device__ __forceinline__ float fast_sigmoid(float x) {
  float e, r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(-x * 1.4426950408889634f));
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(1.0f + e));
  return r;
}

__device__ __forceinline__ void fence_proxy_async_shared() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}
// One bulk copy global -> shared completing on the mbarrier (called by one lane).
__device__ __forceinline__ void bulk_load(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
#if ROUTER5_EVF
  uint64_t pol;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;" ::"r"(
          dst),
      "l"(src), "r"(bytes), "r"(bar), "l"(pol)
      : "memory");
#else
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst),
               "l"(src), "r"(bytes), "r"(bar)
               : "memory");
#endif
}

template <int E, int K, bool SIGMOID, int STAGES, int LPT>
struct R5Cfg {
  static constexpr int TPW = 32 / LPT;     // tokens per warp iteration (a "quad" below)
  static constexpr int V = E / LPT;        // values per lane
  static constexpr int C = V / 4;          // 16-byte chunks per lane
  static constexpr int QB = TPW * E * 4;   // bytes per quad
  static constexpr int SID_B = TPW * K * 4;
  static constexpr int WARP_B = (STAGES * QB + SID_B + STAGES * 8 + 127) / 128 * 128;
  static constexpr int BIAS_B = SIGMOID ? (E * 4 + 127) / 128 * 128 : 0;
  static constexpr int WPB = LPT == 2 ? 4 : kR5Warps;  // warps per block (LPT 2: 17 KB per warp)
  static constexpr int SMEM = BIAS_B + WPB * WARP_B;
};

#if ROUTER5_DIAG  // dev only: number of quads that took the tie path
__device__ unsigned long long g_r5_ties;
#endif
#if ROUTER5_DIAG
int r5_last_warps = 0;  // warps of the last v5 launch
#endif
#if ROUTER5_DIAG  // dev only: per-warp start/end %globaltimer and SM of the last launch
__device__ unsigned long long g_r5_tw[8192][2];
__device__ unsigned g_r5_smid[8192];
#endif

// G: groups (1 = no group limit; else one group per lane), TG: groups kept.
template <int E, int K, bool SIGMOID, int G, int TG, int STAGES, int MINB, int LPT>
__global__ void __launch_bounds__(32 * R5Cfg<E, K, SIGMOID, STAGES, LPT>::WPB, MINB)
    router5_kernel(const float* __restrict__ logits, const float* __restrict__ bias, int T, float route_scale,
                   int* __restrict__ ids, float* __restrict__ wts) {
  using Cfg = R5Cfg<E, K, SIGMOID, STAGES, LPT>;
  constexpr int TPW = Cfg::TPW, V = Cfg::V, C = Cfg::C, QB = Cfg::QB;
  static_assert(LPT == 8 || ((LPT == 4 || LPT == 2) && C % 8 == 0), "lanes per token: 8, or 4/2 with C % 8 == 0");
  static_assert(E % (LPT * 4) == 0, "E: a multiple of 4 * LPT");
  static_assert(K == 4 || K == 8, "k: 4 or 8");
  static_assert(G == 1 || (G == LPT && TG < G), "group limit: one group per lane");
  using Mask = typename std::conditional<(V > 32), unsigned long long, unsigned>::type;
  constexpr int NW = (V + 31) / 32;
  extern __shared__ __align__(128) unsigned char smem5[];

  const int lane = threadIdx.x & 31, wib = threadIdx.x >> 5;
  const int tq = lane / LPT, l8 = lane % LPT;
  // LPT == 4 (2): the 8 lanes of one 16-byte load phase are 2 tokens x 4 lanes (4 x 2) whose
  // chunk c sits in bank group c mod 8 (E/4 and C are multiples of 8): rotate by lane & 7.
  // C % 8 == 0 (DeepSeek, E=128 on 4 or 2 lanes): chunk i of step i is i ^ rho with rho
  // distinct over the 8 lanes of a phase (one XOR per address; the row base is a multiple
  // of 128 bytes, so the XOR only touches the chunk bits). Otherwise (Kimi C=12, E=128 on
  // 8 lanes C=4): the rotation (i + rho) mod C.
  constexpr bool XSW = ROUTER5_XSW && (C % 8 == 0);
  const int rho = XSW ? (lane & 7) : ((LPT == 8) ? rot5<C>(l8) : (lane & 7));
  float* sbias = reinterpret_cast<float*>(smem5);
  unsigned char* wbase = smem5 + Cfg::BIAS_B + wib * Cfg::WARP_B;
  int* sids = reinterpret_cast<int*>(wbase + STAGES * QB) + tq * K;
  const uint32_t bar0 = smem_u32(wbase + STAGES * QB + Cfg::SID_B);
  const uint32_t data0 = smem_u32(wbase);

  // Chunk offset (bytes, inside the token's row) of step i.
  auto chunk_off = [&](int i) {
    if constexpr (XSW) {
      return (l8 * V * 4 + 16 * rho) ^ (16 * i);
    } else {
      int c = i + rho;
      c -= (c >= C) ? C : 0;
      return l8 * V * 4 + 16 * c;
    }
  };
  int coff[C];
#pragma unroll
  for (int i = 0; i < C; ++i) coff[i] = chunk_off(i);
  // Slot-order bits (slot s = 4 * step + element) -> expert-order bits (bit p = expert l8*V + p).
  auto nib_xor = [&](uint32_t m) {  // nibble n -> nibble n ^ rho (rho < 8), an involution
    const uint32_t a = ((m & 0x0F0F0F0Fu) << 4) | ((m >> 4) & 0x0F0F0F0Fu);
    m = (rho & 1) ? a : m;
    const uint32_t b = __byte_perm(m, 0, 0x2301);
    m = (rho & 2) ? b : m;
    const uint32_t c = __byte_perm(m, 0, 0x1032);
    return (rho & 4) ? c : m;
  };
  auto rot_mask = [&](const uint32_t (&mw)[NW]) -> Mask {
    if constexpr (XSW && V == 32) {
      return nib_xor(mw[0]);
    } else if constexpr (XSW && V == 64) {
      return ((unsigned long long)nib_xor(mw[1]) << 32) | nib_xor(mw[0]);
    } else if constexpr (V == 32) {
      return __funnelshift_l(mw[0], mw[0], 4 * rho);
    } else if constexpr (V == 16) {
      const uint32_t d = mw[0] | (mw[0] << 16);
      return (d << (4 * rho)) >> 16;
    } else if constexpr (V == 64) {
      const unsigned long long x = ((unsigned long long)mw[1] << 32) | mw[0];
      const int r = 4 * rho;
      return r == 0 ? x : ((x << r) | (x >> (64 - r)));
    } else {
      static_assert(V == 48, "mask rotation for V = 16, 32, 48, 64");
      const unsigned long long x = ((unsigned long long)mw[1] << 32) | mw[0];
      const int r = 4 * rho;
      return ((x << r) | (x >> (48 - r))) & ((1ull << 48) - 1);
    }
  };

  if constexpr (SIGMOID) {  // bias in shared memory (read with the same chunk rotation)
    for (int e = threadIdx.x; e < E; e += blockDim.x) sbias[e] = bias[e];
    __syncthreads();
  }

  const int nq = (T + TPW - 1) / TPW;
  const int W = gridDim.x * Cfg::WPB;
  const int q0 = blockIdx.x * Cfg::WPB + wib;
  int q = q0;
#if ROUTER5_DIAG
  unsigned long long t_start;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t_start));
#endif
  auto issue = [&](int st, int qq) {
    const int ntok = min(TPW, T - qq * TPW);
    fence_proxy_async_shared();
    bulk_load(data0 + st * QB, logits + (size_t)qq * TPW * E, (uint32_t)(ntok * E * 4), bar0 + 8 * st);
  };
  if (lane == 0) {
#pragma unroll
    for (int s0 = 0; s0 < STAGES; ++s0)
      asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(bar0 + 8 * s0) : "memory");
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#pragma unroll
    for (int s0 = 0; s0 < STAGES; ++s0)
      if (q + s0 * W < nq) issue(s0, q + s0 * W);
  }
  __syncwarp();

  int st = 0;
  uint32_t par = 0;
#pragma unroll 1
  for (;;) {
    if (q >= nq) break;
    mbar_wait(bar0 + 8 * st, par);
    const unsigned char* xrow = wbase + st * QB + tq * E * 4;  // this lane's token
    const int tok = q * TPW + tq;
    const bool valid = tok < T;

    // 1. selection values
    float sel[V];
#pragma unroll
    for (int i = 0; i < C; ++i) {
      const float4 v = *reinterpret_cast<const float4*>(xrow + coff[i]);
      const float xv[4] = {v.x, v.y, v.z, v.w};
      float4 b4 = make_float4(0.f, 0.f, 0.f, 0.f);
      if constexpr (SIGMOID)
        b4 = *reinterpret_cast<const float4*>(reinterpret_cast<const unsigned char*>(sbias) + coff[i]);
      const float bv[4] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        if constexpr (SIGMOID) sel[4 * i + j] = fast_sigmoid(xv[j]) + bv[j];
        else sel[4 * i + j] = xv[j];
      }
    }
    // 2. per-lane sorted top-K
    float top[K];
    topk_sorted<V, K>(sel, top);

    // 3. group limit
    bool keep = true;
    if constexpr (G > 1) {
      const float score = top[0] + top[1];
      int rank = 0;
#pragma unroll
      for (int m = 1; m < 8; ++m) {
        const float o = __shfl_xor_sync(0xffffffffu, score, m);
        const int hb = m >= 4 ? 4 : (m >= 2 ? 2 : 1);  // partner (l8 ^ m) < l8 iff bit hb of l8 is set
        rank += (o > score || (o == score && (l8 & hb))) ? 1 : 0;
      }
      keep = rank < TG;
    }

    // 4. segment top-K: butterfly of bitonic top-K merges over the token's LPT lanes.
    //    Before the last level every lane holds the sorted top-K of its half; the last
    //    level only needs the set {max(mt[i], partner's mt[K-1-i])} (the token's top K,
    //    unsorted): tau = its minimum, top0 = the larger of the two heads.
    float mt[K];
#pragma unroll
    for (int r = 0; r < K; ++r) mt[r] = keep ? top[r] : -INFINITY;
#pragma unroll
    for (int m = 1; m < LPT / 2; m <<= 1) {
#pragma unroll
      for (int i = 0; i < K / 2; ++i) {
        const float a = __shfl_xor_sync(0xffffffffu, mt[i], m);
        const float b = __shfl_xor_sync(0xffffffffu, mt[K - 1 - i], m);
        mt[i] = fmaxf(mt[i], b);
        mt[K - 1 - i] = fmaxf(mt[K - 1 - i], a);
      }
#pragma unroll
      for (int d = K / 2; d > 0; d >>= 1)
#pragma unroll
        for (int i = 0; i < K; ++i)
          if ((i & d) == 0) cef(mt[i], mt[i + d]);
    }
    float tau = 0.f, top0 = 0.f;
#pragma unroll
    for (int i = 0; i < K; ++i) {
      const float o = __shfl_xor_sync(0xffffffffu, mt[K - 1 - i], LPT / 2);
      const float v = fmaxf(mt[i], o);
      tau = (i == 0) ? v : fminf(tau, v);
      if (i == K - 1) top0 = fmaxf(mt[0], o);  // o = partner's head
    }
    // 5. selected slots {allowed, sel >= tau}: exactly K of them unless equal floats sit
    //    at the boundary (then the tie path below keeps {sel > tau} plus the lowest-index
    //    slots with sel == tau).
    const float thr = (keep && valid) ? tau : INFINITY;
    uint32_t mw[NW];
    // Kimi (V=48): with the sign mask the compiler put sel[] on the stack (192-byte frame,
    // 105 us instead of 64 at T=131072): it keeps set.ge.
    if constexpr (ROUTER5_SGNMASK && V != 48) {
    // sel >= thr iff sel - thr has a clear sign bit (exact for finite values: a nonzero
    // difference never rounds to zero and x - x = +0; +inf - +inf gives the canonical NaN,
    // sign clear, like set.ge). The signs are shifted in one per value (SHF), the first
    // slot ending highest, then bit-reversed: 2 instructions a value instead of 3.
#pragma unroll
    for (int w = 0; w < NW; ++w) {
      const int nk = (V - 32 * w) < 32 ? (V - 32 * w) : 32;  // slots in this word (16 or 32)
      uint32_t m = 0u;
#pragma unroll
      for (int c = 0; c < nk / 8; ++c) {  // independent chains of 8 (short dependency chains)
        uint32_t mc = 0u;
#pragma unroll
        for (int s = 32 * w + 8 * c; s < 32 * w + 8 * c + 8; ++s) mc = __funnelshift_l(__float_as_uint(sel[s] - thr), mc, 1);
        m |= mc << (nk - 8 - 8 * c);
      }
      mw[w] = (~__brev(m)) >> (32 - nk);
    }
    } else {
#pragma unroll
    for (int w = 0; w < NW; ++w) mw[w] = 0u;
#pragma unroll
    for (int s = 0; s < V; ++s) {
      uint32_t ge;
      asm("set.ge.u32.f32 %0, %1, %2;" : "=r"(ge) : "f"(sel[s]), "f"(thr));
      mw[s / 32] |= ge & (1u << (s % 32));
    }
    }
    Mask mask = rot_mask(mw);
    const int cnt = (V > 32) ? __popcll((unsigned long long)mask) : __popc((unsigned)mask);
    int p = cnt;  // inclusive segment scan of the counts
#pragma unroll
    for (int d = 1; d < LPT; d <<= 1) {
      const int o = __shfl_up_sync(0xffffffffu, p, d, LPT);
      if (l8 >= d) p += o;
    }
    const int tot = __shfl_sync(0xffffffffu, p, LPT - 1, LPT);
    const bool bad = valid && tot != K;
    int off = p - cnt;

    if (__any_sync(0xffffffffu, bad)) {
#if ROUTER5_DIAG
      if (lane == 0) atomicAdd(&g_r5_ties, 1ull);
#endif
      // Tie path (equal floats at the boundary; rare on real data): tau is the K-th
      // largest allowed value (the merges are exact on multisets), so the selection is
      // {sel > tau} (fewer than K) plus the lowest-index slots with sel == tau, as many as
      // are missing. The values are recomputed from shared memory (bit-identical: same
      // instructions), so no register array stays live into this branch.
      unsigned long long eb64 = 0;  // slot-order bits of {sel == tau}
#pragma unroll 1
      for (int i = 0; i < C; ++i) {  // not unrolled: keeps the fast path's registers free
        const int o = chunk_off(i);
        const float4 x4 = *reinterpret_cast<const float4*>(xrow + o);
        float v[4] = {x4.x, x4.y, x4.z, x4.w};
        if constexpr (SIGMOID) {
          const float4 b4 = *reinterpret_cast<const float4*>(reinterpret_cast<const unsigned char*>(sbias) + o);
          const float bv[4] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
          for (int j = 0; j < 4; ++j) v[j] = fast_sigmoid(v[j]) + bv[j];
        }
        uint32_t nib = 0;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          uint32_t eq;
          asm("set.eq.u32.f32 %0, %1, %2;" : "=r"(eq) : "f"(v[j]), "f"(thr));
          nib |= eq & (1u << j);
        }
        eb64 |= (unsigned long long)nib << (4 * i);
      }
      uint32_t ew[NW];
#pragma unroll
      for (int w = 0; w < NW; ++w) ew[w] = (uint32_t)(eb64 >> (32 * w));
      const Mask eqm = rot_mask(ew);
      const Mask gtm = mask & ~eqm;
      const int cg = (V > 32) ? __popcll((unsigned long long)gtm) : __popc((unsigned)gtm);
      const int ce = (V > 32) ? __popcll((unsigned long long)eqm) : __popc((unsigned)eqm);
      int pk = cg | (ce << 16);  // both counts scanned at once
#pragma unroll
      for (int d = 1; d < LPT; d <<= 1) {
        const int o = __shfl_up_sync(0xffffffffu, pk, d, LPT);
        if (l8 >= d) pk += o;
      }
      const int need = K - (__shfl_sync(0xffffffffu, pk, LPT - 1, LPT) & 0xffff);  // >= 1
      const int eb = (pk >> 16) - ce, gb = (pk & 0xffff) - cg;  // in the lanes before
      int take = min(max(need - eb, 0), ce);
      Mask e = eqm, pick = 0;
#pragma unroll 1
      for (; take > 0; --take) {
        const Mask b = e & (~e + 1);
        pick |= b;
        e ^= b;
      }
      mask = gtm | pick;
      off = gb + min(eb, need);
    }
    {
      // ids at the lane's offsets (a token's lanes write exactly K slots in total)
      const int idb = l8 * V;
      while (mask) {
        const int pos = (V > 32) ? __ffsll((long long)mask) - 1 : __ffs((unsigned)mask) - 1;
        mask &= mask - 1;
#if ROUTER5_LEANIDS
        sids[off & (K - 1)] = idb + pos;  // off < K; the & only keeps a broken invariant in the token's slots
#else
        if (off < K) sids[off] = idb + pos;
#endif
        ++off;
      }
    }
    __syncwarp();

    // 6. output: lane j (< min(K, LPT)) of the token handles its chosen experts j, j + LPT, ...
    {
      constexpr int SL = K < LPT ? K : LPT, NO = K / SL;
      const int j0 = l8 & (SL - 1);
      float w[NO];
      int id[NO];
      float sum = 0.f;
#pragma unroll
      for (int o = 0; o < NO; ++o) {
        id[o] = valid ? sids[j0 + o * SL] : 0;
        const float xv = *reinterpret_cast<const float*>(xrow + 4 * id[o]);
        w[o] = SIGMOID ? fast_sigmoid(xv) : __expf(xv - top0);
        sum += w[o];
      }
#pragma unroll
      for (int o = 1; o < SL; o <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      const float scale = __fdividef(route_scale, sum);
      if (valid && l8 < SL) {
#pragma unroll
        for (int o = 0; o < NO; ++o) {
#if ROUTER5_STCS
          __stcs(ids + (size_t)tok * K + j0 + o * SL, id[o]);
          __stcs(wts + (size_t)tok * K + j0 + o * SL, w[o] * scale);
#else
          ids[(size_t)tok * K + j0 + o * SL] = id[o];
          wts[(size_t)tok * K + j0 + o * SL] = w[o] * scale;
#endif
        }
      }
    }
    __syncwarp();  // stage and sids reads done
    if (lane == 0 && q + STAGES * W < nq) issue(st, q + STAGES * W);
    q += W;
    if (++st == STAGES) { st = 0; par ^= 1; }
  }
#if ROUTER5_DIAG
  if (lane == 0) {
    unsigned long long t_end;
    unsigned smid;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t_end));
    asm volatile("mov.u32 %0, %%smid;" : "=r"(smid));
    const int gw = blockIdx.x * Cfg::WPB + wib;
    if (gw < 8192) {
      g_r5_tw[gw][0] = t_start;
      g_r5_tw[gw][1] = t_end;
      g_r5_smid[gw] = smid;
    }
  }
#endif
}

template <int E, int K, bool SIGMOID, int G, int TG, int STAGES, int MINB, int LPT>
void launch_router5(const float* logits, const float* bias, int T, float route_scale, int* ids, float* w,
                    cudaStream_t s) {
  using Cfg = R5Cfg<E, K, SIGMOID, STAGES, LPT>;
  auto kfn = router5_kernel<E, K, SIGMOID, G, TG, STAGES, MINB, LPT>;
  static int max_blocks = 0;  // resident blocks on the whole GPU (persistent grid cap)
  if (max_blocks == 0) {
    int dev = 0, per_sm = 0;
    MOESIM_CUDA_CHECK(cudaGetDevice(&dev));
    MOESIM_CUDA_CHECK(cudaFuncSetAttribute(kfn, cudaFuncAttributeMaxDynamicSharedMemorySize, Cfg::SMEM));
    // The persistent grid assumes every block is resident: ask for the largest shared
    // memory carveout (left to itself the driver may pick one that fits fewer blocks).
    MOESIM_CUDA_CHECK(cudaFuncSetAttribute(kfn, cudaFuncAttributePreferredSharedMemoryCarveout,
                                           cudaSharedmemCarveoutMaxShared));
    MOESIM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kfn, 32 * Cfg::WPB, Cfg::SMEM));
    max_blocks = std::max(1, per_sm) * sm_count(dev);
    if (std::getenv("MOESIM_ROUTER_VERBOSE"))
      std::fprintf(stderr, "router5 E=%d K=%d LPT=%d: %d blocks/SM, %d B shared/block\n", E, K, LPT, per_sm,
                   Cfg::SMEM);
  }
  const int nq = (T + Cfg::TPW - 1) / Cfg::TPW;
  const int blocks = std::max(1, std::min((nq + Cfg::WPB - 1) / Cfg::WPB, max_blocks));
  kfn<<<blocks, 32 * Cfg::WPB, Cfg::SMEM, s>>>(logits, bias, T, route_scale, ids, w);
  CUSTOM_CHECK_LAUNCH();
#if ROUTER5_DIAG
  r5_last_warps = blocks * Cfg::WPB;
#endif
}

// Order-preserving map float -> uint32 (larger float -> larger key).
__device__ __forceinline__ unsigned okey(float v) {
  const unsigned u = __float_as_uint(v);
  return u ^ ((unsigned)((int)u >> 31) | 0x80000000u);  // negative: ~u; else u | sign
}
// Lowest lane whose key equals the warp maximum (REDUX + BALLOT). Lanes hold
// increasing expert ranges and each lane offers its lowest-index best, so this is
// the arg-max with ties broken towards the lower expert index.
__device__ __forceinline__ int warp_argmax_lane(unsigned key) {
  unsigned m = __reduce_max_sync(0xffffffffu, key);
  return __ffs(__ballot_sync(0xffffffffu, key == m)) - 1;
}

// ---------------------------------------------------------------------------
// v4 (session 2; kept for kimi_k2, see NOTES.md "Session 4"): fast path + exact
// fallback. One warp per token, persistent grid (warp w
// walks tokens w, w + W, ... and prefetches the next token's logits into
// registers). Per token:
//   1. scores (sigmoid through ex2.approx + rcp.approx, or the raw logit) and the
//      order-preserving uint32 key of the selection value;
//   2. each lane sorts its V keys (sorting network on uint32 keys, no indices);
//   3. DeepSeek group limit: top-2 of each group from the sorted heads (merged over
//      the group's lanes), groups ranked by TG rounds of REDUX max + ballot (ties go
//      to the lower group, as in the reference);
//   4. K rounds of "pop the warp maximum": each lane's sorted keys sit in its own
//      column of shared memory, head = keys[c], tau = REDUX max(head), lanes whose
//      head == tau advance c (four instructions per round);
//   5. when exactly K keys were popped and no lane's next head equals tau (no tie
//      inside the top K), the selection is {allowed keys >= tau}: each lane stages
//      its selected (id, score) pairs in shared memory at its prefix offset, and
//      lanes 0..K-1 normalise and write them (ascending expert id). Otherwise (equal
//      floats inside the top K) the warp runs the exact v3 rounds (select_exact),
//      which break ties towards the lower expert index.
// ---------------------------------------------------------------------------
// Sorting networks (descending) on uint32 keys; each verified exhaustively with the
// 0-1 principle: 12 inputs 39 (v4 also had 4 and 8; see git history).
__device__ __forceinline__ void ce(uint32_t& x, uint32_t& y) {
  const uint32_t hi = max(x, y), lo = min(x, y);
  x = hi;
  y = lo;
}
template <int N>
__device__ __forceinline__ void sort_desc_u32(uint32_t (&v)[N]);
template <>
__device__ __forceinline__ void sort_desc_u32<12>(uint32_t (&v)[12]) {
  ce(v[0], v[8]);
  ce(v[1], v[7]);
  ce(v[2], v[6]);
  ce(v[3], v[11]);
  ce(v[4], v[10]);
  ce(v[5], v[9]);
  ce(v[0], v[1]);
  ce(v[2], v[5]);
  ce(v[3], v[4]);
  ce(v[6], v[9]);
  ce(v[7], v[8]);
  ce(v[10], v[11]);
  ce(v[0], v[2]);
  ce(v[1], v[6]);
  ce(v[5], v[10]);
  ce(v[9], v[11]);
  ce(v[0], v[3]);
  ce(v[1], v[2]);
  ce(v[4], v[6]);
  ce(v[5], v[7]);
  ce(v[8], v[11]);
  ce(v[9], v[10]);
  ce(v[1], v[4]);
  ce(v[3], v[5]);
  ce(v[6], v[8]);
  ce(v[7], v[10]);
  ce(v[1], v[3]);
  ce(v[2], v[5]);
  ce(v[6], v[9]);
  ce(v[8], v[10]);
  ce(v[2], v[3]);
  ce(v[4], v[5]);
  ce(v[6], v[7]);
  ce(v[8], v[9]);
  ce(v[4], v[6]);
  ce(v[5], v[7]);
  ce(v[3], v[4]);
  ce(v[5], v[6]);
  ce(v[7], v[8]);
}
__device__ __forceinline__ float key_to_float(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k ^ 0x80000000u) : ~k);
}
// The exact v3 selection (slow path, ties only): lane l holds experts l*V .. l*V+V-1
// (selection values sel, weight values wv); keep = this lane's group survived the
// group limit. K rounds of per-lane arg-max, REDUX + ballot (the lowest lane and the
// lowest index win ties). Writes ids and weights in selection order.
template <int E, int K, bool SIGMOID>
__device__ __forceinline__ void select_exact(const float (&sel_in)[E / 32], const float (&wv)[E / 32], bool keep, int lane,
                                          float route_scale, int* ids_tok, float* wts_tok) {
  constexpr int V = E / 32;
  float sel[V];
#pragma unroll
  for (int i = 0; i < V; ++i) sel[i] = keep ? sel_in[i] : -INFINITY;
  int my_id = 0;
  float my_w = 0.f;
#pragma unroll 1
  for (int r = 0; r < K; ++r) {
    float bv = -INFINITY, bw = 0.f;
    int bi = lane * V;
#pragma unroll
    for (int i = 0; i < V; ++i)
      if (sel[i] > bv) { bv = sel[i]; bi = lane * V + i; bw = wv[i]; }
    const int wl = warp_argmax_lane(okey(bv));
    const int wi = __shfl_sync(0xffffffffu, bi, wl);
    const float ww = __shfl_sync(0xffffffffu, bw, wl);
    if (lane == wl) {
#pragma unroll
      for (int i = 0; i < V; ++i)
        if (lane * V + i == wi) sel[i] = -INFINITY;
    }
    if (lane == r) { my_id = wi; my_w = ww; }
  }
  float w;
  if constexpr (SIGMOID) {
    w = (lane < K) ? my_w : 0.f;
  } else {
    const float m = __shfl_sync(0xffffffffu, my_w, 0);
    w = (lane < K) ? expf(my_w - m) : 0.f;
  }
  float sum = w;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
  if (lane < K) {
    ids_tok[lane] = my_id;
    wts_tok[lane] = w / sum * route_scale;
  }
}

constexpr int kRouterWarps = 8;  // warps per block

// G: groups (1 = no group limit), TG: groups kept.
template <int E, int K, bool SIGMOID, int G, int TG>
__global__ void __launch_bounds__(32 * kRouterWarps) router_kernel(const float* __restrict__ logits,
                                                                   const float* __restrict__ bias, int T,
                                                                   float route_scale, int* __restrict__ ids,
                                                                   float* __restrict__ wts) {
  constexpr int V = E / 32;
  static_assert(V % 4 == 0, "E must be a multiple of 128");
  static_assert(K <= 32 && (K & (K - 1)) == 0, "k: a power of two <= 32");
  static_assert(32 % G == 0, "groups must divide the warp");
  constexpr int LPG = 32 / G;                // lanes per group
  constexpr int ROWS = (V > K ? V : K) + 1;  // sorted keys, then zero rows (sentinels)
  __shared__ uint32_t skeys[kRouterWarps][ROWS][32];
  __shared__ __align__(16) float2 sstage[kRouterWarps][K];

  const int lane = threadIdx.x & 31, wib = threadIdx.x >> 5;
  uint32_t(*sk)[32] = skeys[wib];  // lane-private columns: no cross-lane hazards
#pragma unroll
  for (int r = V; r < ROWS; ++r) sk[r][lane] = 0u;

  float bv[V];
#pragma unroll
  for (int i = 0; i < V; ++i) bv[i] = 0.f;
  if constexpr (SIGMOID) {
    const float4* bsrc = reinterpret_cast<const float4*>(bias + lane * V);
#pragma unroll
    for (int i = 0; i < V / 4; ++i) {
      const float4 b = __ldg(bsrc + i);
      bv[4 * i] = b.x; bv[4 * i + 1] = b.y; bv[4 * i + 2] = b.z; bv[4 * i + 3] = b.w;
    }
  }

  const int W = gridDim.x * kRouterWarps;
  int tok = blockIdx.x * kRouterWarps + wib;
  float4 nxt[V / 4];
  if (tok < T) {
    const float4* src = reinterpret_cast<const float4*>(logits + (size_t)tok * E + lane * V);
#pragma unroll
    for (int i = 0; i < V / 4; ++i) nxt[i] = __ldcs(src + i);
  }
#pragma unroll 1
  for (; tok < T; tok += W) {
    float x[V];
#pragma unroll
    for (int i = 0; i < V / 4; ++i) {
      x[4 * i] = nxt[i].x; x[4 * i + 1] = nxt[i].y; x[4 * i + 2] = nxt[i].z; x[4 * i + 3] = nxt[i].w;
    }
    if (tok + W < T) {  // prefetch this warp's next token
      const float4* src = reinterpret_cast<const float4*>(logits + (size_t)(tok + W) * E + lane * V);
#pragma unroll
      for (int i = 0; i < V / 4; ++i) nxt[i] = __ldcs(src + i);
    }

    // 1. scores and keys
    float wv[V], sel[V];
    uint32_t key[V], srt[V];
#pragma unroll
    for (int i = 0; i < V; ++i) {
      if constexpr (SIGMOID) {
        wv[i] = fast_sigmoid(x[i]);
        sel[i] = wv[i] + bv[i];
      } else {
        wv[i] = x[i];
        sel[i] = x[i];
      }
      key[i] = okey(sel[i]);
      srt[i] = key[i];
    }
    // 2. per-lane sort, descending
    sort_desc_u32<V>(srt);

    // 3. group limit (exact: same float group score as the reference). The rank of a
    //    group counts the groups ahead of it (higher score, or equal score and lower
    //    index); the TG groups of rank < TG stay.
    bool keep = true;
    if constexpr (G > 1) {
      uint32_t a = srt[0], b = srt[1];
#pragma unroll
      for (int off = 1; off < LPG; off <<= 1) {
        const uint32_t oa = __shfl_xor_sync(0xffffffffu, a, off);
        const uint32_t ob = __shfl_xor_sync(0xffffffffu, b, off);
        const uint32_t na = max(a, oa);
        b = max(min(a, oa), max(b, ob));
        a = na;
      }
      const uint32_t gk = okey(key_to_float(a) + key_to_float(b));
      const unsigned mg = (unsigned)lane / LPG;
      // The G comparisons are split over the group's LPG lanes, then summed.
      constexpr int QPL = (G + LPG - 1) / LPG;  // groups compared per lane
      const unsigned li = (unsigned)lane % LPG;
      int rank = 0;
#pragma unroll
      for (int qq = 0; qq < QPL; ++qq) {
        const unsigned q = li * QPL + qq;
        const uint32_t o = __shfl_sync(0xffffffffu, gk, (int)(q * LPG) & 31);
        rank += (q < (unsigned)G && (o > gk || (o == gk && q < mg))) ? 1 : 0;
      }
#pragma unroll
      for (int off = 1; off < LPG; off <<= 1) rank += __shfl_xor_sync(0xffffffffu, rank, off);
      keep = rank < TG;
    }

    // 4. K rounds over the sorted keys
#pragma unroll
    for (int i = 0; i < V; ++i) sk[i][lane] = srt[i];
    const int c0 = keep ? 0 : V;  // dropped groups start at the zero row
    int c = c0;
    uint32_t tau = 0, top = 0;
#pragma unroll
    for (int r = 0; r < K; ++r) {
      const uint32_t head = sk[c][lane];
      tau = __reduce_max_sync(0xffffffffu, head);
      if (r == 0) top = tau;
      c += (head == tau) ? 1 : 0;
    }
    const int npop = c - c0;
    const unsigned total = __reduce_add_sync(0xffffffffu, (unsigned)npop);
    const bool tie = __any_sync(0xffffffffu, sk[c][lane] == tau);
    int* ids_tok = ids + (size_t)tok * K;
    float* wts_tok = wts + (size_t)tok * K;
    if (total != (unsigned)K || tie) {
      select_exact<E, K, SIGMOID>(sel, wv, keep, lane, route_scale, ids_tok, wts_tok);
      continue;
    }
    // 5. fast path: exclusive prefix of the per-lane counts (bit planes of the
    //    counts by ballot), predicated stores of (id, score) into the stage.
    const unsigned lt = (1u << lane) - 1u;
    int pos = 0;
#pragma unroll
    for (int bit = 0; (1 << bit) <= (V < K ? V : K); ++bit)
      pos += __popc(__ballot_sync(0xffffffffu, (npop >> bit) & 1) & lt) << bit;
    __syncwarp();  // the previous token's stage reads are done
    {
      const uint32_t thr = keep ? tau : 0xffffffffu;  // dropped groups select nothing
      uint32_t addr = (uint32_t)__cvta_generic_to_shared(&sstage[wib][0]) + 8u * pos;
#pragma unroll
      for (int i = 0; i < V; ++i) {
        const uint32_t f = key[i] >= thr ? 1u : 0u;
        asm volatile(
            "{\n .reg .pred p;\n setp.ne.u32 p, %0, 0;\n @p st.shared.v2.f32 [%1], {%2, %3};\n}\n" ::"r"(f),
            "r"(addr), "f"(__int_as_float(lane * V + i)), "f"(wv[i])
            : "memory");
        addr += 8u * f;
      }
    }
    __syncwarp();
    if constexpr (SIGMOID) {
      // Every lane sums the K staged scores itself (no shuffle chain).
      const float4* st4 = reinterpret_cast<const float4*>(&sstage[wib][0]);
      float sum = 0.f;
#pragma unroll
      for (int i = 0; i < K / 2; ++i) {
        const float4 e2 = st4[i];
        sum += e2.y + e2.w;
      }
      if (lane < K) {
        const float2 e = sstage[wib][lane];
        ids_tok[lane] = __float_as_int(e.x);
        wts_tok[lane] = e.y * __fdividef(route_scale, sum);
      }
    } else {
      const float2 e = sstage[wib][lane & (K - 1)];
      const float w = __expf(e.y - key_to_float(top));  // top = the largest chosen logit
      float sum = w;
#pragma unroll
      for (int off = 1; off < K; off <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
      if (lane < K) {
        ids_tok[lane] = __float_as_int(e.x);
        wts_tok[lane] = w * __fdividef(route_scale, sum);
      }
    }
  }
}

template <int E, int K, bool SIGMOID, int G, int TG>
void launch_router_t(const float* logits, const float* bias, int T, float route_scale, int* ids, float* w,
                     cudaStream_t s) {
  static int max_blocks = 0;  // resident blocks on the whole GPU (persistent grid cap)
  if (max_blocks == 0) {
    int dev = 0, per_sm = 0;
    MOESIM_CUDA_CHECK(cudaGetDevice(&dev));
    MOESIM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, router_kernel<E, K, SIGMOID, G, TG>,
                                                                    32 * kRouterWarps, 0));
    max_blocks = std::max(1, per_sm) * sm_count(dev);
  }
  const int blocks = std::max(1, std::min((T + kRouterWarps - 1) / kRouterWarps, max_blocks));
  router_kernel<E, K, SIGMOID, G, TG><<<blocks, 32 * kRouterWarps, 0, s>>>(logits, bias, T, route_scale, ids, w);
  CUSTOM_CHECK_LAUNCH();
}


void launch_router(const RouterVariant& v, const float* logits, const float* bias, int T, int* ids, float* w,
                   cudaStream_t s) {
  if (v.E == 256 && v.K == 8 && v.sigmoid && v.groups == 8 && v.topk_groups == 4)
    launch_router5<256, 8, true, 8, 4, ROUTER5_STAGES_DS, ROUTER5_MINB_DS, 8>(logits, bias, T, v.route_scale, ids, w, s);
  else if (v.E == 384 && v.K == 8 && v.sigmoid && v.groups == 1)
  {
    // v4 (one warp per token) is ~1 us faster up to T=2048 and ~0.3 us at 4096 (v4: real
    // harness, session 4; v5: dev harness, session 5); v5 wins from 8192 on.
    if (ROUTER5_KIMI > 0 && T >= ROUTER5_KIMI)
      launch_router5<384, 8, true, 1, 1, 2, 2, 8>(logits, bias, T, v.route_scale, ids, w, s);
    else
      launch_router_t<384, 8, true, 1, 1>(logits, bias, T, v.route_scale, ids, w, s);  // v4
  }
  else if (v.E == 128 && v.K == 4 && !v.sigmoid && v.groups == 1)
    launch_router5<128, 4, false, 1, 1, ROUTER5_STAGES_E128, ROUTER5_MINB_E128(ROUTER5_LPT_K4), ROUTER5_LPT_K4>(logits, bias, T, v.route_scale, ids, w, s);
  else if (v.E == 128 && v.K == 8 && !v.sigmoid && v.groups == 1)
    launch_router5<128, 8, false, 1, 1, ROUTER5_STAGES_E128, ROUTER5_MINB_E128(ROUTER5_LPT_K8), ROUTER5_LPT_K8>(logits, bias, T, v.route_scale, ids, w, s);
  else
    throw std::runtime_error("router: unsupported variant");
}

struct RefResult {
  std::vector<int> ids;    // [K] sorted ascending
  std::vector<float> w;    // weight per id, same order as ids
  double margin;           // smallest gap at a selection boundary (near-tie detector)
};

RefResult router_ref_token(const RouterVariant& v, const float* x, const float* bias) {
  const int E = v.E, K = v.K;
  std::vector<float> sel(E), wv(E);
  for (int e = 0; e < E; ++e) {
    if (v.sigmoid) {
      float s = 1.0f / (1.0f + std::exp(-x[e]));
      wv[e] = s;
      sel[e] = s + bias[e];
    } else {
      wv[e] = x[e];
      sel[e] = x[e];
    }
  }
  double margin = 1e30;
  std::vector<char> allowed(E, 1);
  if (v.groups > 1) {
    const int G = v.groups, gs = E / G;
    std::vector<float> gscore(G);
    for (int g = 0; g < G; ++g) {
      std::vector<float> t(sel.begin() + g * gs, sel.begin() + (g + 1) * gs);
      std::partial_sort(t.begin(), t.begin() + 2, t.end(), std::greater<float>());
      gscore[g] = t[0] + t[1];
    }
    std::vector<int> go(G);
    std::iota(go.begin(), go.end(), 0);
    std::stable_sort(go.begin(), go.end(), [&](int a, int b) { return gscore[a] > gscore[b]; });
    margin = std::min(margin, (double)gscore[go[v.topk_groups - 1]] - gscore[go[v.topk_groups]]);
    std::fill(allowed.begin(), allowed.end(), 0);
    for (int r = 0; r < v.topk_groups; ++r)
      for (int e = go[r] * gs; e < (go[r] + 1) * gs; ++e) allowed[e] = 1;
  }
  std::vector<int> order;
  for (int e = 0; e < E; ++e)
    if (allowed[e]) order.push_back(e);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return sel[a] > sel[b]; });
  if ((int)order.size() > K) margin = std::min(margin, (double)sel[order[K - 1]] - sel[order[K]]);
  RefResult r;
  r.margin = margin;
  std::vector<int> chosen(order.begin(), order.begin() + K);
  std::vector<double> w(K);
  double sum = 0;
  if (v.sigmoid) {
    for (int j = 0; j < K; ++j) { w[j] = wv[chosen[j]]; sum += w[j]; }
  } else {
    double m = wv[chosen[0]];
    for (int j = 0; j < K; ++j) { w[j] = std::exp((double)wv[chosen[j]] - m); sum += w[j]; }
  }
  std::vector<int> idx(K);
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](int a, int b) { return chosen[a] < chosen[b]; });
  for (int j : idx) {
    r.ids.push_back(chosen[j]);
    r.w.push_back((float)(w[j] / sum * v.route_scale));
  }
  return r;
}

struct CheckOut {
  double max_rel_w = 0;
  long mismatched = 0;  // tokens whose id set differs and that are not near-ties
  long near_ties = 0;   // tokens whose id set differs at a boundary gap < 1e-5
};

CheckOut check_router(const RouterVariant& v, int T, cudaStream_t s) {
  DevBuf<float> logits((size_t)T * v.E), bias(v.E), w((size_t)T * v.K);
  DevBuf<int> ids((size_t)T * v.K);
  fill_normal_f32(logits.p, logits.n, 2.0f, s);
  fill_f32(bias.p, bias.n, -0.1f, 0.1f, s);
  ids.poison(s);
  w.poison(s);
  launch_router(v, logits.p, bias.p, T, ids.p, w.p, s);
  MOESIM_CUDA_CHECK(cudaStreamSynchronize(s));
  auto hl = logits.to_host(), hb = bias.to_host(), hw = w.to_host();
  auto hi = ids.to_host();
  CheckOut c;
  for (int t = 0; t < T; ++t) {
    RefResult r = router_ref_token(v, hl.data() + (size_t)t * v.E, hb.data());
    std::vector<std::pair<int, float>> g(v.K);
    for (int j = 0; j < v.K; ++j) g[j] = {hi[(size_t)t * v.K + j], hw[(size_t)t * v.K + j]};
    std::sort(g.begin(), g.end());
    bool same = true;
    for (int j = 0; j < v.K; ++j) same &= (g[j].first == r.ids[j]);
    if (!same) {
      if (r.margin < 1e-5) ++c.near_ties;
      else ++c.mismatched;
      continue;
    }
    for (int j = 0; j < v.K; ++j) {
      double rel = std::fabs((double)g[j].second - r.w[j]) / std::max(1e-30, std::fabs((double)r.w[j]));
      if (!(rel == rel)) rel = INFINITY;
      c.max_rel_w = std::max(c.max_rel_w, rel);
    }
  }
  return c;
}

// Logits drawn from a handful of values (bias 0): most tokens have exact ties inside
// or at the boundary of the top k, so the kernel's exact (slow) path runs and its tie
// rule (lower expert index, lower group) must match the reference exactly. The values
// are non-negative for the sigmoid variants so that no two different pairs of scores
// sum to the same group score (sigmoid(x) + sigmoid(-x) = 1 would), which keeps the
// fast sigmoid and the reference's expf in the same order. No near-tie exemption.
__global__ void k_fill_choice(float* p, size_t n, uint64_t seed, bool sigmoid) {
  const float sv[6] = {0.f, 0.5f, 1.f, 1.5f, 2.f, 3.f};
  const float xv[6] = {-2.f, -1.f, 0.f, 0.5f, 1.f, 2.f};
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const int c = min(5, (int)(cuni01(seed, i) * 6.f));
    p[i] = sigmoid ? sv[c] : xv[c];
  }
}

long check_router_ties(const RouterVariant& v, int T, cudaStream_t s, double* max_rel_w) {
  DevBuf<float> logits((size_t)T * v.E), bias(v.E), w((size_t)T * v.K);
  DevBuf<int> ids((size_t)T * v.K);
  k_fill_choice<<<fill_blocks(logits.n), 256, 0, s>>>(logits.p, logits.n, next_seed(), v.sigmoid);
  CUSTOM_CHECK_LAUNCH();
  MOESIM_CUDA_CHECK(cudaMemsetAsync(bias.p, 0, bias.bytes(), s));
  ids.poison(s);
  w.poison(s);
  launch_router(v, logits.p, bias.p, T, ids.p, w.p, s);
  MOESIM_CUDA_CHECK(cudaStreamSynchronize(s));
  auto hl = logits.to_host(), hb = bias.to_host(), hw = w.to_host();
  auto hi = ids.to_host();
  long bad = 0;
  for (int t = 0; t < T; ++t) {
    RefResult r = router_ref_token(v, hl.data() + (size_t)t * v.E, hb.data());
    std::vector<std::pair<int, float>> g(v.K);
    for (int j = 0; j < v.K; ++j) g[j] = {hi[(size_t)t * v.K + j], hw[(size_t)t * v.K + j]};
    std::sort(g.begin(), g.end());
    bool same = true;
    for (int j = 0; j < v.K; ++j) same &= (g[j].first == r.ids[j]);
    if (!same) { ++bad; continue; }
    for (int j = 0; j < v.K; ++j) {
      double rel = std::fabs((double)g[j].second - r.w[j]) / std::max(1e-30, std::fabs((double)r.w[j]));
      if (!(rel == rel)) rel = INFINITY;
      *max_rel_w = std::max(*max_rel_w, rel);
    }
  }
  return bad;
}

}  // namespace
}  // namespace custom

void run_router_suite(Harness& h) {
  using namespace custom;
  cudaStream_t s;
  MOESIM_CUDA_CHECK(cudaStreamCreate(&s));
  const int l2 = l2_bytes(h.device());
  std::vector<int> Ts;
  if (h.quick) Ts = {1, 256, 16384};
  else {
    for (int t = 1; t <= 16384; t *= 2) Ts.push_back(t);
    // Large batches: at T=16384 one launch between two events (~4.3 us on H200) is a
    // third of the time; 65536 and 131072 show the kernel's own bandwidth.
    Ts.push_back(65536);
    Ts.push_back(131072);
  }
  int failures = 0;
  // Dev knobs: MOESIM_ROUTER_ONLY=model:T runs that single point (profiling);
  // MOESIM_ROUTER_TS=t1,t2,... replaces the list of T; MOESIM_ROUTER_CHECK_T=n runs the
  // two checks on n tokens instead of T (A/B timing runs of an already checked kernel).
  const char* only = std::getenv("MOESIM_ROUTER_ONLY");
  if (const char* ts = std::getenv("MOESIM_ROUTER_TS")) {
    Ts.clear();
    for (const char* p = ts; *p;) {
      Ts.push_back(std::atoi(p));
      while (*p && *p != ',') ++p;
      if (*p == ',') ++p;
    }
  }
  const char* check_t = std::getenv("MOESIM_ROUTER_CHECK_T");
  for (const auto& v : kVariants) {
    if (h.quick && (v.E == 128 && v.K == 4)) continue;
    for (int T : Ts) {
      if (only && strfmt("%s:%d", v.model, T) != only) continue;
      std::string shape = strfmt(
          R"({"tokens":%d,"experts":%d,"topk":%d,"groups":%d,"topk_groups":%d,"scoring":"%s"})", T,
          v.E, v.K, v.groups, v.topk_groups, v.sigmoid ? "sigmoid" : "softmax");
      const int Tc = check_t ? std::atoi(check_t) : T;
      CheckOut c = check_router(v, Tc, s);
      double tie_w = 0;
      const long tie_bad = check_router_ties(v, Tc, s, &tie_w);
      double err = std::max(c.max_rel_w, tie_w);
      if (c.mismatched > 0 || tie_bad > 0 || !(err < 1e-5)) {
        ++failures;
        report_check_failure("router", shape, err,
                             strfmt("%ld tokens with wrong expert sets, %ld with wrong sets on tied inputs, "
                                    "max weight rel err %g",
                                    c.mismatched, tie_bad, err).c_str());
        if (c.mismatched > 0 || tie_bad > 0) err = INFINITY;
      }
      // Timing on rotated input sets.
      const double ws = (double)T * v.E * 4 + (double)T * v.K * 8;
      const int nsets = rotation_sets(ws, l2, 32);
      std::vector<DevBuf<float>> lg(nsets), ww(nsets);
      std::vector<DevBuf<int>> ii(nsets);
      DevBuf<float> bias(v.E);
      fill_f32(bias.p, bias.n, -0.1f, 0.1f, s);
      for (int k = 0; k < nsets; ++k) {
        lg[k].alloc((size_t)T * v.E);
        ww[k].alloc((size_t)T * v.K);
        ii[k].alloc((size_t)T * v.K);
        fill_normal_f32(lg[k].p, lg[k].n, 2.0f, s);
      }
      Timing t = h.time(
          [&](int rep, cudaStream_t st) {
            int k = rep % nsets;
            launch_router(v, lg[k].p, bias.p, T, ii[k].p, ww[k].p, st);
          },
          s);
      const double bytes = (double)T * v.E * 4 + (v.sigmoid ? v.E * 4.0 : 0.0) + (double)T * v.K * 8;
      const double flops = (double)T * v.E * (v.sigmoid ? 4.0 : 1.0);
      h.record("router", "fp32", shape, t, err, flops, bytes,
               strfmt(R"("model":"%s","route_scale":%g,"near_ties":%ld,"tie_check_wrong":%ld,"input_sets":%d)",
                      v.model, v.route_scale, c.near_ties, tie_bad, nsets));
      std::fprintf(stderr, "router %-15s T=%6d  %8.2f us  %7.1f GB/s  err=%.2e ties=%ld\n", v.model, T,
                   t.median_us, bytes / t.median_us * 1e-3, err, c.near_ties);
#if ROUTER5_DIAG
      // dev only: tie-path quads of each input set, and each set timed alone
      for (int k = 0; k < nsets; ++k) {
        const unsigned long long zero = 0;
        MOESIM_CUDA_CHECK(cudaMemcpyToSymbolAsync(g_r5_ties, &zero, sizeof zero, 0, cudaMemcpyHostToDevice, s));
        launch_router(v, lg[k].p, bias.p, T, ii[k].p, ww[k].p, s);
        unsigned long long nt = 0;
        MOESIM_CUDA_CHECK(cudaMemcpyFromSymbolAsync(&nt, g_r5_ties, sizeof nt, 0, cudaMemcpyDeviceToHost, s));
        MOESIM_CUDA_CHECK(cudaStreamSynchronize(s));
        Timing tk = h.time([&](int, cudaStream_t st) { launch_router(v, lg[k].p, bias.p, T, ii[k].p, ww[k].p, st); }, s);
        std::fprintf(stderr, "diag %-15s T=%6d set %d: tie quads %llu  %8.2f us [%8.2f .. %8.2f]\n", v.model, T, k, nt,
                     tk.median_us, tk.p10_us, tk.p90_us);
        if (k == 0) {  // timeline of one more launch: warp start/end, SM last end (us after the first start)
          for (int rep = 0; rep < 3; ++rep) {
            launch_router(v, lg[k].p, bias.p, T, ii[k].p, ww[k].p, s);
            MOESIM_CUDA_CHECK(cudaStreamSynchronize(s));
            const int nw = std::min(r5_last_warps, 8192);
            std::vector<unsigned long long> tw(2 * 8192);
            std::vector<unsigned> sm(8192);
            MOESIM_CUDA_CHECK(cudaMemcpyFromSymbol(tw.data(), g_r5_tw, tw.size() * 8));
            MOESIM_CUDA_CHECK(cudaMemcpyFromSymbol(sm.data(), g_r5_smid, sm.size() * 4));
            unsigned long long t0 = ~0ull;
            for (int i = 0; i < nw; ++i) t0 = std::min(t0, tw[2 * i]);
            std::vector<double> st(nw), en(nw), smend(256, 0.0);
            for (int i = 0; i < nw; ++i) {
              st[i] = (tw[2 * i] - t0) * 1e-3;
              en[i] = (tw[2 * i + 1] - t0) * 1e-3;
              smend[sm[i] & 255] = std::max(smend[sm[i] & 255], en[i]);
            }
            std::vector<double> se;
            for (double x : smend)
              if (x > 0) se.push_back(x);
            auto pct = [](std::vector<double> x, double f) {
              std::sort(x.begin(), x.end());
              return x.empty() ? 0.0 : x[std::min(x.size() - 1, (size_t)(f * x.size()))];
            };
            std::fprintf(stderr,
                         "tl %-15s T=%6d: warps %d start p50 %.2f max %.2f | warp end min %.2f p10 %.2f p50 %.2f p90 %.2f max "
                         "%.2f | SM end (%zu SMs) min %.2f p10 %.2f p50 %.2f p90 %.2f max %.2f\n",
                         v.model, T, nw, pct(st, 0.5), pct(st, 1.0), pct(en, 0.0), pct(en, 0.1), pct(en, 0.5),
                         pct(en, 0.9), pct(en, 1.0), se.size(), pct(se, 0.0), pct(se, 0.1), pct(se, 0.5), pct(se, 0.9),
                         pct(se, 1.0));
          }
        }
      }
#endif
    }
  }
  MOESIM_CUDA_CHECK(cudaStreamDestroy(s));
  if (failures) std::fprintf(stderr, "!!!!! router suite: %d failed checks !!!!!\n", failures);
}

}  // namespace moesim::validate
