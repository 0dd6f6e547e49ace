// Kernel "mla_decode": DeepSeek MLA decode attention in the absorbed (MQA) form.
//
// q [B, h, 576] bf16; latent cache [B, s, 576] (bf16, or FlashMLA's 656-byte FP8
// format: 512 e4m3 latent values, 4 FP32 scales (one per 128 values), 64 bf16
// rope values); out [B, h, 512] bf16. score = q . k (576 dims) / sqrt(192);
// out = softmax(score) . v, v = the first 512 dims of the cache row.
//
// Split-KV (flash-decoding): grid (splits, B, h / HB). A block of 8 warps
// takes HB = 16*MT heads and a contiguous range of the context, streams the
// cache through shared memory in tiles of BN tokens (cp.async, 2-4 stages, rows
// XOR-swizzled so ldmatrix is bank-conflict free; fp8 tiles are dequantised
// into a bf16 tile first), and runs both products on tensor cores with
// mma.sync m16n8k16 bf16 -> fp32:
//   S = Q K^T  : warp (mi, ni) takes heads 16*mi.. and BN*MT/8 tokens;
//   online softmax in fp32 (row max exchanged through shared memory);
//   P (bf16) goes through shared memory;
//   O += P V   : warp w takes value dims 64*w .. 64*w+63 for all HB heads
//                (fp32 accumulators in registers).
// Each split writes O / l and its log-sum-exp; a second kernel combines the
// splits (skipped when there is one split, then the block writes bf16 directly).
// FP8 cache: h = 16 runs mla_wg2h16_kernel (wgmma, B*s >= 8192) or mla_fp8_kernel (below),
// h = 32 (B*s >= 8192) mla_wg2_kernel (wgmma, splits of >= 16 tiles) or mla_wg_kernel (wgmma,
// shorter splits); all are described above their definitions.
#include <algorithm>
#include <map>

#include "../suites.h"
#include "common.cuh"

namespace moesim::validate {
namespace custom {
namespace {

constexpr int D = 576, DV = 512, CH = 72;  // CH: 16-byte chunks per bf16 row
constexpr int FP8_ROW = 656;               // bytes per token, FlashMLA fp8 format
constexpr int FP8_SCALE_OFF = 512, FP8_ROPE_OFF = 528;
constexpr int NWARPS = 8, NTHREADS = 256;

__device__ __forceinline__ void cp_async16(uint32_t dst, const void* src, bool valid) {
  int sz = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(sz));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm_x4(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}
__device__ __forceinline__ void ldsm_x2(uint32_t addr, uint32_t& r0, uint32_t& r1) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n" : "=r"(r0), "=r"(r1) : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2, uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}
__device__ __forceinline__ void mma16816(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Byte offset of 16-byte chunk c of row r in a [rows][72 chunks] swizzled tile.
__device__ __forceinline__ uint32_t swz(int r, int c) { return (uint32_t)(r * (CH * 16) + ((c ^ (r & 7)) << 4)); }
// P tile [HB][BN] bf16, swizzled by 16-byte chunk.
template <int BN>
__device__ __forceinline__ uint32_t pswz(int r, int c) {
  if constexpr (BN == 64) return (uint32_t)(r * 128 + ((c ^ (r & 7)) << 4));
  else return (uint32_t)(r * 64 + ((c ^ ((r >> 1) & 3)) << 4));
}

template <int MT, int BN, bool FP8, int NST>
struct Cfg {
  static constexpr int HB = 16 * MT;
  // S warps per 16-head row block. Fewer S warps with more tokens each re-read Q
  // (ldmatrix A fragments) less often: shared-memory traffic is the limit at h<=32.
  static constexpr int NWS = MT == 1 ? 4 : (MT == 2 ? 2 : NWARPS / MT);
  static constexpr int MINB = MT == 1 ? 2 : 1;  // blocks per SM (h=16: BN=32 tiles, 2 blocks overlap phases)
  static constexpr int SWARPS = MT * NWS;
  static constexpr int TPW = BN / NWS;     // tokens per S warp
  static constexpr int NTS = TPW / 8;      // n8 tiles per S warp
  static_assert(TPW % 8 == 0, "tokens per warp");
  static constexpr int ROWB = FP8 ? FP8_ROW : D * 2;
  static constexpr int Q_BYTES = HB * D * 2;
  static constexpr int STAGE_BYTES = BN * ROWB;
  static constexpr int KV_BYTES = FP8 ? BN * D * 2 : 0;
  static constexpr int P_BYTES = HB * BN * 2;
  static constexpr int F_FLOATS = NWS * HB * 2 + HB * 2 + HB + HB;  // red_m, red_l, m_run[2], alpha, l_run
  static constexpr int SMEM = Q_BYTES + NST * STAGE_BYTES + KV_BYTES + P_BYTES + F_FLOATS * 4;
  static_assert(SMEM <= 232448, "shared memory");
};

struct MlaParams {
  const __nv_bfloat16* q;  // [B, h, 576]
  const uint8_t* kv;       // [B, s, row bytes]
  int B, h, s, nsplit, split_len;
  float scale_log2;        // softmax scale * log2(e)
  __nv_bfloat16* out;      // [B, h, 512]
  float* opart;            // [B, h, nsplit, 512]
  float* lse;              // [B, h, nsplit] (log2 domain)
};

template <int MT, int BN, bool FP8, int NST>
__global__ void __launch_bounds__(NTHREADS, (MT == 1 ? 2 : 1)) mla_decode_kernel(const MlaParams p) {
  using C = Cfg<MT, BN, FP8, NST>;
  constexpr int HB = C::HB;
  extern __shared__ __align__(128) uint8_t smem[];
  uint8_t* sQ = smem;
  uint8_t* sStage = smem + C::Q_BYTES;
  uint8_t* sKV = sStage + NST * C::STAGE_BYTES;  // fp8 only
  uint8_t* sP = sKV + C::KV_BYTES;
  float* red_m = reinterpret_cast<float*>(sP + C::P_BYTES);  // [NWS][HB]
  float* red_l = red_m + C::NWS * HB;                         // [NWS][HB]
  float* m_run = red_l + C::NWS * HB;                         // [2][HB]
  float* alpha = m_run + 2 * HB;                              // [HB]
  float* l_run = alpha + HB;                                  // [HB]

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int split = blockIdx.x, b = blockIdx.y, head0 = blockIdx.z * HB;
  const int tok0 = split * p.split_len;
  const int tok1 = min(p.s, tok0 + p.split_len);
  const int ntiles = (tok1 - tok0 + BN - 1) / BN;
  if (ntiles <= 0) return;  // never happens: the host picks splits that all hold tokens

  if (tid < HB) { m_run[HB + tid] = -INFINITY; l_run[tid] = 0.f; }

  // Q -> shared (swizzled), part of the first cp.async group.
  {
    const uint8_t* qsrc = reinterpret_cast<const uint8_t*>(p.q + ((size_t)b * p.h + head0) * D);
    const uint32_t base = smem_u32(sQ);
    for (int i = tid; i < HB * CH; i += NTHREADS) {
      int r = i / CH, c = i % CH;
      cp_async16(base + swz(r, c), qsrc + (size_t)r * D * 2 + c * 16, true);
    }
  }
  const uint8_t* kvb = p.kv + (size_t)b * p.s * C::ROWB;
  auto load_tile = [&](int t, int stage) {
    const int first = tok0 + t * BN;
    const uint32_t base = smem_u32(sStage + stage * C::STAGE_BYTES);
    if constexpr (FP8) {
      // Rows are contiguous in global and in the raw stage: a linear copy.
      constexpr int NCH = FP8_ROW / 16;  // 41
      for (int i = tid; i < BN * NCH; i += NTHREADS) {
        int r = i / NCH;
        bool valid = first + r < tok1;
        const uint8_t* src = kvb + (size_t)(valid ? first : tok0) * FP8_ROW + (valid ? i * 16 : 0);
        cp_async16(base + i * 16, src, valid);
      }
    } else {
      for (int i = tid; i < BN * CH; i += NTHREADS) {
        int r = i / CH, c = i % CH;
        bool valid = first + r < tok1;
        const uint8_t* src = kvb + (size_t)(valid ? first + r : tok0) * (D * 2) + c * 16;
        cp_async16(base + swz(r, c), src, valid);
      }
    }
  };

  // Prologue: tiles 0 .. NST-2 in flight (Q rides with tile 0).
#pragma unroll
  for (int i = 0; i < NST - 1; ++i) {
    if (i < ntiles) load_tile(i, i);
    cp_async_commit();
  }

  // Per-thread accumulators.
  float oacc[MT][8][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int k = 0; k < 4; ++k) oacc[i][j][k] = 0.f;

  const int mi = warp % MT, ni = warp / MT;  // S-phase role
  const uint32_t sQb = smem_u32(sQ), sPb = smem_u32(sP);

  for (int t = 0; t < ntiles; ++t) {
    if (t + NST - 1 < ntiles) load_tile(t + NST - 1, (t + NST - 1) % NST);
    cp_async_commit();
    cp_async_wait<NST - 1>();
    __syncthreads();  // (1) tile t (and Q) resident

    uint8_t* tile = sStage + (t % NST) * C::STAGE_BYTES;
    if constexpr (FP8) {
      // Dequantise raw stage -> bf16 swizzled tile. TPT threads per token; thread
      // (r = tid % BN, q = tid / BN) takes latent chunks q*CPT .. q*CPT+CPT-1 (one
      // scale group) and rope chunks; all loads first, then converts (ILP).
      {
        constexpr int TPT = NTHREADS / BN;   // 4 or 8
        constexpr int CPT = 64 / TPT;        // latent 16-byte output chunks per thread
        constexpr int RPT = 8 / TPT;         // rope chunks per thread
        const int r = tid % BN, q = tid / BN;
        const uint8_t* row = tile + r * FP8_ROW;
        const float sc = reinterpret_cast<const float*>(row + FP8_SCALE_OFF)[(q * CPT) / 16];
        uint4 raw[CPT / 2];
#pragma unroll
        for (int j = 0; j < CPT / 2; ++j) raw[j] = *reinterpret_cast<const uint4*>(row + q * CPT * 8 + j * 16);
        uint4 rope[RPT];
#pragma unroll
        for (int j = 0; j < RPT; ++j) rope[j] = *reinterpret_cast<const uint4*>(row + FP8_ROPE_OFF + (q * RPT + j) * 16);
#pragma unroll
        for (int j = 0; j < CPT / 2; ++j) {
          const __nv_fp8x2_storage_t* q2 = reinterpret_cast<const __nv_fp8x2_storage_t*>(&raw[j]);
          uint4 o[2];
          __nv_bfloat162* ob = reinterpret_cast<__nv_bfloat162*>(o);
#pragma unroll
          for (int k = 0; k < 8; ++k) {
            __half2_raw hr = __nv_cvt_fp8x2_to_halfraw2(q2[k], __NV_E4M3);
            float2 f = __half22float2(*reinterpret_cast<__half2*>(&hr));
            ob[k] = __floats2bfloat162_rn(f.x * sc, f.y * sc);
          }
          *reinterpret_cast<uint4*>(sKV + swz(r, q * CPT + 2 * j)) = o[0];
          *reinterpret_cast<uint4*>(sKV + swz(r, q * CPT + 2 * j + 1)) = o[1];
        }
#pragma unroll
        for (int j = 0; j < RPT; ++j) *reinterpret_cast<uint4*>(sKV + swz(r, 64 + q * RPT + j)) = rope[j];
      }
      __syncthreads();
      tile = sKV;
    }
    const uint32_t tb = smem_u32(tile);

    // ---- S = Q K^T for heads 16*mi.., tokens ni*TPW .. ----
    // NACC independent accumulator sets break the 36-long dependent MMA chain when a
    // warp has few n-tiles (h=16/32).
    constexpr int NACC = C::NTS >= 4 ? 1 : 4 / C::NTS;
    float sacc_all[NACC][C::NTS][4];
#pragma unroll
    for (int u = 0; u < NACC; ++u)
#pragma unroll
      for (int j = 0; j < C::NTS; ++j) sacc_all[u][j][0] = sacc_all[u][j][1] = sacc_all[u][j][2] = sacc_all[u][j][3] = 0.f;
    const bool s_warp = warp < C::SWARPS;
    if (s_warp) {
#pragma unroll(NACC == 1 ? 4 : 1)
    for (int kk0 = 0; kk0 < D / 16; kk0 += NACC) {
#pragma unroll
      for (int u = 0; u < NACC; ++u) {
        const int kk = kk0 + u;
        uint32_t a[4];
        ldsm_x4(sQb + swz(mi * 16 + (lane & 15), kk * 2 + (lane >> 4)), a[0], a[1], a[2], a[3]);
        if constexpr (C::NTS == 1) {
          uint32_t b0, b1;
          ldsm_x2(tb + swz(ni * C::TPW + (lane & 7), kk * 2 + ((lane >> 3) & 1)), b0, b1);
          mma16816(sacc_all[u][0], a, b0, b1);
        } else {
#pragma unroll
          for (int np = 0; np < C::NTS / 2; ++np) {
            uint32_t b0, b1, b2, b3;
            ldsm_x4(tb + swz(ni * C::TPW + np * 16 + (lane & 7) + ((lane >> 4) << 3), kk * 2 + ((lane >> 3) & 1)),
                    b0, b1, b2, b3);
            mma16816(sacc_all[u][2 * np], a, b0, b1);
            mma16816(sacc_all[u][2 * np + 1], a, b2, b3);
          }
        }
      }
    }
    }  // s_warp
    float (&sacc)[C::NTS][4] = sacc_all[0];
#pragma unroll
    for (int u = 1; u < NACC; ++u)
#pragma unroll
      for (int j = 0; j < C::NTS; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) sacc[j][e] += sacc_all[u][j][e];
    // Scale into the log2 domain, mask tokens past the split, row max.
    const int r0 = mi * 16 + (lane >> 2), r1 = r0 + 8;
    const int tbase = tok0 + t * BN + ni * C::TPW + 2 * (lane & 3);
    float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
    for (int j = 0; j < C::NTS; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        bool valid = tbase + j * 8 + e < tok1;
        sacc[j][e] = valid ? sacc[j][e] * p.scale_log2 : -INFINITY;
        sacc[j][2 + e] = valid ? sacc[j][2 + e] * p.scale_log2 : -INFINITY;
        mx0 = fmaxf(mx0, sacc[j][e]);
        mx1 = fmaxf(mx1, sacc[j][2 + e]);
      }
    }
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
      mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, off));
      mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, off));
    }
    if (s_warp && (lane & 3) == 0) { red_m[ni * HB + r0] = mx0; red_m[ni * HB + r1] = mx1; }
    __syncthreads();  // (2)

    if (s_warp) {
    const float* m_old_buf = m_run + ((t + 1) & 1) * HB;
    const float mo0 = m_old_buf[r0], mo1 = m_old_buf[r1];
    float mn0 = mo0, mn1 = mo1;
#pragma unroll
    for (int w = 0; w < C::NWS; ++w) { mn0 = fmaxf(mn0, red_m[w * HB + r0]); mn1 = fmaxf(mn1, red_m[w * HB + r1]); }
    float ls0 = 0.f, ls1 = 0.f;
#pragma unroll
    for (int j = 0; j < C::NTS; ++j) {
      float p0 = exp2f(sacc[j][0] - mn0), p1 = exp2f(sacc[j][1] - mn0);
      float p2 = exp2f(sacc[j][2] - mn1), p3 = exp2f(sacc[j][3] - mn1);
      ls0 += p0 + p1;
      ls1 += p2 + p3;
      const int col = ni * C::TPW + j * 8 + 2 * (lane & 3);  // token within tile
      *reinterpret_cast<__nv_bfloat162*>(sP + pswz<BN>(r0, col >> 3) + (col & 7) * 2) = __floats2bfloat162_rn(p0, p1);
      *reinterpret_cast<__nv_bfloat162*>(sP + pswz<BN>(r1, col >> 3) + (col & 7) * 2) = __floats2bfloat162_rn(p2, p3);
    }
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
      ls0 += __shfl_xor_sync(0xffffffffu, ls0, off);
      ls1 += __shfl_xor_sync(0xffffffffu, ls1, off);
    }
    if ((lane & 3) == 0) {
      red_l[ni * HB + r0] = ls0;
      red_l[ni * HB + r1] = ls1;
      if (ni == 0) {
        m_run[(t & 1) * HB + r0] = mn0;
        m_run[(t & 1) * HB + r1] = mn1;
        alpha[r0] = exp2f(mo0 - mn0);
        alpha[r1] = exp2f(mo1 - mn1);
      }
    }
    }  // s_warp
    __syncthreads();  // (3) P, alpha, red_l ready

    if (tid < HB) {
      float l = l_run[tid] * alpha[tid];
#pragma unroll
      for (int w = 0; w < C::NWS; ++w) l += red_l[w * HB + tid];
      l_run[tid] = l;
    }
    // ---- O = alpha * O + P V, value dims 64*warp .. +63 ----
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      const float a0 = alpha[m * 16 + (lane >> 2)], a1 = alpha[m * 16 + (lane >> 2) + 8];
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        oacc[m][j][0] *= a0; oacc[m][j][1] *= a0;
        oacc[m][j][2] *= a1; oacc[m][j][3] *= a1;
      }
    }
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk) {
      uint32_t a[MT][4];
#pragma unroll
      for (int m = 0; m < MT; ++m)
        ldsm_x4(sPb + pswz<BN>(m * 16 + (lane & 15), kk * 2 + (lane >> 4)), a[m][0], a[m][1], a[m][2], a[m][3]);
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        uint32_t b0, b1, b2, b3;
        ldsm_x4_t(tb + swz(kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), warp * 8 + np * 2 + (lane >> 4)), b0, b1,
                  b2, b3);
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          mma16816(oacc[m][2 * np], a[m], b0, b1);
          mma16816(oacc[m][2 * np + 1], a[m], b2, b3);
        }
      }
    }
    __syncthreads();  // (4) stage, P and stats free for the next tile
  }

  // ---- epilogue ----
  const float* m_fin = m_run + ((ntiles - 1) & 1) * HB;
#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int r = m * 16 + (lane >> 2) + hh * 8;
      const float inv = 1.f / l_run[r];
      const size_t bh = (size_t)b * p.h + head0 + r;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int col = warp * 64 + j * 8 + 2 * (lane & 3);
        float v0 = oacc[m][j][2 * hh] * inv, v1 = oacc[m][j][2 * hh + 1] * inv;
        if (p.nsplit == 1) {
          *reinterpret_cast<__nv_bfloat162*>(p.out + bh * DV + col) = __floats2bfloat162_rn(v0, v1);
        } else {
          *reinterpret_cast<float2*>(p.opart + (bh * p.nsplit + split) * DV + col) = make_float2(v0, v1);
        }
      }
    }
  }
  if (p.nsplit > 1 && tid < HB) {
    const size_t bh = (size_t)b * p.h + head0 + tid;
    p.lse[bh * p.nsplit + split] = m_fin[tid] + log2f(l_run[tid]);
  }
}

// ---------------------------------------------------------------------------
// FP8 cache, h = 16: register dequantisation (mla_fp8_kernel; instantiated for MT=1
// only: the MT=2 (h=32, 16 warps, one block per SM) form measured 7-10% slower than
// the shared-memory dequantisation kernel above on H200, see NOTES.md).
//
// The bf16-through-shared-memory dequantisation of the kernel above costs about
// 50 SM cycles per token in conversions alone (e4m3 -> f16 -> f32, x scale,
// f32 -> bf16 at 16/clk/SM), over the ~57 cycles per token that 70% of the H200's
// copy bandwidth allows at 656 bytes per token. This kernel converts e4m3 straight
// into tensor-core fragments with one cvt.rn.f16x2.e4m3x2 per pair (exact: every
// e4m3 value is an f16) and runs the latent parts of both products in f16; the
// per-128 scales never touch the cache values:
//   S  = 2^-e sum_c s_c[n] (Q'_c . k8_c[n]) + q_rope . k_rope[n]
//        (Q' = f16(q * 2^e), one power of two per block so |Q'| < 2^14; the four
//        chunk partials are folded with their scale in fp32; rope in bf16 MMA);
//   O_c = 2^-kr sum_n (P[n] s_c[n] 2^kr) . v8_c[n]
//        (P'_c = f16(P * s_c * 2^kr): the scale goes into P, per chunk; kr is a
//        running power of two per split with max s * 2^kr < 2^7, so P'_c <= 128 and
//        the rescale of O when kr drops rides on the softmax alpha).
// Warp roles (8*MT warps, 32-token tiles):
//   S:  h=16: warp (c, j): latent chunk c (128 dims: Q' fragments in 32 registers),
//       token half j (16 tokens); h=32: warp (c, j, kh): 64-dim block kh of chunk c
//       for both head tiles (every e4m3 value is converted once). B fragments from one
//       16-byte shared load per 4 k-steps (the k order inside each 64-dim block is
//       permuted so a thread's 4 bytes per k-step are contiguous; Q is loaded with the
//       same permutation); rope k-step c in bf16; partial S per slice -> shared memory;
//   softmax: 16 threads per head (a half-warp: max and sum by shuffles), running
//       m, l and kr in registers, P'_c -> shared memory (f16);
//   PV: warp w: value dims 64w/MT..; B fragments gathered from two token rows with
//       PRMT, then the same cvt. The value-dim order inside each 32-dim group is
//       permuted (a thread owns 8 consecutive output dims).
// Raw tile in shared memory (cp.async, NST stages): latent [32][512] with 16-byte
// chunks XOR-swizzled by f8sw(row) (conflict-free for both access patterns),
// scales [32][4] fp32, rope [32][64] bf16 swizzled for ldmatrix.
// ---------------------------------------------------------------------------
__device__ __forceinline__ int f8sw(int r) { return (r & 6) ^ ((r & 1) << 2); }

__device__ __forceinline__ void mma16816_f16(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void mma16816_bf16(float* c, const uint32_t* a, uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// Four e4m3 bytes (b0 lowest) -> lo = f16x2(b0, b1), hi = f16x2(b2, b3).
__device__ __forceinline__ void cvt_e4m3x4(uint32_t w, uint32_t& lo, uint32_t& hi) {
  asm("{\n .reg .b16 l, h;\n mov.b32 {l, h}, %2;\n cvt.rn.f16x2.e4m3x2 %0, l;\n cvt.rn.f16x2.e4m3x2 %1, h;\n}\n"
      : "=r"(lo), "=r"(hi)
      : "r"(w));
}
__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t sel) {
  uint32_t d;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(sel));
  return d;
}
__device__ __forceinline__ uint32_t f16x2_bits(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}
__device__ __forceinline__ uint32_t bf16x2_bits(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}
__device__ __forceinline__ float ex2f(float x) {  // ex2.approx.ftz: 2^-inf = 0
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
__device__ __forceinline__ float pow2i(int e) { return __int_as_float((e + 127) << 23); }  // |e| <= 126
__device__ __forceinline__ int exponent_of(float v) { return (int)((__float_as_uint(v) >> 23) & 0xff) - 127; }

template <int MT, int NST>
struct F8Cfg {
  static constexpr int HB = 16 * MT, NW = 8 * MT, NT = 32 * NW, BN = 32;
  static constexpr int PSS = BN + 8;  // floats per partial-S row (bank padding)
  static constexpr int LAT = BN * 512, ROPE = BN * 128, SC = BN * 16;
  static constexpr int STAGE = LAT + ROPE + SC;
  // S warps: MT=1: warp (c, j) takes both 64-dim blocks of chunk c; MT=2: warp (c, j, kh)
  // takes block kh of chunk c for both head tiles (each e4m3 value is converted once).
  static constexpr int NBLK = MT == 1 ? 2 : 1;   // 64-dim blocks per S warp
  static constexpr int NSL = 4 * (2 / NBLK);     // partial-S slices
  static constexpr int PS = NSL * HB * PSS * 4;  // partial S [slice][head][token] fp32
  static constexpr int PP = 4 * HB * BN * 2;   // P'_c [chunk][head][token] f16
  static constexpr int FB = (3 * HB + 32) * 4;
  static constexpr int SMEM = NST * STAGE + PS + PP + FB;
  static_assert(SMEM <= (MT == 1 ? 113 * 1024 : 227 * 1024), "shared memory");
};

template <int MT, int NST>
__global__ void __launch_bounds__(256 * MT, (MT == 1 ? 2 : 1)) mla_fp8_kernel(const MlaParams p) {
  using C = F8Cfg<MT, NST>;
  constexpr int HB = C::HB, NT = C::NT, BN = C::BN, PSS = C::PSS;
  constexpr int DPW = 64 / MT;  // value dims per warp in PV
  extern __shared__ __align__(128) uint8_t smem[];
  uint8_t* sStage = smem;
  float* sPS = reinterpret_cast<float*>(smem + NST * C::STAGE);
  uint8_t* sPP = smem + NST * C::STAGE + C::PS;
  float* sFac = reinterpret_cast<float*>(sPP + C::PP);
  float* sL = sFac + HB;
  float* sM = sL + HB;
  float* sQmax = sM + HB;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int g = lane >> 2, t4 = lane & 3;
  const int split = blockIdx.x, b = blockIdx.y, head0 = blockIdx.z * HB;
  const int tok0 = split * p.split_len;
  const int tok1 = min(p.s, tok0 + p.split_len);
  const int ntiles = (tok1 - tok0 + BN - 1) / BN;
  if (ntiles <= 0) return;  // never: the host picks splits that all hold tokens

  const uint8_t* kvb = p.kv + (size_t)b * p.s * FP8_ROW;
  // Fixed thread -> chunk map (no division, no branches on the chunk kind): latent
  // chunk q = tid & 31 of rows tid/32 + k*NT/32 (a warp copies one 512-byte row),
  // rope chunk tid & 7 of row tid/8, scales by threads 0..31. Rows past the split
  // are zero-filled (source: the tile's first row, always valid).
  auto load_tile = [&](int tt, int stage) {
    const int first = tok0 + tt * BN;
    const int nvalid = tok1 - first;
    const uint8_t* rows = kvb + (size_t)first * FP8_ROW;
    const uint32_t lat = smem_u32(sStage + stage * C::STAGE), rope = lat + C::LAT, sc = rope + C::ROPE;
    const int q = tid & 31;
#pragma unroll
    for (int k = 0; k < BN * 32 / NT; ++k) {
      const int r = (tid >> 5) + k * (NT / 32);
      const bool valid = r < nvalid;
      cp_async16(lat + r * 512 + ((q ^ f8sw(r)) << 4), rows + (valid ? r * FP8_ROW : 0) + q * 16, valid);
    }
    if (tid < BN * 8) {
      const int r = tid >> 3, qr8 = tid & 7;
      const bool valid = r < nvalid;
      cp_async16(rope + r * 128 + ((qr8 ^ (r & 7)) << 4), rows + (valid ? r * FP8_ROW : 0) + FP8_ROPE_OFF + qr8 * 16,
                 valid);
    }
    if (tid < BN) {
      const bool valid = tid < nvalid;
      cp_async16(sc + tid * 16, rows + (valid ? tid * FP8_ROW : 0) + FP8_SCALE_OFF, valid);
    }
  };
#pragma unroll
  for (int i = 0; i < NST - 1; ++i) {
    if (i < ntiles) load_tile(i, i);
    cp_async_commit();
  }

  // ---- Q: one power of two per block, |q * 2^e| < 2^14 over the latent dims ----
  const __nv_bfloat16* qb = p.q + ((size_t)b * p.h + head0) * D;
  {
    float mx = 0.f;
    for (int i = tid; i < HB * 64; i += NT) {
      const uint4 v = __ldg(reinterpret_cast<const uint4*>(qb + (size_t)(i >> 6) * D + (i & 63) * 8));
      const __nv_bfloat162* h2 = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float2 f = __bfloat1622float2(h2[k]);
        mx = fmaxf(mx, fmaxf(fabsf(f.x), fabsf(f.y)));
      }
    }
    mx = __uint_as_float(__reduce_max_sync(0xffffffffu, __float_as_uint(mx)));  // non-negative floats
    if (lane == 0) sQmax[warp] = mx;
  }
  __syncthreads();
  float qmax = 0.f;
#pragma unroll
  for (int w = 0; w < C::NW; ++w) qmax = fmaxf(qmax, sQmax[w]);
  const int qe = min(100, max(-100, 13 - exponent_of(qmax)));
  const float qsc = pow2i(qe);
  const float fq = pow2i(-qe) * p.scale_log2;  // folds 2^-e and the softmax scale

  // S role and Q fragments (f16 latent, k order permuted; bf16 rope, standard).
  constexpr int NBLK = C::NBLK, NSL = C::NSL;
  const int sc_c = warp & 3, sc_j = (warp >> 2) & 1, sc_kh = MT == 1 ? 0 : (warp >> 3);
  const int sc_slice = MT == 1 ? sc_c : 2 * sc_c + sc_kh;
  uint32_t qa[NBLK][MT][4][4], qr[4];
  {
#pragma unroll
    for (int lb = 0; lb < NBLK; ++lb) {
      const int blk = MT == 1 ? lb : sc_kh;
      const int d = 128 * sc_c + 64 * blk + 16 * t4;
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        const __nv_bfloat16* q0 = qb + (size_t)(16 * m + g) * D;
        const __nv_bfloat16* q1 = q0 + 8 * D;
        float x0[16], x1[16];
#pragma unroll
        for (int hlf = 0; hlf < 2; ++hlf) {
          const uint4 v0 = __ldg(reinterpret_cast<const uint4*>(q0 + d + 8 * hlf));
          const uint4 v1 = __ldg(reinterpret_cast<const uint4*>(q1 + d + 8 * hlf));
          const __nv_bfloat162* a0 = reinterpret_cast<const __nv_bfloat162*>(&v0);
          const __nv_bfloat162* a1 = reinterpret_cast<const __nv_bfloat162*>(&v1);
#pragma unroll
          for (int k = 0; k < 4; ++k) {
            const float2 f0 = __bfloat1622float2(a0[k]), f1 = __bfloat1622float2(a1[k]);
            x0[8 * hlf + 2 * k] = f0.x * qsc; x0[8 * hlf + 2 * k + 1] = f0.y * qsc;
            x1[8 * hlf + 2 * k] = f1.x * qsc; x1[8 * hlf + 2 * k + 1] = f1.y * qsc;
          }
        }
#pragma unroll
        for (int ks = 0; ks < 4; ++ks) {
          qa[lb][m][ks][0] = f16x2_bits(x0[4 * ks], x0[4 * ks + 1]);
          qa[lb][m][ks][1] = f16x2_bits(x1[4 * ks], x1[4 * ks + 1]);
          qa[lb][m][ks][2] = f16x2_bits(x0[4 * ks + 2], x0[4 * ks + 3]);
          qa[lb][m][ks][3] = f16x2_bits(x1[4 * ks + 2], x1[4 * ks + 3]);
        }
      }
    }
    // Rope k-step sc_c for head tile sc_kh.
    const __nv_bfloat16* q0 = qb + (size_t)(16 * sc_kh + g) * D;
    const __nv_bfloat16* q1 = q0 + 8 * D;
    const int dr = 512 + 16 * sc_c + 2 * t4;
    qr[0] = __ldg(reinterpret_cast<const uint32_t*>(q0 + dr));
    qr[1] = __ldg(reinterpret_cast<const uint32_t*>(q1 + dr));
    qr[2] = __ldg(reinterpret_cast<const uint32_t*>(q0 + dr + 8));
    qr[3] = __ldg(reinterpret_cast<const uint32_t*>(q1 + dr + 8));
  }

  // Softmax role: head sh, tokens 2tp, 2tp+1 of each tile. State kept in registers
  // (identical in the 16 threads of a head).
  const int sh = tid >> 4, tp = tid & 15;
  float m_run = -INFINITY, l_run = 0.f;
  int kr = 100;
  // PV role.
  const int dbase = DPW * warp, cpv = dbase >> 7;
  float oacc[MT][DPW / 8][4];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int j = 0; j < DPW / 8; ++j) oacc[m][j][0] = oacc[m][j][1] = oacc[m][j][2] = oacc[m][j][3] = 0.f;

  for (int tt = 0; tt < ntiles; ++tt) {
    cp_async_wait<NST - 2>();
    __syncthreads();  // (A) tile tt resident; everything of tile tt-1 done
    if (tt + NST - 1 < ntiles) load_tile(tt + NST - 1, (tt + NST - 1) % NST);
    cp_async_commit();
    const uint8_t* sLat = sStage + (tt % NST) * C::STAGE;
    const uint32_t sRope = smem_u32(sLat + C::LAT);
    const float* sSc = reinterpret_cast<const float*>(sLat + C::LAT + C::ROPE);

    // ---- S partials ----
    {
      float sl[MT][2][4], sr[2][4];
#pragma unroll
      for (int nt = 0; nt < 2; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          sr[nt][e] = 0.f;
#pragma unroll
          for (int m = 0; m < MT; ++m) sl[m][nt][e] = 0.f;
        }
#pragma unroll
      for (int lb = 0; lb < NBLK; ++lb) {
        const int blk = MT == 1 ? lb : sc_kh;
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
          const int row = 16 * sc_j + 8 * nt + g;
          const uint4 raw =
              *reinterpret_cast<const uint4*>(sLat + row * 512 + (((8 * sc_c + 4 * blk + t4) ^ f8sw(row)) << 4));
          const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
          for (int ks = 0; ks < 4; ++ks) {
            uint32_t b0, b1;
            cvt_e4m3x4(w[ks], b0, b1);
#pragma unroll
            for (int m = 0; m < MT; ++m) mma16816_f16(sl[m][nt], qa[lb][m][ks], b0, b1);
          }
        }
      }
      {
        const int row = 16 * sc_j + (lane & 7) + ((lane >> 4) << 3);
        const int ch = 2 * sc_c + ((lane >> 3) & 1);
        uint32_t b0, b1, b2, b3;
        ldsm_x4(sRope + row * 128 + ((ch ^ (row & 7)) << 4), b0, b1, b2, b3);
        mma16816_bf16(sr[0], qr, b0, b1);
        mma16816_bf16(sr[1], qr, b2, b3);
      }
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        const int n0 = 16 * sc_j + 8 * nt + 2 * t4;
        const float f0 = sSc[n0 * 4 + sc_c] * fq, f1 = sSc[n0 * 4 + 4 + sc_c] * fq;
#pragma unroll
        for (int m = 0; m < MT; ++m) {
          // This warp's rope partial goes to head tile sc_kh (weight 0 for the other).
          const float rw = (MT == 1 || m == sc_kh) ? p.scale_log2 : 0.f;
          float* ps = sPS + (sc_slice * HB + 16 * m + g) * PSS + n0;
          *reinterpret_cast<float2*>(ps) =
              make_float2(fmaf(sl[m][nt][0], f0, sr[nt][0] * rw), fmaf(sl[m][nt][1], f1, sr[nt][1] * rw));
          *reinterpret_cast<float2*>(ps + 8 * PSS) =
              make_float2(fmaf(sl[m][nt][2], f0, sr[nt][2] * rw), fmaf(sl[m][nt][3], f1, sr[nt][3] * rw));
        }
      }
    }
    __syncthreads();  // (B) partial S complete

    // ---- softmax, P'_c ----
    {
      const int n0 = 2 * tp;
      float s0 = 0.f, s1 = 0.f;
#pragma unroll
      for (int c = 0; c < NSL; ++c) {
        const float2 v = *reinterpret_cast<const float2*>(sPS + (c * HB + sh) * PSS + n0);
        s0 += v.x;
        s1 += v.y;
      }
      const int tk = tok0 + tt * BN + n0;
      if (tk >= tok1) s0 = -INFINITY;
      if (tk + 1 >= tok1) s1 = -INFINITY;
      float mx = fmaxf(s0, s1);
#pragma unroll
      for (int off = 1; off < 16; off <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float mnew = fmaxf(m_run, mx);
      const float alpha = ex2f(m_run - mnew);
      const float p0 = ex2f(s0 - mnew), p1 = ex2f(s1 - mnew);
      // l_run is this thread's partial sum (its two tokens of every tile so far; alpha
      // is uniform over the head's 16 threads): summed over them once, in the epilogue.
      l_run = fmaf(l_run, alpha, p0 + p1);
      m_run = mnew;
      // Scales of this thread's two tokens; the tile's max |scale| -> kr.
      const float4 c0 = *reinterpret_cast<const float4*>(sSc + n0 * 4);
      const float4 c1 = *reinterpret_cast<const float4*>(sSc + n0 * 4 + 4);
      float smx = fmaxf(fmaxf(fmaxf(fabsf(c0.x), fabsf(c0.y)), fmaxf(fabsf(c0.z), fabsf(c0.w))),
                        fmaxf(fmaxf(fabsf(c1.x), fabsf(c1.y)), fmaxf(fabsf(c1.z), fabsf(c1.w))));
      // Tile max |scale| over the whole warp (both half-warps cover all 32 tokens of the
      // tile, so every thread of the block gets the same value): one REDUX on the bits of
      // a non-negative float instead of 4 shuffles + 4 max.
      smx = __uint_as_float(__reduce_max_sync(0xffffffffu, __float_as_uint(smx)));
      const int kold = kr;
      kr = max(-100, min(kr, 6 - exponent_of(smx)));  // max |s| * 2^kr < 2^7
      const float pw = pow2i(kr);
      const float a0 = p0 * pw, a1 = p1 * pw;
      const float cc0[4] = {c0.x, c0.y, c0.z, c0.w}, cc1[4] = {c1.x, c1.y, c1.z, c1.w};
#pragma unroll
      for (int c = 0; c < 4; ++c)
        *reinterpret_cast<uint32_t*>(sPP + c * (HB * BN * 2) + pswz<BN>(sh, tp >> 2) + (tp & 3) * 4) =
            f16x2_bits(a0 * cc0[c], a1 * cc1[c]);
      if (tp == 0) sFac[sh] = alpha * pow2i(max(-126, kr - kold));
    }
    __syncthreads();  // (C) P'_c and the O factors ready

    // ---- O_c = fac * O_c + P'_c V8 ----
    {
      float fr[MT][2];
      bool rescale = false;
#pragma unroll
      for (int m = 0; m < MT; ++m) {
        fr[m][0] = sFac[16 * m + g];
        fr[m][1] = sFac[16 * m + g + 8];
        rescale |= (fr[m][0] != 1.f) | (fr[m][1] != 1.f);
      }
      if (__any_sync(0xffffffffu, rescale)) {  // most tiles: running max and kr unchanged
#pragma unroll
        for (int m = 0; m < MT; ++m)
#pragma unroll
          for (int j = 0; j < DPW / 8; ++j) {
            oacc[m][j][0] *= fr[m][0]; oacc[m][j][1] *= fr[m][0];
            oacc[m][j][2] *= fr[m][1]; oacc[m][j][3] *= fr[m][1];
          }
      }
      const uint32_t ppc = smem_u32(sPP + cpv * (HB * BN * 2));
#pragma unroll
      for (int kk = 0; kk < BN / 16; ++kk) {
        uint32_t a[MT][4];
#pragma unroll
        for (int m = 0; m < MT; ++m)
          ldsm_x4(ppc + pswz<BN>(16 * m + (lane & 15), 2 * kk + (lane >> 4)), a[m][0], a[m][1], a[m][2], a[m][3]);
        const int r0 = 16 * kk + 2 * t4;
#pragma unroll
        for (int G = 0; G < DPW / 32; ++G) {
          const int d0 = dbase + 32 * G + 4 * g;
          const int ch = d0 >> 4, wi = d0 & 15;
          const uint32_t w0 = *reinterpret_cast<const uint32_t*>(sLat + r0 * 512 + ((ch ^ f8sw(r0)) << 4) + wi);
          const uint32_t w1 =
              *reinterpret_cast<const uint32_t*>(sLat + (r0 + 1) * 512 + ((ch ^ f8sw(r0 + 1)) << 4) + wi);
          const uint32_t w2 =
              *reinterpret_cast<const uint32_t*>(sLat + (r0 + 8) * 512 + ((ch ^ f8sw(r0 + 8)) << 4) + wi);
          const uint32_t w3 =
              *reinterpret_cast<const uint32_t*>(sLat + (r0 + 9) * 512 + ((ch ^ f8sw(r0 + 9)) << 4) + wi);
          uint32_t b0[4], b1[4];
          cvt_e4m3x4(prmt(w0, w1, 0x5140), b0[0], b0[1]);
          cvt_e4m3x4(prmt(w0, w1, 0x7362), b0[2], b0[3]);
          cvt_e4m3x4(prmt(w2, w3, 0x5140), b1[0], b1[1]);
          cvt_e4m3x4(prmt(w2, w3, 0x7362), b1[2], b1[3]);
#pragma unroll
          for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int m = 0; m < MT; ++m) mma16816_f16(oacc[m][4 * G + i], a[m], b0[i], b1[i]);
        }
      }
    }
  }

  // ---- epilogue: O = O_acc * 2^-kr / l ----
#pragma unroll
  for (int off = 1; off < 16; off <<= 1) l_run += __shfl_xor_sync(0xffffffffu, l_run, off);
  if (tp == 0) { sL[sh] = l_run; sM[sh] = m_run; }
  __syncthreads();
  const float kscale = pow2i(-kr);
#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int r = 16 * m + g + 8 * hh;
      const float inv = kscale / sL[r];
      const size_t bh = (size_t)b * p.h + head0 + r;
#pragma unroll
      for (int G = 0; G < DPW / 32; ++G) {
        float v[8];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          v[i] = oacc[m][4 * G + i][2 * hh] * inv;
          v[4 + i] = oacc[m][4 * G + i][2 * hh + 1] * inv;
        }
        const int d = dbase + 32 * G + 8 * t4;
        if (p.nsplit == 1) {
          uint4 o;
          o.x = bf16x2_bits(v[0], v[1]); o.y = bf16x2_bits(v[2], v[3]);
          o.z = bf16x2_bits(v[4], v[5]); o.w = bf16x2_bits(v[6], v[7]);
          *reinterpret_cast<uint4*>(p.out + bh * DV + d) = o;
        } else {
          float4* dst = reinterpret_cast<float4*>(p.opart + (bh * p.nsplit + split) * DV + d);
          dst[0] = make_float4(v[0], v[1], v[2], v[3]);
          dst[1] = make_float4(v[4], v[5], v[6], v[7]);
        }
      }
    }
  }
  if (p.nsplit > 1 && tid < HB) {
    const size_t bh = (size_t)b * p.h + head0 + tid;
    p.lse[bh * p.nsplit + split] = sM[tid] + log2f(sL[tid]);
  }
}

// ---------------------------------------------------------------------------
// FP8 cache, h = 32: wgmma kernel (mla_wg_kernel; sm_90a).
//
// One block of two warpgroups per SM, 64-token tiles (cp.async, 3 stages, same raw
// tile layout as mla_fp8_kernel). Warpgroup wg owns latent chunks 2wg, 2wg+1 (value
// dims 256wg..256wg+255) and rope k-steps 2wg, 2wg+1. Both products on wgmma with
// the cache side as the register A operand (so M = 64 tokens / 64 value dims and
// no head padding), converted from e4m3 with one cvt.rn.f16x2.e4m3x2 per pair:
//   S^T = K Q^T  : m64n32k16, A = K (64 tokens x 16 dims, from the raw tile; the k
//                  order inside each 64-dim block is permuted so one 16-byte load
//                  feeds 4 k-steps), B = Q' (f16, 2^e-scaled; permuted the same way)
//                  from shared memory; per-chunk accumulators folded with the
//                  per-token scales in fp32; rope in bf16 (A by ldmatrix).
//                  The two warpgroups' partial S (8 KB each) are exchanged through
//                  shared memory: S = mine + other in both (a + b == b + a, so the
//                  softmax below is computed identically by both).
//   softmax      : per head = per column of S^T: max over the warp's 16 tokens by
//                  shuffles, over the 4 warps through shared memory; running m, l,
//                  kr per thread (replicated); P'_c = P * s_c[token] * 2^kr (f16,
//                  < 2^7) -> shared memory transposed by stmatrix.trans ([head][token],
//                  K-major core matrices).
//   O^T += V^T P'^T : m64n32k16, A = V^T (64 value dims x 16 tokens, gathered from
//                  four token rows with PRMT + the same cvt; value-dim order permuted
//                  inside each 32-dim group, undone in the epilogue), B = P'_c.
// O^T accumulators: 4 m-tiles x 16 fp32 per thread. No swizzle: every B operand is
// stored as 8x16-byte core matrices, k-step K at K*1024, core (n-group, k-group) at
// +256*ng + 128*kg.
// ---------------------------------------------------------------------------
// Descriptor of a K-major, unswizzled operand: LBO = byte stride of core matrices along K,
// SBO = along N (the PTX ISA's definition; the swapped roles fail the checks, H200 dev run).
__device__ __forceinline__ uint64_t wg_desc(uint32_t saddr) {
  constexpr uint64_t lbo = 128, sbo = 256;
  return (uint64_t)((saddr & 0x3FFFF) >> 4) | ((lbo >> 4) << 16) | ((sbo >> 4) << 32);
}
__device__ __forceinline__ void wg_fence() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wg_commit() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory"); }
__device__ __forceinline__ void wg_reg_fence(float (&d)[16]) {
#pragma unroll
  for (int i = 0; i < 16; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
#define MLA_WG_D16                                                                                                  \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),       \
      "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
#define MLA_WG_D16_OUT                                                                                              \
  "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]), "=f"(d[6]), "=f"(d[7]), "=f"(d[8]),       \
      "=f"(d[9]), "=f"(d[10]), "=f"(d[11]), "=f"(d[12]), "=f"(d[13]), "=f"(d[14]), "=f"(d[15])
// D[64x32] (+)= A[64x16] (registers) * B[16x32] (shared, K-major). ACC = false: D is
// output-only (scale-d = 0), so the old accumulator values are not live before it.
template <bool ACC>
__device__ __forceinline__ void wg_mma_f16(float (&d)[16], const uint32_t (&a)[4], uint64_t db) {
  if constexpr (!ACC) {
    asm volatile(
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15},"
        " {%16,%17,%18,%19}, %20, 0, 1, 1, 0;\n"
        : MLA_WG_D16_OUT
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
    return;
  }
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %21, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15},"
      " {%16,%17,%18,%19}, %20, p, 1, 1, 0;\n}\n"
      : MLA_WG_D16
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "n"(ACC ? 1 : 0));
}
template <bool ACC>
__device__ __forceinline__ void wg_mma_bf16(float (&d)[16], const uint32_t (&a)[4], uint64_t db) {
  if constexpr (!ACC) {
    asm volatile(
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15},"
        " {%16,%17,%18,%19}, %20, 0, 1, 1, 0;\n"
        : MLA_WG_D16_OUT
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
    return;
  }
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %21, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15},"
      " {%16,%17,%18,%19}, %20, p, 1, 1, 0;\n}\n"
      : MLA_WG_D16
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "n"(ACC ? 1 : 0));
}
__device__ __forceinline__ void stsm_x4_t(uint32_t addr, uint32_t r0, uint32_t r1, uint32_t r2, uint32_t r3) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1,%2,%3,%4};\n" ::"r"(addr), "r"(r0), "r"(r1),
               "r"(r2), "r"(r3)
               : "memory");
}
__device__ __forceinline__ void fence_async_smem() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
__device__ __forceinline__ void bar_wg(int id) { asm volatile("bar.sync %0, 128;\n" ::"r"(id) : "memory"); }

struct WgCfg {
  static constexpr int NT = 256, BN = 64, NST = 3, HB = 32;
  static constexpr int LAT = BN * 512, ROPE = BN * 128, SC = BN * 16;
  static constexpr int STAGE = LAT + ROPE + SC;          // 41984
  static constexpr int Q_OFF = NST * STAGE;              // 36 k-steps x 1 KB
  static constexpr int P_OFF = Q_OFF + 36 * 1024;        // [wg][chunk][kstep] x 1 KB
  static constexpr int X_OFF = P_OFF + 16 * 1024;        // partial S [wg][4][128] float4
  static constexpr int R_OFF = X_OFF + 16 * 1024;        // red [wg][warp][t4][8] floats
  static constexpr int F_OFF = R_OFF + 2 * 4 * 32 * 4;   // smx [wg][4], qmax [8]
  static constexpr int SMEM = F_OFF + 16 * 4;
  static_assert(SMEM <= 227 * 1024, "shared memory");
};

// Tile tt of the split -> raw stage at shared address st (256 threads; layout as in
// mla_fp8_kernel). Full tiles take a path with thread-constant offsets and no predicates.
__device__ __forceinline__ void wg_load_tile(const uint8_t* kvb, int tok0, int tok1, int tt, uint32_t st) {
  constexpr int NT = WgCfg::NT, BN = WgCfg::BN;
  const int tid = threadIdx.x;
  const int first = tok0 + tt * BN;
  const int nvalid = tok1 - first;
  const uint8_t* rows = kvb + (size_t)first * FP8_ROW;
  const uint32_t lat = st, rope = st + WgCfg::LAT, sc = rope + WgCfg::ROPE;
  const int q = tid & 31, r0 = tid >> 5, qr8 = tid & 7, rr0 = tid >> 3;
  if (nvalid >= BN) {
    const uint8_t* src = rows + r0 * FP8_ROW + q * 16;
    const uint32_t dst = lat + r0 * 512 + ((q ^ f8sw(r0)) << 4);
#pragma unroll
    for (int k = 0; k < BN * 32 / NT; ++k) cp_async16(dst + k * (NT / 32) * 512, src + k * (NT / 32) * FP8_ROW, true);
    const uint8_t* srcr = rows + rr0 * FP8_ROW + FP8_ROPE_OFF + qr8 * 16;
    const uint32_t dstr = rope + rr0 * 128 + ((qr8 ^ (rr0 & 7)) << 4);
#pragma unroll
    for (int k = 0; k < BN * 8 / NT; ++k) cp_async16(dstr + k * (NT / 8) * 128, srcr + k * (NT / 8) * FP8_ROW, true);
    if (tid < BN) cp_async16(sc + tid * 16, rows + tid * FP8_ROW + FP8_SCALE_OFF, true);
    return;
  }
#pragma unroll
  for (int k = 0; k < BN * 32 / NT; ++k) {
    const int r = r0 + k * (NT / 32);
    const bool valid = r < nvalid;
    cp_async16(lat + r * 512 + ((q ^ f8sw(r)) << 4), rows + (valid ? r * FP8_ROW : 0) + q * 16, valid);
  }
#pragma unroll
  for (int k = 0; k < BN * 8 / NT; ++k) {
    const int r = rr0 + k * (NT / 8);
    const bool valid = r < nvalid;
    cp_async16(rope + r * 128 + ((qr8 ^ (r & 7)) << 4), rows + (valid ? r * FP8_ROW : 0) + FP8_ROPE_OFF + qr8 * 16,
               valid);
  }
  if (tid < BN) {
    const bool valid = tid < nvalid;
    cp_async16(sc + tid * 16, rows + (valid ? tid * FP8_ROW : 0) + FP8_SCALE_OFF, valid);
  }
}

// Main loop and epilogue of warpgroup WG (a template so that every shared-memory
// descriptor and chunk offset is a compile-time offset from a uniform base).
// Session 4b: the softmax is split by heads (warpgroup wg owns head columns j = 2wg,
// 2wg+1 of the S^T fragment, i.e. heads 16wg..16wg+15, and writes P'_c of all four
// chunks for them; alpha * 2^dkr of its heads goes to the other warpgroup through
// shared memory; kr is block-wide from all four scales). Each thread keeps 8 scores
// instead of 16: half the exponentials, max shuffles and partial-S traffic.
// PIPE (splits of >= 128 tiles): software-pipelined loop. Per tile tt: barrier A, copy,
// S wgmmas of tile tt+1 for chunk 2wg + rope (tensor) under the softmax of tile tt (ALU),
// barrier C, wait + fold of those, PV k-steps 0-1, S chunk 2wg+1 of tile tt+1 (its
// conversion under the PV wgmmas), wait for PV 0-1, PV k-steps 2-3, wait, S exchange
// (barrier B) -> scores of tile tt+1. Measured 1.4-2.5% faster than the plain loop at
// 128-512 tiles per split (H200 dev), slower below (extra S past the last tile, prologue).
#ifndef MLA_WG_PIPE
#define MLA_WG_PIPE 1  // 1: S of tile tt+1 issued before the softmax of tile tt (session 4b)
#endif
#ifndef MLA_WG_PVW
#define MLA_WG_PVW 0  // dev: 1 = PV wait after the S conversions (C7513: ptxas serialises the wgmmas)
#endif
template <int WG, bool PIPE>
__device__ __forceinline__ void mla_wg_loop(const MlaParams& p, uint8_t* smem, const uint8_t* kvb, int tok0, int tok1,
                                            int ntiles, float fq) {
  using C = WgCfg;
  constexpr int BN = C::BN, NST = C::NST, wg = WG;
  uint8_t* sStage = smem;
  float4* sX = reinterpret_cast<float4*>(smem + C::X_OFF);         // partial S [writer wg][jj][128]
  float4* sF = reinterpret_cast<float4*>(smem + C::X_OFF + 8192);  // alpha * 2^dkr [wg][128]
  float* sRed = reinterpret_cast<float*>(smem + C::R_OFF);         // [wg][warp][t4][4]
  float* sSmx = reinterpret_cast<float*>(smem + C::F_OFF);
  const int tid = threadIdx.x, lane = tid & 31, wl = (tid >> 5) & 3, wtid = tid & 127;
  const int g = lane >> 2, t4 = lane & 3;
  const int split = blockIdx.x, b = blockIdx.y;
  const uint32_t sQb = smem_u32(smem + C::Q_OFF);
  const uint32_t sPb = smem_u32(smem + C::P_OFF);
  const uint32_t sPw = sPb + wg * 8192;
  // Per-thread softmax state for the own heads 8(2wg + jj) + 2t4 + e (k = 2jj + e).
  float m_run[4], l_run[4];
#pragma unroll
  for (int k = 0; k < 4; ++k) { m_run[k] = -INFINITY; l_run[k] = 0.f; }
  int kr = 100;
  float oacc[4][16];
#pragma unroll
  for (int m = 0; m < 4; ++m)
#pragma unroll
    for (int i = 0; i < 16; ++i) oacc[m][i] = 0.f;

  const int rg = 16 * wl + g;  // token rows rg, rg + 8 of the tile (S phase)
  int s_off[2], v_off[2][2];
#pragma unroll
  for (int blk = 0; blk < 2; ++blk) s_off[blk] = rg * 512 + (((4 * blk + t4) ^ f8sw(rg)) << 4) + 128 * 2 * wg;
#pragma unroll
  for (int G = 0; G < 2; ++G)
#pragma unroll
    for (int u = 0; u < 2; ++u) {
      const int db = 256 * wg + 128 * G + 32 * wl + 4 * g, T = 2 * t4 + u;
      v_off[G][u] = T * 512 + (((db >> 4) ^ f8sw(T)) << 4) + (db & 15);
    }

  if constexpr (PIPE) {
  // Software-pipelined loop (session 4b): the S wgmmas of tile tt+1 are issued before the
  // softmax of tile tt, so the softmax (ALU) runs under them (tensor). so[] holds the
  // complete, scaled, masked scores of the own heads of the tile being finished.
  float acc0[16], acc1[16], accr[16];
  uint32_t ak[2][2][4][4];
  uint32_t ar[2][4];
  float so[8];
  // K conversion + S wgmmas of chunk CI of tile t (stage at sLat), with the rope k-steps
  // for CI = 0; committed as one group, not waited.
  auto s_issue = [&](const uint8_t* sLat, auto cic) {
    constexpr int ci = decltype(cic)::value;
    const uint32_t sRope = smem_u32(sLat + C::LAT);
    {
#pragma unroll
      for (int blk = 0; blk < 2; ++blk) {
        const uint4 r0 = *reinterpret_cast<const uint4*>(sLat + s_off[blk] + 128 * ci);
        const uint4 r1 = *reinterpret_cast<const uint4*>(sLat + s_off[blk] + 128 * ci + 8 * 512);
        const uint32_t w0[4] = {r0.x, r0.y, r0.z, r0.w}, w1[4] = {r1.x, r1.y, r1.z, r1.w};
#pragma unroll
        for (int ks = 0; ks < 4; ++ks) {
          cvt_e4m3x4(w0[ks], ak[ci][blk][ks][0], ak[ci][blk][ks][2]);
          cvt_e4m3x4(w1[ks], ak[ci][blk][ks][1], ak[ci][blk][ks][3]);
        }
      }
      if (ci == 0) {
#pragma unroll
        for (int rr = 0; rr < 2; ++rr) {
          const int row = 16 * wl + (lane & 15), ch = 2 * (2 * wg + rr) + (lane >> 4);
          ldsm_x4(sRope + row * 128 + ((ch ^ (row & 7)) << 4), ar[rr][0], ar[rr][1], ar[rr][2], ar[rr][3]);
        }
      }
      float (&acc)[16] = ci == 0 ? acc0 : acc1;
      wg_fence();
#pragma unroll
      for (int blk = 0; blk < 2; ++blk)
#pragma unroll
        for (int ks = 0; ks < 4; ++ks) {
          const int K = 8 * (2 * wg + ci) + 4 * blk + ks;
          if (blk == 0 && ks == 0) wg_mma_f16<false>(acc, ak[ci][blk][ks], wg_desc(sQb + K * 1024));
          else wg_mma_f16<true>(acc, ak[ci][blk][ks], wg_desc(sQb + K * 1024));
        }
    }
    if (ci == 0) {
      wg_mma_bf16<false>(accr, ar[0], wg_desc(sQb + (32 + 2 * wg) * 1024));
      wg_mma_bf16<true>(accr, ar[1], wg_desc(sQb + (33 + 2 * wg) * 1024));
    }
    wg_commit();
  };
  using CI0 = std::integral_constant<int, 0>;
  using CI1 = std::integral_constant<int, 1>;
  // After the wait: fold the chunk partials with the token scales, exchange the other
  // warpgroup's head columns, barrier (B), own complete scores -> so[] (masked).
  float svp[16];  // chunk 2wg + rope part of the partial S (folded as soon as it is waited for)
  auto s_fold0 = [&](const uint8_t* sLat) {
    wg_reg_fence(acc0);
    wg_reg_fence(accr);
    const float* sSc = reinterpret_cast<const float*>(sLat + C::LAT + C::ROPE);
    const float fa[2] = {sSc[rg * 4 + 2 * wg] * fq, sSc[(rg + 8) * 4 + 2 * wg] * fq};
#pragma unroll
    for (int i = 0; i < 16; ++i) svp[i] = fmaf(acc0[i], fa[(i >> 1) & 1], accr[i] * p.scale_log2);
  };
  auto s_finish = [&](const uint8_t* sLat, int tt) {
    wg_reg_fence(acc1);
    const float* sSc = reinterpret_cast<const float*>(sLat + C::LAT + C::ROPE);
    const float fb[2] = {sSc[rg * 4 + 2 * wg + 1] * fq, sSc[(rg + 8) * 4 + 2 * wg + 1] * fq};
    float sv[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) sv[i] = fmaf(acc1[i], fb[(i >> 1) & 1], svp[i]);
#pragma unroll
    for (int jj = 0; jj < 2; ++jj) {
      const int j = 2 * (1 - wg) + jj;
      sX[(wg * 2 + jj) * 128 + wtid] = make_float4(sv[4 * j], sv[4 * j + 1], sv[4 * j + 2], sv[4 * j + 3]);
    }
    __syncthreads();  // (B) both partials written
#pragma unroll
    for (int jj = 0; jj < 2; ++jj) {
      const float4 o = sX[((1 - wg) * 2 + jj) * 128 + wtid];
      const int j = 2 * wg + jj;
      so[4 * jj] = sv[4 * j] + o.x; so[4 * jj + 1] = sv[4 * j + 1] + o.y;
      so[4 * jj + 2] = sv[4 * j + 2] + o.z; so[4 * jj + 3] = sv[4 * j + 3] + o.w;
    }
    const int first = tok0 + tt * BN;
    if (first + BN > tok1) {  // partial tile: mask rows past the split
      const bool v0 = first + rg < tok1, v1 = first + rg + 8 < tok1;
#pragma unroll
      for (int i = 0; i < 8; ++i)
        if (!(((i >> 1) & 1) ? v1 : v0)) so[i] = -INFINITY;
    }
  };

  // Prologue: S of tile 0.
  cp_async_wait<NST - 2>();
  __syncthreads();
  s_issue(sStage, CI0{});
  s_issue(sStage, CI1{});
  wg_wait<0>();
  s_fold0(sStage);
  s_finish(sStage, 0);

  for (int tt = 0; tt < ntiles; ++tt) {
    cp_async_wait<0>();
    __syncthreads();  // (A) tile tt+1 resident; tile tt-1 fully consumed
    if (tt + NST - 1 < ntiles) wg_load_tile(kvb, tok0, tok1, tt + NST - 1, smem_u32(sStage + ((tt + NST - 1) % NST) * C::STAGE));
    cp_async_commit();
    const uint8_t* sLat = sStage + (tt % NST) * C::STAGE;
    const uint8_t* sLatN = sStage + ((tt + 1) % NST) * C::STAGE;
    // Unconditional: the last tile also issues a (discarded) S of the next stage. With
    // more = tt + 1 < ntiles ptxas serialises every wgmma (C7512, register resources).
    constexpr bool more = true;
    if (more) s_issue(sLatN, CI0{});  // tensor: S of tile tt+1 (chunk 2wg + rope) under the softmax below

    // ---- softmax of tile tt (own heads) ----
    const float* sSc = reinterpret_cast<const float*>(sLat + C::LAT + C::ROPE);
    const float4 sc0 = *reinterpret_cast<const float4*>(sSc + rg * 4);
    const float4 sc1 = *reinterpret_cast<const float4*>(sSc + (rg + 8) * 4);
    const float smx_t = fmaxf(fmaxf(fmaxf(fabsf(sc0.x), fabsf(sc0.y)), fmaxf(fabsf(sc0.z), fabsf(sc0.w))),
                              fmaxf(fmaxf(fabsf(sc1.x), fabsf(sc1.y)), fmaxf(fabsf(sc1.z), fabsf(sc1.w))));
    float tmax[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) tmax[k] = m_run[k];
    const int kold = kr;
    {
      float cm[4];
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        cm[2 * jj] = fmaxf(so[4 * jj], so[4 * jj + 2]);
        cm[2 * jj + 1] = fmaxf(so[4 * jj + 1], so[4 * jj + 3]);
      }
#pragma unroll
      for (int off = 4; off < 32; off <<= 1)
#pragma unroll
        for (int k = 0; k < 4; ++k) cm[k] = fmaxf(cm[k], __shfl_xor_sync(0xffffffffu, cm[k], off));
      float* red = sRed + wg * 64;
      if (g == 0) *reinterpret_cast<float4*>(red + wl * 16 + t4 * 4) = make_float4(cm[0], cm[1], cm[2], cm[3]);
      const uint32_t u = __reduce_max_sync(0xffffffffu, __float_as_uint(smx_t));
      if (lane == 0) sSmx[wg * 4 + wl] = __uint_as_float(u);
      bar_wg(1 + wg);
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        const float4 x = *reinterpret_cast<const float4*>(red + w * 16 + t4 * 4);
        tmax[0] = fmaxf(tmax[0], x.x); tmax[1] = fmaxf(tmax[1], x.y);
        tmax[2] = fmaxf(tmax[2], x.z); tmax[3] = fmaxf(tmax[3], x.w);
      }
      const float smax = fmaxf(fmaxf(sSmx[wg * 4], sSmx[wg * 4 + 1]), fmaxf(sSmx[wg * 4 + 2], sSmx[wg * 4 + 3]));
      kr = max(-100, min(kr, 6 - exponent_of(smax)));  // max |s| * 2^kr < 2^7
    }
    const float pw = pow2i(kr), kf = pow2i(max(-126, kr - kold));
    float fac[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float mnew = fmaxf(m_run[k], tmax[k]);
      const float alpha = ex2f(m_run[k] - mnew);
      m_run[k] = mnew;
      fac[k] = alpha * kf;
      l_run[k] *= alpha;
    }
    sF[wg * 128 + wtid] = make_float4(fac[0], fac[1], fac[2], fac[3]);
    float pv[8];
#pragma unroll
    for (int jj = 0; jj < 2; ++jj)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int k = 2 * jj + (e & 1);
        pv[4 * jj + e] = ex2f(so[4 * jj + e] - m_run[k]);
        l_run[k] += pv[4 * jj + e];
      }
    {
      const float scr[2][4] = {{sc0.x, sc0.y, sc0.z, sc0.w}, {sc1.x, sc1.y, sc1.z, sc1.w}};  // [th][c]
      const int mi = lane >> 3, r = lane & 7;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const float cs0 = scr[0][c] * pw, cs1 = scr[1][c] * pw;
        const uint32_t base = sPb + (c * 4 + wl) * 1024 + (mi & 1) * 128 + r * 16 + (2 * wg + (mi >> 1)) * 256;
        stsm_x4_t(base, f16x2_bits(pv[0] * cs0, pv[1] * cs0), f16x2_bits(pv[2] * cs1, pv[3] * cs1),
                  f16x2_bits(pv[4] * cs0, pv[5] * cs0), f16x2_bits(pv[6] * cs1, pv[7] * cs1));
      }
    }
    fence_async_smem();
    __syncthreads();  // (C) P' of both warpgroups complete, alpha of all heads published
    if (more) {
      wg_wait<0>();  // S chunk 2wg + rope of tile tt+1 (ran under the softmax): frees its A registers
      s_fold0(sLatN);
    }
    {
      const float4 fo = sF[(1 - wg) * 128 + wtid];
      float fj[4][2];  // [j][e]
      fj[2 * wg][0] = fac[0]; fj[2 * wg][1] = fac[1]; fj[2 * wg + 1][0] = fac[2]; fj[2 * wg + 1][1] = fac[3];
      fj[2 - 2 * wg][0] = fo.x; fj[2 - 2 * wg][1] = fo.y; fj[3 - 2 * wg][0] = fo.z; fj[3 - 2 * wg][1] = fo.w;
      bool rescale = false;
#pragma unroll
      for (int j = 0; j < 4; ++j) rescale |= (fj[j][0] != 1.f) | (fj[j][1] != 1.f);
      if (__any_sync(0xffffffffu, rescale)) {
#pragma unroll
        for (int m = 0; m < 4; ++m)
#pragma unroll
          for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) oacc[m][4 * j + e] *= fj[j][e & 1];
      }
    }
    // ---- O^T += V^T P'^T (tile tt); S chunk 2wg+1 of tile tt+1 ----
    auto pv_issue = [&](int ks0, int ks1) {
#pragma unroll
      for (int m = 0; m < 4; ++m) wg_reg_fence(oacc[m]);
      wg_fence();
#pragma unroll
      for (int ks = ks0; ks < ks1; ++ks) {
        uint32_t av[2][2][4];  // [G][h][4]
#pragma unroll
        for (int G = 0; G < 2; ++G) {
          const uint8_t* vb = sLat + 16 * ks * 512;
          const uint32_t w0 = *reinterpret_cast<const uint32_t*>(vb + v_off[G][0]);
          const uint32_t w1 = *reinterpret_cast<const uint32_t*>(vb + v_off[G][1]);
          const uint32_t w2 = *reinterpret_cast<const uint32_t*>(vb + v_off[G][0] + 8 * 512);
          const uint32_t w3 = *reinterpret_cast<const uint32_t*>(vb + v_off[G][1] + 8 * 512);
          cvt_e4m3x4(prmt(w0, w1, 0x5140), av[G][0][0], av[G][0][1]);  // e=0, e=1 (T0,T1)
          cvt_e4m3x4(prmt(w0, w1, 0x7362), av[G][1][0], av[G][1][1]);  // e=2, e=3 (T0,T1)
          cvt_e4m3x4(prmt(w2, w3, 0x5140), av[G][0][2], av[G][0][3]);  // e=0, e=1 (T2,T3)
          cvt_e4m3x4(prmt(w2, w3, 0x7362), av[G][1][2], av[G][1][3]);  // e=2, e=3 (T2,T3)
        }
#pragma unroll
        for (int G = 0; G < 2; ++G) {
          const uint64_t dp = wg_desc(sPw + (G * 4 + ks) * 1024);
          wg_mma_f16<true>(oacc[2 * G], av[G][0], dp);
          wg_mma_f16<true>(oacc[2 * G + 1], av[G][1], dp);
        }
      }
      wg_commit();
    };
    pv_issue(0, 2);
    if (more) {
      s_issue(sLatN, CI1{});
      wg_wait<1>();  // PV k-steps 0, 1 done (their A registers are free)
    } else {
      wg_wait<0>();
    }
    pv_issue(2, 4);
    wg_wait<0>();  // S of tile tt+1 and PV of tile tt
#pragma unroll
    for (int m = 0; m < 4; ++m) wg_reg_fence(oacc[m]);
    if (more) s_finish(sLatN, tt + 1);
  }
  } else {
  for (int tt = 0; tt < ntiles; ++tt) {
    cp_async_wait<NST - 2>();
    __syncthreads();  // (A) tile tt resident; tile tt-1 fully consumed
    if (tt + NST - 1 < ntiles) wg_load_tile(kvb, tok0, tok1, tt + NST - 1, smem_u32(sStage + ((tt + NST - 1) % NST) * C::STAGE));
    cp_async_commit();
    const uint8_t* sLat = sStage + (tt % NST) * C::STAGE;
    const uint32_t sRope = smem_u32(sLat + C::LAT);
    const float* sSc = reinterpret_cast<const float*>(sLat + C::LAT + C::ROPE);
    const float4 sc0 = *reinterpret_cast<const float4*>(sSc + rg * 4);
    const float4 sc1 = *reinterpret_cast<const float4*>(sSc + (rg + 8) * 4);

    // ---- S^T partial: chunks 2wg, 2wg+1 and rope k-steps 2wg, 2wg+1 ----
    float sv[16];
    {
      float acc0[16], acc1[16], accr[16];
      uint32_t ak[2][2][4][4];
      uint32_t ar[2][4];
#if MLA_WG_PVW == 0
      // The previous tile's PV wgmmas ran under the barrier and the copy issue above (waiting
      // for them after the S conversions instead makes ptxas serialise every wgmma: C7513).
      wg_wait<0>();
#endif
#pragma unroll
      for (int ci = 0; ci < 2; ++ci) {
#pragma unroll
        for (int blk = 0; blk < 2; ++blk) {
          const uint4 r0 = *reinterpret_cast<const uint4*>(sLat + s_off[blk] + 128 * ci);
          const uint4 r1 = *reinterpret_cast<const uint4*>(sLat + s_off[blk] + 128 * ci + 8 * 512);
          const uint32_t w0[4] = {r0.x, r0.y, r0.z, r0.w}, w1[4] = {r1.x, r1.y, r1.z, r1.w};
#pragma unroll
          for (int ks = 0; ks < 4; ++ks) {
            cvt_e4m3x4(w0[ks], ak[ci][blk][ks][0], ak[ci][blk][ks][2]);
            cvt_e4m3x4(w1[ks], ak[ci][blk][ks][1], ak[ci][blk][ks][3]);
          }
        }
        if (ci == 1) {  // rope A fragments (ldmatrix), used after chunk 1
#pragma unroll
          for (int rr = 0; rr < 2; ++rr) {
            const int row = 16 * wl + (lane & 15), ch = 2 * (2 * wg + rr) + (lane >> 4);
            ldsm_x4(sRope + row * 128 + ((ch ^ (row & 7)) << 4), ar[rr][0], ar[rr][1], ar[rr][2], ar[rr][3]);
          }
        }
        float (&acc)[16] = ci == 0 ? acc0 : acc1;

        wg_fence();
#pragma unroll
        for (int blk = 0; blk < 2; ++blk)
#pragma unroll
          for (int ks = 0; ks < 4; ++ks) {
            const int K = 8 * (2 * wg + ci) + 4 * blk + ks;
            if (blk == 0 && ks == 0) wg_mma_f16<false>(acc, ak[ci][blk][ks], wg_desc(sQb + K * 1024));
            else wg_mma_f16<true>(acc, ak[ci][blk][ks], wg_desc(sQb + K * 1024));
          }
      }
      wg_mma_bf16<false>(accr, ar[0], wg_desc(sQb + (32 + 2 * wg) * 1024));
      wg_mma_bf16<true>(accr, ar[1], wg_desc(sQb + (33 + 2 * wg) * 1024));
      wg_commit();
      wg_wait<0>();
#pragma unroll
      for (int m = 0; m < 4; ++m) wg_reg_fence(oacc[m]);
      wg_reg_fence(acc0);
      wg_reg_fence(acc1);
      wg_reg_fence(accr);
      const float fa[2] = {(wg ? sc0.z : sc0.x) * fq, (wg ? sc1.z : sc1.x) * fq};
      const float fb[2] = {(wg ? sc0.w : sc0.y) * fq, (wg ? sc1.w : sc1.y) * fq};
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        const int hr = (i >> 1) & 1;
        sv[i] = fmaf(acc0[i], fa[hr], fmaf(acc1[i], fb[hr], accr[i] * p.scale_log2));
      }
      // The other warpgroup's head columns j = 2(1-wg) + jj go to it.
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        const int j = 2 * (1 - wg) + jj;
        sX[(wg * 2 + jj) * 128 + wtid] = make_float4(sv[4 * j], sv[4 * j + 1], sv[4 * j + 2], sv[4 * j + 3]);
      }
    }
    __syncthreads();  // (B) both partials written; both warpgroups' PV of tile tt-1 complete
    float so[8];  // own columns: so[4jj + e] = S at heads 8(2wg+jj) + 2t4 + (e&1), row rg + 8(e>>1)
#pragma unroll
    for (int jj = 0; jj < 2; ++jj) {
      const float4 o = sX[((1 - wg) * 2 + jj) * 128 + wtid];
      const int j = 2 * wg + jj;
      so[4 * jj] = sv[4 * j] + o.x; so[4 * jj + 1] = sv[4 * j + 1] + o.y;
      so[4 * jj + 2] = sv[4 * j + 2] + o.z; so[4 * jj + 3] = sv[4 * j + 3] + o.w;
    }
    const int first = tok0 + tt * BN;
    if (first + BN > tok1) {  // partial tile: mask rows past the split
      const bool v0 = first + rg < tok1, v1 = first + rg + 8 < tok1;
#pragma unroll
      for (int i = 0; i < 8; ++i)
        if (!(((i >> 1) & 1) ? v1 : v0)) so[i] = -INFINITY;
    }
    // Tile max |scale| over all four chunks (the same in both warpgroups: kr is block-wide).
    const float smx_t = fmaxf(fmaxf(fmaxf(fabsf(sc0.x), fabsf(sc0.y)), fmaxf(fabsf(sc0.z), fabsf(sc0.w))),
                              fmaxf(fmaxf(fabsf(sc1.x), fabsf(sc1.y)), fmaxf(fabsf(sc1.z), fabsf(sc1.w))));
    float tmax[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) tmax[k] = m_run[k];
    const int kold = kr;
    {
      float cm[4];
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        cm[2 * jj] = fmaxf(so[4 * jj], so[4 * jj + 2]);
        cm[2 * jj + 1] = fmaxf(so[4 * jj + 1], so[4 * jj + 3]);
      }
#pragma unroll
      for (int off = 4; off < 32; off <<= 1)
#pragma unroll
        for (int k = 0; k < 4; ++k) cm[k] = fmaxf(cm[k], __shfl_xor_sync(0xffffffffu, cm[k], off));
      float* red = sRed + wg * 64;
      if (g == 0) *reinterpret_cast<float4*>(red + wl * 16 + t4 * 4) = make_float4(cm[0], cm[1], cm[2], cm[3]);
      const uint32_t u = __reduce_max_sync(0xffffffffu, __float_as_uint(smx_t));
      if (lane == 0) sSmx[wg * 4 + wl] = __uint_as_float(u);
      bar_wg(1 + wg);
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        const float4 x = *reinterpret_cast<const float4*>(red + w * 16 + t4 * 4);
        tmax[0] = fmaxf(tmax[0], x.x); tmax[1] = fmaxf(tmax[1], x.y);
        tmax[2] = fmaxf(tmax[2], x.z); tmax[3] = fmaxf(tmax[3], x.w);
      }
      const float smax = fmaxf(fmaxf(sSmx[wg * 4], sSmx[wg * 4 + 1]), fmaxf(sSmx[wg * 4 + 2], sSmx[wg * 4 + 3]));
      kr = max(-100, min(kr, 6 - exponent_of(smax)));  // max |s| * 2^kr < 2^7
    }
    const float pw = pow2i(kr), kf = pow2i(max(-126, kr - kold));
    float fac[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float mnew = fmaxf(m_run[k], tmax[k]);
      const float alpha = ex2f(m_run[k] - mnew);
      m_run[k] = mnew;
      fac[k] = alpha * kf;
      l_run[k] *= alpha;
    }
    sF[wg * 128 + wtid] = make_float4(fac[0], fac[1], fac[2], fac[3]);
    float pv[8];
#pragma unroll
    for (int jj = 0; jj < 2; ++jj)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int k = 2 * jj + (e & 1);
        pv[4 * jj + e] = ex2f(so[4 * jj + e] - m_run[k]);
        l_run[k] += pv[4 * jj + e];
      }
    // P'_c (all four chunks, own heads) -> shared, transposed: core (head group 2wg + jj,
    // token half th) of k-step wl in chunk c's buffer (sP + 4096 c).
    {
      const float scr[2][4] = {{sc0.x, sc0.y, sc0.z, sc0.w}, {sc1.x, sc1.y, sc1.z, sc1.w}};  // [th][c]
      const int mi = lane >> 3, r = lane & 7;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const float cs0 = scr[0][c] * pw, cs1 = scr[1][c] * pw;
        const uint32_t base = sPb + (c * 4 + wl) * 1024 + (mi & 1) * 128 + r * 16 + (2 * wg + (mi >> 1)) * 256;
        stsm_x4_t(base, f16x2_bits(pv[0] * cs0, pv[1] * cs0), f16x2_bits(pv[2] * cs1, pv[3] * cs1),
                  f16x2_bits(pv[4] * cs0, pv[5] * cs0), f16x2_bits(pv[6] * cs1, pv[7] * cs1));
      }
    }
    fence_async_smem();
    __syncthreads();  // (C) P' of both warpgroups complete, alpha of all heads published
    {
      const float4 fo = sF[(1 - wg) * 128 + wtid];
      float fj[4][2];  // [j][e]
      fj[2 * wg][0] = fac[0]; fj[2 * wg][1] = fac[1]; fj[2 * wg + 1][0] = fac[2]; fj[2 * wg + 1][1] = fac[3];
      fj[2 - 2 * wg][0] = fo.x; fj[2 - 2 * wg][1] = fo.y; fj[3 - 2 * wg][0] = fo.z; fj[3 - 2 * wg][1] = fo.w;
      bool rescale = false;
#pragma unroll
      for (int j = 0; j < 4; ++j) rescale |= (fj[j][0] != 1.f) | (fj[j][1] != 1.f);
      if (__any_sync(0xffffffffu, rescale)) {
#pragma unroll
        for (int m = 0; m < 4; ++m)
#pragma unroll
          for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) oacc[m][4 * j + e] *= fj[j][e & 1];
      }
    }

    // ---- O^T += V^T P'^T: value dims 256wg + 128G + 32wl + 4g + (2h + f) = m-tile 2G+h, row 16wl+g+8f ----
    {
#pragma unroll
      for (int m = 0; m < 4; ++m) wg_reg_fence(oacc[m]);
      wg_fence();
#pragma unroll
      for (int ks = 0; ks < 4; ++ks) {
        uint32_t av[2][2][4];  // [G][h][4]
#pragma unroll
        for (int G = 0; G < 2; ++G) {
          const uint8_t* vb = sLat + 16 * ks * 512;
          const uint32_t w0 = *reinterpret_cast<const uint32_t*>(vb + v_off[G][0]);
          const uint32_t w1 = *reinterpret_cast<const uint32_t*>(vb + v_off[G][1]);
          const uint32_t w2 = *reinterpret_cast<const uint32_t*>(vb + v_off[G][0] + 8 * 512);
          const uint32_t w3 = *reinterpret_cast<const uint32_t*>(vb + v_off[G][1] + 8 * 512);
          uint32_t lo01, hi01, lo23, hi23, lo01b, hi01b, lo23b, hi23b;
          cvt_e4m3x4(prmt(w0, w1, 0x5140), lo01, hi01);    // e=0, e=1 (T0,T1)
          cvt_e4m3x4(prmt(w0, w1, 0x7362), lo23, hi23);    // e=2, e=3 (T0,T1)
          cvt_e4m3x4(prmt(w2, w3, 0x5140), lo01b, hi01b);  // e=0, e=1 (T2,T3)
          cvt_e4m3x4(prmt(w2, w3, 0x7362), lo23b, hi23b);  // e=2, e=3 (T2,T3)
          av[G][0][0] = lo01; av[G][0][1] = hi01; av[G][0][2] = lo01b; av[G][0][3] = hi01b;
          av[G][1][0] = lo23; av[G][1][1] = hi23; av[G][1][2] = lo23b; av[G][1][3] = hi23b;
        }
#pragma unroll
        for (int G = 0; G < 2; ++G) {
          const uint64_t dp = wg_desc(sPw + (G * 4 + ks) * 1024);
          wg_mma_f16<true>(oacc[2 * G], av[G][0], dp);
          wg_mma_f16<true>(oacc[2 * G + 1], av[G][1], dp);
        }
      }
      wg_commit();  // completes under the next tile's barrier, copies and S conversions
    }
  }
  }
  wg_wait<0>();
#pragma unroll
  for (int m = 0; m < 4; ++m) wg_reg_fence(oacc[m]);

  // ---- epilogue: l over the tile rows (own heads), exchanged; O = O^T * 2^-kr / l ----
#pragma unroll
  for (int off = 4; off < 32; off <<= 1)
#pragma unroll
    for (int k = 0; k < 4; ++k) l_run[k] += __shfl_xor_sync(0xffffffffu, l_run[k], off);
  __syncthreads();  // sRed reuse
  if (g == 0) *reinterpret_cast<float4*>(sRed + wg * 64 + wl * 16 + t4 * 4) = make_float4(l_run[0], l_run[1], l_run[2], l_run[3]);
  __syncthreads();
  float lt[4][2];  // [j][e]
#pragma unroll
  for (int j = 0; j < 4; ++j)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      lt[j][e] = 0.f;
#pragma unroll
      for (int w = 0; w < 4; ++w) lt[j][e] += sRed[(j >> 1) * 64 + w * 16 + t4 * 4 + 2 * (j & 1) + e];
    }
  const float kscale = pow2i(-kr);
#pragma unroll
  for (int j = 0; j < 4; ++j)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int head = 8 * j + 2 * t4 + e;
      const float inv = kscale / lt[j][e];
      const size_t bh = (size_t)b * p.h + head;
#pragma unroll
      for (int G = 0; G < 2; ++G) {
        const int d0 = 256 * wg + 128 * G + 32 * wl + 4 * g;
        float v[4];
#pragma unroll
        for (int idx = 0; idx < 4; ++idx) v[idx] = oacc[2 * G + (idx >> 1)][4 * j + 2 * (idx & 1) + e] * inv;
        if (p.nsplit == 1) {
          uint2 o;
          o.x = bf16x2_bits(v[0], v[1]);
          o.y = bf16x2_bits(v[2], v[3]);
          *reinterpret_cast<uint2*>(p.out + bh * DV + d0) = o;
        } else {
          *reinterpret_cast<float4*>(p.opart + (bh * p.nsplit + split) * DV + d0) = make_float4(v[0], v[1], v[2], v[3]);
        }
      }
      if (p.nsplit > 1 && (j >> 1) == wg && wl == 0 && g == 0)
        p.lse[bh * p.nsplit + split] = m_run[2 * (j & 1) + e] + log2f(lt[j][e]);
    }
}


__global__ void __launch_bounds__(256, 1) mla_wg_kernel(const MlaParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)  // wgmma: sm_90a only (see wg_kernel_available)
  using C = WgCfg;
  constexpr int NT = C::NT, BN = C::BN, NST = C::NST;
  extern __shared__ __align__(128) uint8_t smem[];
  uint8_t* sStage = smem;
  uint8_t* sQ = smem + C::Q_OFF;
  uint8_t* sP = smem + C::P_OFF;
  float4* sX = reinterpret_cast<float4*>(smem + C::X_OFF);
  float* sRed = reinterpret_cast<float*>(smem + C::R_OFF);
  float* sSmx = reinterpret_cast<float*>(smem + C::F_OFF);
  float* sQmax = sSmx + 8;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wg = tid >> 7, wl = warp & 3, wtid = tid & 127;
  const int g = lane >> 2, t4 = lane & 3;
  const int split = blockIdx.x, b = blockIdx.y;
  const int tok0 = split * p.split_len;
  const int tok1 = min(p.s, tok0 + p.split_len);
  const int ntiles = (tok1 - tok0 + BN - 1) / BN;
  if (ntiles <= 0) return;  // never: the host picks splits that all hold tokens

  const uint8_t* kvb = p.kv + (size_t)b * p.s * FP8_ROW;
#pragma unroll
  for (int i = 0; i < NST - 1; ++i) {
    if (i < ntiles) wg_load_tile(kvb, tok0, tok1, i, smem_u32(sStage + i * C::STAGE));
    cp_async_commit();
  }

  // ---- Q -> shared: f16(q * 2^qe) latent (k order permuted), bf16 rope ----
  const __nv_bfloat16* qb = p.q + (size_t)b * p.h * D;
  {
    float mx = 0.f;
    for (int i = tid; i < 32 * 64; i += NT) {
      const uint4 v = __ldg(reinterpret_cast<const uint4*>(qb + (size_t)(i >> 6) * D + (i & 63) * 8));
      const __nv_bfloat162* h2 = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float2 f = __bfloat1622float2(h2[k]);
        mx = fmaxf(mx, fmaxf(fabsf(f.x), fabsf(f.y)));
      }
    }
    mx = __uint_as_float(__reduce_max_sync(0xffffffffu, __float_as_uint(mx)));
    if (lane == 0) sQmax[warp] = mx;
  }
  __syncthreads();
  float qmax = 0.f;
#pragma unroll
  for (int w = 0; w < 8; ++w) qmax = fmaxf(qmax, sQmax[w]);
  const int qe = min(100, max(-100, 13 - exponent_of(qmax)));
  const float qsc = pow2i(qe);
  const float fq = pow2i(-qe) * p.scale_log2;
  for (int i = tid; i < 32 * 128; i += NT) {  // (head n, 4 latent dims d..d+3)
    const int n = i >> 7, d = (i & 127) * 4;
    const uint2 v = __ldg(reinterpret_cast<const uint2*>(qb + (size_t)n * D + d));
    const float2 f0 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&v.x));
    const float2 f1 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&v.y));
    const int K = 8 * (d >> 7) + 4 * ((d >> 6) & 1) + ((d >> 2) & 3), tq = (d >> 4) & 3;
    uint8_t* base = sQ + K * 1024 + (n >> 3) * 256 + (n & 7) * 16 + tq * 4;
    *reinterpret_cast<uint32_t*>(base) = f16x2_bits(f0.x * qsc, f0.y * qsc);
    *reinterpret_cast<uint32_t*>(base + 128) = f16x2_bits(f1.x * qsc, f1.y * qsc);
  }
  for (int i = tid; i < 32 * 32; i += NT) {  // (head n, rope pair)
    const int n = i >> 5, d = (i & 31) * 2;
    const uint32_t v = __ldg(reinterpret_cast<const uint32_t*>(qb + (size_t)n * D + 512 + d));
    const int K = 32 + (d >> 4), kk = d & 15;
    *reinterpret_cast<uint32_t*>(sQ + K * 1024 + (n >> 3) * 256 + (kk >> 3) * 128 + (n & 7) * 16 + (kk & 7) * 2) = v;
  }
  fence_async_smem();
  // Pipelined loop for splits of >= 128 tiles: it computes one discarded S past the last tile
  // and a longer prologue, measured 5-18% slower than the plain loop at 4-32 tiles per split.
  if (MLA_WG_PIPE && ntiles >= 128) {
    if (wg == 0) mla_wg_loop<0, true>(p, smem, kvb, tok0, tok1, ntiles, fq);
    else mla_wg_loop<1, true>(p, smem, kvb, tok0, tok1, ntiles, fq);
  } else {
    if (wg == 0) mla_wg_loop<0, false>(p, smem, kvb, tok0, tok1, ntiles, fq);
    else mla_wg_loop<1, false>(p, smem, kvb, tok0, tok1, ntiles, fq);
  }
#endif
}

// ---------------------------------------------------------------------------
// FP8 cache, h = 32, session 5: mla_wg2_kernel (wgmma, decoupled warpgroups; sm_90a).
//
// One block of two warpgroups per SM. Each warpgroup owns WHOLE 64-token tiles: warpgroup
// wg takes tiles wg, wg+2, ... of the split (split-KV inside the block: own running
// max m, sum l, power of two kr and O^T, merged in the epilogue through shared memory),
// so the two warpgroups never wait for each other inside a tile and one's softmax can
// run under the other's tensor work. Per tile (one warpgroup):
//   loads  : a tile is 64 consecutive raw 656-byte rows of the cache = one bulk copy
//            (cp.async.bulk, 1D, mbarrier complete_tx) issued by one thread, NST stages.
//            The raw row stride (164 words, 4 banks per row) makes every shared access
//            below conflict-free without a swizzle: ldmatrix of 8 rows at one column (K,
//            rope), 4-byte loads of 4 even/odd token rows x 8 consecutive words (V).
//   S^T = K Q^T : m64n32k16, A = K from ldmatrix.x4 on the raw e4m3 rows (thread (g,t4)
//            gets bytes 4t4..4t4+3 of 16-dim column j of rows g, g+8; one cvt.rn.f16x2.e4m3x2
//            per pair: bytes 0,1 -> k 2t4,2t4+1 and bytes 2,3 -> k 2t4+8,2t4+9; Q' stored
//            in the same k order), B = Q' (f16, 2^qe-scaled); one accumulator per latent
//            chunk (folded with the token scales in fp32 while the next chunk runs); rope
//            in bf16 (A by ldmatrix). Two 16-register A buffers, one wgmma group per half
//            chunk (4 k-steps), wait_group 1: conversion of a half chunk under the
//            previous half chunk's wgmmas.
//   softmax: per head column over the 64 tokens: shuffles + the 4 warps of the
//            warpgroup through shared memory (named barrier of 128 threads); kr from
//            the tile's max |scale|; P'_c = P s_c 2^kr (f16) -> shared (stmatrix.trans).
//   O^T += V^T P'^T : m64n32k16 x 8 m-tiles (all 512 value dims), A = V^T by 4-byte loads
//            + PRMT + cvt (as mla_wg_kernel), groups of 4 wgmmas, same double buffer.
// O^T: 8 m-tiles x 16 fp32 = 128 registers per thread (255 in all, 88 B of spills).
// P' buffer: 2 chunks per warpgroup (8 KB): P'_0,1 -> PV of value chunks 0,1 -> wait + barrier
// -> P'_2,3 -> PV of chunks 2,3; that is what lets 4 stages fit (224,704 B of shared memory).
// Stages: 4 (even), so stage t % 4 always belongs to warpgroup t % 2, which refills it with
// its own tile t + 4 as soon as it is done with tile t; mbarrier t % 8 (its previous phase is
// always the same warpgroup's tile t - 8: the parity never aliases an unfinished fill; with 3
// stages and one barrier per stage it did, and the kernel faulted). A partial last tile copies
// only its valid rows; its stage is zeroed once at kernel start (rows past the split stay
// finite, their scores are masked and their scales set to 0).
// H200 dev harness (session 5): B=256 s=32768 1668 us median (77.5% of copy; session 4b
// kernel 2290), B=128 s=32768 834, B=256 s=8192 454 (71.9%); used for splits of >= 16 tiles
// (see use_wg1). Notes: validate/kernels/custom/dev/logs/session5_mla.md.
// ---------------------------------------------------------------------------
#ifndef MLA_WG2_NST
#define MLA_WG2_NST 4  // stages; even: each warpgroup refills its own next-but-one tile (a full tile ahead)
#endif
// Session 5 follow-up (dev/logs/session5_mla.md, "Follow-up (second helper)"), H200 dev harness:
// - MLA_WG2_QREG: Q is loaded into registers in one batch (9 x 16 B per thread) before the tile
//   copies are queued, instead of two strided passes: Q prologue 8-9 us -> 5 us per block.
// - MLA_WG2_EARLY: tiles 0, 1 are copied before the Q setup, tiles 2, 3 after it.
// - MLA_WG2_TL: per-block timeline (globaltimer at start / Q done / merge / end, clock64 cycles,
//   smid, tile-0 landing) written to g_wg2_tl; the host reads it only with MOESIM_MLA_TL=1.
//   It showed the run-to-run spread is the SM clock (1.52-1.80 GHz under the 700 W power cap,
//   cycles per launch constant to +-0.5%). The stamps stay compiled in: the build measured
//   fastest (72 B of spills) is this exact device code; the same source without them spilled
//   128 B and lost the gain at large sizes (ptxas register allocation, see the notes).
// Measured (7 interleaved samples each): B=256 s=4096 239.6 -> 230.4 us median (69.0 -> 71.7%
// of copy), 2.6-3.9% faster at the other B*s >= 2^20 points (notes: all points and ranges).
#ifndef MLA_WG2_QREG
#define MLA_WG2_QREG 1
#endif
#ifndef MLA_WG2_EARLY
#define MLA_WG2_EARLY 2
#endif
#ifndef MLA_WG2_TL
#define MLA_WG2_TL 1
#endif
#if MLA_WG2_TL
__device__ unsigned long long g_wg2_tl[8 * 1024];
#endif
struct Wg2Cfg {
  static constexpr int NT = 256, BN = 64, NST = MLA_WG2_NST;
  static constexpr int STAGE = BN * FP8_ROW;             // 41984: raw rows, one bulk copy
  static constexpr int Q_OFF = NST * STAGE;              // 36 k-steps x 1 KB
  static constexpr int P_OFF = Q_OFF + 36 * 1024;        // [wg][chunk pair][kstep] x 1 KB (two halves per tile)
  static constexpr int R_OFF = P_OFF + 2 * 8 * 1024;     // red [wg][parity][136] floats
  static constexpr int E_OFF = R_OFF + 2 * 2 * 136 * 4;  // epilogue: m [2][32], l [2][4][32], kr [2]
  static constexpr int B_OFF = E_OFF + (64 + 256 + 8) * 4;  // mbarriers [2 NST]: tile t -> t % (2 NST)
  static constexpr int SMEM = B_OFF + 2 * NST * 8;
  static_assert(SMEM <= 227 * 1024, "shared memory");
  static_assert(NST * STAGE >= 2 * 64 * 128 * 4, "epilogue O exchange fits in the stages");
};

__device__ __forceinline__ void mbar_init(uint32_t a, int n) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(a), "r"(n) : "memory");
}
// Tile t of the split -> stage t % NST: one bulk copy of the tile's valid rows.
__device__ __forceinline__ void wg2_issue(const uint8_t* kvb, int tok0, int tok1, int t, uint32_t sbase, uint32_t sMb) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  const int first = tok0 + t * Wg2Cfg::BN;
  const uint32_t bytes = (uint32_t)min(Wg2Cfg::BN, tok1 - first) * FP8_ROW;
  const int slot = t % Wg2Cfg::NST;
  const uint32_t mb = sMb + 8 * (t % (2 * Wg2Cfg::NST)), dst = sbase + slot * Wg2Cfg::STAGE;
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(mb), "r"(bytes) : "memory");
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(dst),
               "l"(kvb + (size_t)first * FP8_ROW), "r"(bytes), "r"(mb)
               : "memory");
#endif
}

template <int WG>
__device__ __forceinline__ void mla_wg2_loop(const MlaParams& p, uint8_t* smem, const uint8_t* kvb, int tok0, int tok1,
                                             int ntiles, float fq) {
  using C = Wg2Cfg;
  constexpr int BN = C::BN, NST = C::NST;
  const int tid = threadIdx.x, lane = tid & 31, wl = (tid >> 5) & 3, wtid = tid & 127;
  const int g = lane >> 2, t4 = lane & 3;
  const int split = blockIdx.x, b = blockIdx.y;
  const uint32_t sbase = smem_u32(smem);
  const uint32_t sQb = sbase + C::Q_OFF;
  const uint32_t sPw = sbase + C::P_OFF + WG * 8192;
  const uint64_t dQ = wg_desc(sQb), dPw = wg_desc(sPw);  // + (byte offset >> 4) per operand
  const uint32_t sMb = sbase + C::B_OFF;
  float* sRedW = reinterpret_cast<float*>(smem + C::R_OFF) + WG * 2 * 136;

  float m_run[8], l_run[8];  // heads 8(k>>1) + 2t4 + (k&1)
#pragma unroll
  for (int k = 0; k < 8; ++k) { m_run[k] = -INFINITY; l_run[k] = 0.f; }
  int kr = 100;
  float oacc[8][16];
#pragma unroll
  for (int m = 0; m < 8; ++m)
#pragma unroll
    for (int i = 0; i < 16; ++i) oacc[m][i] = 0.f;

  const int rg = 16 * wl + g;  // token rows rg, rg + 8 of the tile
  // Per-thread byte offsets inside a stage (raw rows).
  const int mi = lane >> 3;
  const uint32_t k_off = (uint32_t)((16 * wl + 8 * (mi & 1) + (lane & 7)) * FP8_ROW + 16 * (mi >> 1));
  const uint32_t r_off = (uint32_t)((16 * wl + (lane & 15)) * FP8_ROW + FP8_ROPE_OFF + 16 * (lane >> 4));
  const int sc_off = rg * FP8_ROW + FP8_SCALE_OFF;
  const int v_off = 2 * t4 * FP8_ROW + 32 * wl + 4 * g;
  const uint32_t p_lane = (uint32_t)((mi & 1) * 128 + (lane & 7) * 16 + (mi >> 1) * 256);

  uint32_t bufA[4][4], bufB[4][4];
  int it = 0;
  for (int t = WG; t < ntiles; t += 2, ++it) {
    const int slot = t % NST;
    const uint8_t* sT = smem + slot * C::STAGE;
    const uint32_t sTa = sbase + slot * C::STAGE;
    // Barrier t % 2NST: its previous phase was tile t - 2NST, of this same warpgroup, already
    // consumed, so the parity cannot alias a phase that has not completed yet.
    mbar_wait(sMb + 8 * (t % (2 * NST)), (uint32_t)((t / (2 * NST)) & 1));
    const int first = tok0 + t * BN;
    const bool partial = first + BN > tok1;

    // ---- S^T (64 tokens x 32 heads), scores in the log2 domain ----
    float4 sc0 = *reinterpret_cast<const float4*>(sT + sc_off);
    float4 sc1 = *reinterpret_cast<const float4*>(sT + sc_off + 8 * FP8_ROW);
    const bool v0 = first + rg < tok1, v1 = first + rg + 8 < tok1;
    if (partial) {  // rows past the split: scale 0 (P' = 0 there; they stay out of kr)
      if (!v0) sc0 = make_float4(0.f, 0.f, 0.f, 0.f);
      if (!v1) sc1 = make_float4(0.f, 0.f, 0.f, 0.f);
    }
    float sv[16];
    {
      float accr[16], acc0[16], acc1[16];
      // group 0: rope (bf16, 4 k-steps) into buffer A
#pragma unroll
      for (int r = 0; r < 4; ++r) ldsm_x4(sTa + r_off + 32 * r, bufA[r][0], bufA[r][1], bufA[r][2], bufA[r][3]);
      wg_fence();
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        if (r == 0) wg_mma_bf16<false>(accr, bufA[r], dQ + (32 + r) * 64);
        else wg_mma_bf16<true>(accr, bufA[r], dQ + (32 + r) * 64);
      }
      wg_commit();
      // half chunks hc = 0..7 (chunk hc >> 1, k-steps 8c + 4(hc & 1) + 0..3)
#pragma unroll
      for (int hc = 0; hc < 8; ++hc) {
        const int c = hc >> 1, h = hc & 1;
        uint32_t (&a)[4][4] = (hc & 1) ? bufA : bufB;
        float (&acc)[16] = (c & 1) ? acc1 : acc0;
#pragma unroll
        for (int q = 0; q < 2; ++q) {
          uint32_t r0, r1, r2, r3;
          ldsm_x4(sTa + k_off + 128 * c + 32 * (2 * h + q), r0, r1, r2, r3);
          cvt_e4m3x4(r0, a[2 * q][0], a[2 * q][2]);
          cvt_e4m3x4(r1, a[2 * q][1], a[2 * q][3]);
          cvt_e4m3x4(r2, a[2 * q + 1][0], a[2 * q + 1][2]);
          cvt_e4m3x4(r3, a[2 * q + 1][1], a[2 * q + 1][3]);
        }
        wg_fence();
#pragma unroll
        for (int ks = 0; ks < 4; ++ks) {
          const int K = 8 * c + 4 * h + ks;
          if (h == 0 && ks == 0) wg_mma_f16<false>(acc, a[ks], dQ + K * 64);
          else wg_mma_f16<true>(acc, a[ks], dQ + K * 64);
        }
        wg_commit();
        wg_wait<1>();  // every group but this one done
        if (hc == 0) {
          wg_reg_fence(accr);
#pragma unroll
          for (int i = 0; i < 16; ++i) sv[i] = accr[i] * p.scale_log2;
        }
        if (hc >= 2 && h == 0) {  // chunk c - 1 complete: fold it
          float (&af)[16] = ((c - 1) & 1) ? acc1 : acc0;
          wg_reg_fence(af);
          const float f0 = (c - 1 == 0 ? sc0.x : c - 1 == 1 ? sc0.y : sc0.z) * fq;
          const float f1 = (c - 1 == 0 ? sc1.x : c - 1 == 1 ? sc1.y : sc1.z) * fq;
#pragma unroll
          for (int i = 0; i < 16; ++i) sv[i] = fmaf(af[i], ((i >> 1) & 1) ? f1 : f0, sv[i]);
        }
      }
      wg_wait<0>();
      float (&al)[16] = acc1;
      wg_reg_fence(al);
      {
        const float f0 = sc0.w * fq, f1 = sc1.w * fq;
#pragma unroll
        for (int i = 0; i < 16; ++i) sv[i] = fmaf(al[i], ((i >> 1) & 1) ? f1 : f0, sv[i]);
      }
    }
    if (partial) {
#pragma unroll
      for (int i = 0; i < 16; ++i)
        if (!(((i >> 1) & 1) ? v1 : v0)) sv[i] = -INFINITY;
    }

    // ---- softmax (all 32 heads, over the warpgroup's 64 tokens) ----
    float tmax[8];
    float smax;
    {
      float cm[8];
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) cm[2 * j + e] = fmaxf(sv[4 * j + e], sv[4 * j + 2 + e]);
#pragma unroll
      for (int off = 4; off < 32; off <<= 1)
#pragma unroll
        for (int k = 0; k < 8; ++k) cm[k] = fmaxf(cm[k], __shfl_xor_sync(0xffffffffu, cm[k], off));
      const float smx_t = fmaxf(fmaxf(fmaxf(fabsf(sc0.x), fabsf(sc0.y)), fmaxf(fabsf(sc0.z), fabsf(sc0.w))),
                                fmaxf(fmaxf(fabsf(sc1.x), fabsf(sc1.y)), fmaxf(fabsf(sc1.z), fabsf(sc1.w))));
      const uint32_t u = __reduce_max_sync(0xffffffffu, __float_as_uint(smx_t));
      float* red = sRedW + (it & 1) * 136;
      if (g == 0) {
        *reinterpret_cast<float4*>(red + wl * 32 + t4 * 8) = make_float4(cm[0], cm[1], cm[2], cm[3]);
        *reinterpret_cast<float4*>(red + wl * 32 + t4 * 8 + 4) = make_float4(cm[4], cm[5], cm[6], cm[7]);
      }
      if (lane == 0) red[128 + wl] = __uint_as_float(u);
      bar_wg(1 + WG);
#pragma unroll
      for (int k = 0; k < 8; ++k) tmax[k] = m_run[k];
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        const float4 x = *reinterpret_cast<const float4*>(red + w * 32 + t4 * 8);
        const float4 y = *reinterpret_cast<const float4*>(red + w * 32 + t4 * 8 + 4);
        tmax[0] = fmaxf(tmax[0], x.x); tmax[1] = fmaxf(tmax[1], x.y);
        tmax[2] = fmaxf(tmax[2], x.z); tmax[3] = fmaxf(tmax[3], x.w);
        tmax[4] = fmaxf(tmax[4], y.x); tmax[5] = fmaxf(tmax[5], y.y);
        tmax[6] = fmaxf(tmax[6], y.z); tmax[7] = fmaxf(tmax[7], y.w);
      }
      const float4 sm = *reinterpret_cast<const float4*>(red + 128);
      smax = fmaxf(fmaxf(sm.x, sm.y), fmaxf(sm.z, sm.w));
    }
    const int kold = kr;
    kr = max(-100, min(kr, 6 - exponent_of(smax)));  // max |s| * 2^kr < 2^7
    const float pw = pow2i(kr), kf = pow2i(max(-126, kr - kold));
    float fac[8];
    bool rescale = false;
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const float alpha = ex2f(m_run[k] - tmax[k]);  // tmax >= m_run
      m_run[k] = tmax[k];
      fac[k] = alpha * kf;
      l_run[k] *= alpha;
      rescale |= fac[k] != 1.f;
    }
    float pv[16];
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const int k = 2 * (i >> 2) + (i & 1);
      pv[i] = ex2f(sv[i] - m_run[k]);
      l_run[k] += pv[i];
    }
    // P'_c (f16, packed for stmatrix.trans): chunks 0, 1 now, 2, 3 after the first PV half.
    uint32_t pk[4][4][2];  // [c][f16x2 reg][jp]
    {
      const float scr[2][4] = {{sc0.x, sc0.y, sc0.z, sc0.w}, {sc1.x, sc1.y, sc1.z, sc1.w}};
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const float cs0 = scr[0][c] * pw, cs1 = scr[1][c] * pw;
#pragma unroll
        for (int jp = 0; jp < 2; ++jp) {
          pk[c][0][jp] = f16x2_bits(pv[8 * jp] * cs0, pv[8 * jp + 1] * cs0);
          pk[c][1][jp] = f16x2_bits(pv[8 * jp + 2] * cs1, pv[8 * jp + 3] * cs1);
          pk[c][2][jp] = f16x2_bits(pv[8 * jp + 4] * cs0, pv[8 * jp + 5] * cs0);
          pk[c][3][jp] = f16x2_bits(pv[8 * jp + 6] * cs1, pv[8 * jp + 7] * cs1);
        }
      }
    }
    auto p_store = [&](int half) {  // chunks 2 half, 2 half + 1 -> buffer [cl][ks] (cl = c & 1)
#pragma unroll
      for (int cl = 0; cl < 2; ++cl) {
        const int c = 2 * half + cl;
        const uint32_t base = sPw + (cl * 4 + wl) * 1024 + p_lane;
#pragma unroll
        for (int jp = 0; jp < 2; ++jp)
          stsm_x4_t(base + 512 * jp, pk[c][0][jp], pk[c][1][jp], pk[c][2][jp], pk[c][3][jp]);
      }
      fence_async_smem();
    };
    p_store(0);
    if (__any_sync(0xffffffffu, rescale)) {
#pragma unroll
      for (int m = 0; m < 8; ++m)
#pragma unroll
        for (int i = 0; i < 16; ++i) oacc[m][i] *= fac[2 * (i >> 2) + (i & 1)];
    }
    bar_wg(1 + WG);  // P'_0, P'_1 of the warpgroup's 4 warps complete

    // ---- O^T += V^T P'^T: m-tile 2G + hh, row 16wl + g + 8f = value dim 128G + 32wl + 4g + 2hh + f ----
    // Half Gp (chunks 2Gp, 2Gp+1 = m-tiles 4Gp..4Gp+3), k-steps 0..3: one group of 4 wgmmas each.
#pragma unroll
    for (int m = 0; m < 8; ++m) wg_reg_fence(oacc[m]);
#pragma unroll
    for (int q = 0; q < 8; ++q) {
      const int Gp = q >> 2, ks = q & 3;
      if (q == 4) {  // second half: P'_2, P'_3 into the buffer the first half has finished reading
        wg_wait<0>();
        bar_wg(1 + WG);  // every warp's slice of the first half has finished reading P'
        p_store(1);
        bar_wg(1 + WG);
      }
      uint32_t (&a)[4][4] = (q & 1) ? bufA : bufB;
#pragma unroll
      for (int Gl = 0; Gl < 2; ++Gl) {
        const uint8_t* vb = sT + v_off + 16 * ks * FP8_ROW + 128 * (2 * Gp + Gl);
        const uint32_t w0 = *reinterpret_cast<const uint32_t*>(vb);
        const uint32_t w1 = *reinterpret_cast<const uint32_t*>(vb + FP8_ROW);
        const uint32_t w2 = *reinterpret_cast<const uint32_t*>(vb + 8 * FP8_ROW);
        const uint32_t w3 = *reinterpret_cast<const uint32_t*>(vb + 9 * FP8_ROW);
        cvt_e4m3x4(prmt(w0, w1, 0x5140), a[2 * Gl][0], a[2 * Gl][1]);
        cvt_e4m3x4(prmt(w0, w1, 0x7362), a[2 * Gl + 1][0], a[2 * Gl + 1][1]);
        cvt_e4m3x4(prmt(w2, w3, 0x5140), a[2 * Gl][2], a[2 * Gl][3]);
        cvt_e4m3x4(prmt(w2, w3, 0x7362), a[2 * Gl + 1][2], a[2 * Gl + 1][3]);
      }
      wg_fence();
#pragma unroll
      for (int Gl = 0; Gl < 2; ++Gl) {
        const int G = 2 * Gp + Gl;
        const uint64_t dp = dPw + (Gl * 4 + ks) * 64;
        wg_mma_f16<true>(oacc[2 * G], a[2 * Gl], dp);
        wg_mma_f16<true>(oacc[2 * G + 1], a[2 * Gl + 1], dp);
      }
      wg_commit();
      if (q != 3 && q != 7) wg_wait<1>();
    }
    wg_wait<0>();
#pragma unroll
    for (int m = 0; m < 8; ++m) wg_reg_fence(oacc[m]);
    bar_wg(1 + WG);  // the warpgroup is done with this stage
    if (wtid == 0 && t + NST < ntiles) wg2_issue(kvb, tok0, tok1, t + NST, sbase, sMb);
  }

  // ---- epilogue: merge the two warpgroups' (m, l, kr, O^T); O = sum O_w 2^(m_w - m - kr_w) / l ----
#pragma unroll
  for (int off = 4; off < 32; off <<= 1)
#pragma unroll
    for (int k = 0; k < 8; ++k) l_run[k] += __shfl_xor_sync(0xffffffffu, l_run[k], off);
  __syncthreads();  // both warpgroups done with every stage
#if MLA_WG2_TL
  if (tid == 0 && blockIdx.x + gridDim.x * blockIdx.y < 1024) {
    uint64_t g3;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(g3));
    g_wg2_tl[8 * (blockIdx.x + gridDim.x * blockIdx.y) + 7] = g3;
  }
#endif
  float* sEm = reinterpret_cast<float*>(smem + C::E_OFF);  // [wg][32]
  float* sEl = sEm + 64;                                   // [wg][warp][32]
  float* sEk = sEl + 256;                                  // [wg]
  float* sO = reinterpret_cast<float*>(smem);              // [wg][64][128]
  if (g == 0) {
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const int head = 8 * (k >> 1) + 2 * t4 + (k & 1);
      sEl[(WG * 4 + wl) * 32 + head] = l_run[k];
      if (wl == 0) sEm[WG * 32 + head] = m_run[k];
    }
  }
  if (wtid == 0) sEk[WG] = pow2i(-kr);
  // The other warpgroup's value dims: WG 0 finishes G = 0, 1 (m-tiles 0-3), WG 1 G = 2, 3.
#pragma unroll
  for (int m = 0; m < 4; ++m)
#pragma unroll
    for (int i = 0; i < 16; ++i) sO[(WG * 64 + m * 16 + i) * 128 + wtid] = oacc[4 * (1 - WG) + m][i];
  __syncthreads();
  const float kmine = sEk[WG], kother = sEk[1 - WG];
#pragma unroll
  for (int j = 0; j < 4; ++j)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int head = 8 * j + 2 * t4 + e;
      const float m0 = sEm[WG * 32 + head], m1 = sEm[(1 - WG) * 32 + head];
      float l0 = 0.f, l1 = 0.f;
#pragma unroll
      for (int w = 0; w < 4; ++w) { l0 += sEl[(WG * 4 + w) * 32 + head]; l1 += sEl[((1 - WG) * 4 + w) * 32 + head]; }
      const float mm = fmaxf(m0, m1);
      const float e0 = ex2f(m0 - mm), e1 = ex2f(m1 - mm);
      const float l = l0 * e0 + l1 * e1;
      const float w0 = e0 * kmine / l, w1 = e1 * kother / l;
      const size_t bh = (size_t)b * p.h + head;
#pragma unroll
      for (int Gl = 0; Gl < 2; ++Gl) {
        const int G = 2 * WG + Gl;
        const int d0 = 128 * G + 32 * wl + 4 * g;
        float v[4];
#pragma unroll
        for (int idx = 0; idx < 4; ++idx) {
          const int mt = 2 * Gl + (idx >> 1), i = 4 * j + 2 * (idx & 1) + e;
          v[idx] = oacc[4 * WG + mt][i] * w0 + sO[((1 - WG) * 64 + mt * 16 + i) * 128 + wtid] * w1;
        }
        if (p.nsplit == 1) {
          uint2 o;
          o.x = bf16x2_bits(v[0], v[1]);
          o.y = bf16x2_bits(v[2], v[3]);
          *reinterpret_cast<uint2*>(p.out + bh * DV + d0) = o;
        } else {
          *reinterpret_cast<float4*>(p.opart + (bh * p.nsplit + split) * DV + d0) = make_float4(v[0], v[1], v[2], v[3]);
        }
      }
      if (p.nsplit > 1 && WG == 0 && wl == 0 && g == 0) p.lse[bh * p.nsplit + split] = mm + log2f(l);
    }
}

__global__ void __launch_bounds__(256, 1) mla_wg2_kernel(const MlaParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)  // wgmma: sm_90a only (see wg_kernel_available)
  using C = Wg2Cfg;
  constexpr int NT = C::NT, BN = C::BN, NST = C::NST;
  extern __shared__ __align__(128) uint8_t smem[];
  uint8_t* sQ = smem + C::Q_OFF;
  float* sQmax = reinterpret_cast<float*>(smem + C::R_OFF);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wg = tid >> 7;
  const int split = blockIdx.x, b = blockIdx.y;
  const int tok0 = split * p.split_len;
  const int tok1 = min(p.s, tok0 + p.split_len);
  const int ntiles = (tok1 - tok0 + BN - 1) / BN;
  if (ntiles <= 0) return;  // never: the host picks splits that all hold tokens
  const uint8_t* kvb = p.kv + (size_t)b * p.s * FP8_ROW;
  const uint32_t sbase = smem_u32(smem), sMb = sbase + C::B_OFF;
#if MLA_WG2_TL
  uint64_t tl_g0, tl_c0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(tl_g0));
  tl_c0 = clock64();
#endif
  const __nv_bfloat16* qb = p.q + (size_t)b * p.h * D;
#if MLA_WG2_QREG
  // Q (32 heads x 576 bf16 = 2304 x 16 B, contiguous per b): all 9 loads of a thread issued
  // first, before the tile copies are queued behind them (one round trip, not one per loop pass).
  uint4 qv[9];
#pragma unroll
  for (int k = 0; k < 9; ++k) qv[k] = __ldg(reinterpret_cast<const uint4*>(qb) + tid + NT * k);
#endif

  // A partial last tile leaves rows of its stage unwritten: zero that stage once, so
  // the rows past the split are finite (their P' is 0; an earlier tile's rows are finite too).
  if (tok1 - tok0 < ntiles * BN) {
    uint4* z = reinterpret_cast<uint4*>(smem + ((ntiles - 1) % NST) * C::STAGE);
    for (int i = tid; i < C::STAGE / 16; i += NT) z[i] = make_uint4(0u, 0u, 0u, 0u);
    fence_async_smem();
  }
  if (tid == 0) {
#pragma unroll
    for (int s = 0; s < 2 * NST; ++s) mbar_init(sMb + 8 * s, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (tid == 0)
    for (int t = 0; t < MLA_WG2_EARLY && t < ntiles; ++t) wg2_issue(kvb, tok0, tok1, t, sbase, sMb);

  // ---- Q -> shared: f16(q * 2^qe) latent (k order of the ldmatrix K fragments), bf16 rope ----
#if MLA_WG2_QREG
  {
    float mx = 0.f;
#pragma unroll
    for (int k = 0; k < 9; ++k) {
      if ((tid + NT * k) % 72 < 64) {  // latent dims only
        const __nv_bfloat162* h2 = reinterpret_cast<const __nv_bfloat162*>(&qv[k]);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 f = __bfloat1622float2(h2[e]);
          mx = fmaxf(mx, fmaxf(fabsf(f.x), fabsf(f.y)));
        }
      }
    }
    mx = __uint_as_float(__reduce_max_sync(0xffffffffu, __float_as_uint(mx)));
    if (lane == 0) sQmax[warp] = mx;
  }
  __syncthreads();
  float qmax = 0.f;
#pragma unroll
  for (int w = 0; w < 8; ++w) qmax = fmaxf(qmax, sQmax[w]);
  const int qe = min(100, max(-100, 13 - exponent_of(qmax)));
  const float qsc = pow2i(qe);
  const float fq = pow2i(-qe) * p.scale_log2;
#pragma unroll
  for (int k = 0; k < 9; ++k) {
    const int i = tid + NT * k, n = i / 72, c = i % 72;
    const uint32_t* w = reinterpret_cast<const uint32_t*>(&qv[k]);
    if (c < 64) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {  // dims d..d+3, d = 8c + 4hh
        const int d = 8 * c + 4 * hh;
        const float2 f0 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[2 * hh]));
        const float2 f1 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[2 * hh + 1]));
        // dims 16j + 4tq + {0,1} -> k 2tq + {0,1}; + {2,3} -> k 8 + 2tq + {0,1} (k-step 8c + j)
        const int K = 8 * (d >> 7) + ((d >> 4) & 7), tq = (d >> 2) & 3;
        uint8_t* base = sQ + K * 1024 + (n >> 3) * 256 + (n & 7) * 16 + tq * 4;
        *reinterpret_cast<uint32_t*>(base) = f16x2_bits(f0.x * qsc, f0.y * qsc);
        *reinterpret_cast<uint32_t*>(base + 128) = f16x2_bits(f1.x * qsc, f1.y * qsc);
      }
    } else {
#pragma unroll
      for (int e = 0; e < 4; ++e) {  // rope pair d, d + 1
        const int d = 8 * (c - 64) + 2 * e;
        const int K = 32 + (d >> 4), kk = d & 15;
        *reinterpret_cast<uint32_t*>(sQ + K * 1024 + (n >> 3) * 256 + (kk >> 3) * 128 + (n & 7) * 16 + (kk & 7) * 2) = w[e];
      }
    }
  }
#else
  // ---- Q -> shared: f16(q * 2^qe) latent (k order of the ldmatrix K fragments), bf16 rope ----
  {
    float mx = 0.f;
    for (int i = tid; i < 32 * 64; i += NT) {
      const uint4 v = __ldg(reinterpret_cast<const uint4*>(qb + (size_t)(i >> 6) * D + (i & 63) * 8));
      const __nv_bfloat162* h2 = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float2 f = __bfloat1622float2(h2[k]);
        mx = fmaxf(mx, fmaxf(fabsf(f.x), fabsf(f.y)));
      }
    }
    mx = __uint_as_float(__reduce_max_sync(0xffffffffu, __float_as_uint(mx)));
    if (lane == 0) sQmax[warp] = mx;
  }
  __syncthreads();
  float qmax = 0.f;
#pragma unroll
  for (int w = 0; w < 8; ++w) qmax = fmaxf(qmax, sQmax[w]);
  const int qe = min(100, max(-100, 13 - exponent_of(qmax)));
  const float qsc = pow2i(qe);
  const float fq = pow2i(-qe) * p.scale_log2;
  for (int i = tid; i < 32 * 128; i += NT) {  // (head n, 4 latent dims d..d+3)
    const int n = i >> 7, d = (i & 127) * 4;
    const uint2 v = __ldg(reinterpret_cast<const uint2*>(qb + (size_t)n * D + d));
    const float2 f0 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&v.x));
    const float2 f1 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&v.y));
    // dims 16j + 4tq + {0,1} -> k 2tq + {0,1}; + {2,3} -> k 8 + 2tq + {0,1} (k-step 8c + j)
    const int K = 8 * (d >> 7) + ((d >> 4) & 7), tq = (d >> 2) & 3;
    uint8_t* base = sQ + K * 1024 + (n >> 3) * 256 + (n & 7) * 16 + tq * 4;
    *reinterpret_cast<uint32_t*>(base) = f16x2_bits(f0.x * qsc, f0.y * qsc);
    *reinterpret_cast<uint32_t*>(base + 128) = f16x2_bits(f1.x * qsc, f1.y * qsc);
  }
  for (int i = tid; i < 32 * 32; i += NT) {  // (head n, rope pair)
    const int n = i >> 5, d = (i & 31) * 2;
    const uint32_t v = __ldg(reinterpret_cast<const uint32_t*>(qb + (size_t)n * D + 512 + d));
    const int K = 32 + (d >> 4), kk = d & 15;
    *reinterpret_cast<uint32_t*>(sQ + K * 1024 + (n >> 3) * 256 + (kk >> 3) * 128 + (n & 7) * 16 + (kk & 7) * 2) = v;
  }
#endif
  fence_async_smem();
  __syncthreads();  // Q complete (sQmax is reused as red below)
#if MLA_WG2_EARLY < MLA_WG2_NST
  if (tid == 0)
    for (int t = MLA_WG2_EARLY; t < NST && t < ntiles; ++t) wg2_issue(kvb, tok0, tok1, t, sbase, sMb);
#endif
#if MLA_WG2_TL
  uint64_t tl_g1, tl_g2 = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(tl_g1));
  if (tid == 0) {
    mbar_wait(sMb, 0u);  // tile 0 landed (non-destructive parity wait)
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(tl_g2));
  }
#endif
  if (wg == 0) mla_wg2_loop<0>(p, smem, kvb, tok0, tok1, ntiles, fq);
  else mla_wg2_loop<1>(p, smem, kvb, tok0, tok1, ntiles, fq);
#if MLA_WG2_TL
  if (tid == 0) {
    uint64_t g2;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(g2));
    const uint64_t c2 = clock64();
    uint32_t sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    const int id = blockIdx.x + gridDim.x * blockIdx.y;
    if (id < 1024) {
      unsigned long long* r = g_wg2_tl + 8 * id;
      r[0] = tl_g0; r[1] = tl_g1; r[2] = g2; r[3] = c2 - tl_c0; r[4] = sm; r[5] = 1; r[6] = tl_g2;
    }
  }
#endif
#endif
}

// ---------------------------------------------------------------------------
// FP8 cache, h = 16, session 5 (third helper): mla_wg2h16_kernel = mla_wg2_kernel for 16
// heads (a separate copy, so that the h = 32 kernel's code stays byte-identical).
// Same block (2 warpgroups, whole alternating 64-token tiles, one bulk copy per tile, 4 stages,
// raw rows, Wg2Cfg's shared layout) with m64n16k16 wgmmas: S^T chunk = 8 fp32 per thread,
// O^T = 8 m-tiles x 8 = 64 registers, P'_c one stmatrix.x4.trans per chunk and warp; the
// per-token copies and e4m3 conversions are those of h = 32, the tensor work half.
// Q: 16 heads x 576 bf16 = 1152 x 16 B (4.5 loads per thread), stored in the h = 32 layout
// (head groups 0, 1 of each k-step). 171 registers, no spills (h = 32: 255 + 72 B).
// Host: fp8 h = 16 from B*s >= 8192 (make_plan: 64-token tiles, one block per SM).
// H200 dev harness: B=256 s=32768 1317-1403 us (mla_fp8_kernel 1790-1877), 89-96% of copy
// (4.27 TB/s); every B*s >= 2^20 point 87-96% (old kernel 64-71%). Notes:
// dev/logs/session5_mla.md, "h=16 (third helper)".
// ---------------------------------------------------------------------------
#define MLA_WG_D8 "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
#define MLA_WG_D8_OUT "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3]), "=f"(d[4]), "=f"(d[5]), "=f"(d[6]), "=f"(d[7])
__device__ __forceinline__ void wg_reg_fence8(float (&d)[8]) {
#pragma unroll
  for (int i = 0; i < 8; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
// D[64x16] (+)= A[64x16] (registers) * B[16x16] (shared, K-major).
template <bool ACC>
__device__ __forceinline__ void wg16_mma_f16(float (&d)[8], const uint32_t (&a)[4], uint64_t db) {
  if constexpr (!ACC) {
    asm volatile(
        "wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7},"
        " {%8,%9,%10,%11}, %12, 0, 1, 1, 0;\n"
        : MLA_WG_D8_OUT
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
    return;
  }
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %13, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 {%0,%1,%2,%3,%4,%5,%6,%7},"
      " {%8,%9,%10,%11}, %12, p, 1, 1, 0;\n}\n"
      : MLA_WG_D8
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "n"(ACC ? 1 : 0));
}
template <bool ACC>
__device__ __forceinline__ void wg16_mma_bf16(float (&d)[8], const uint32_t (&a)[4], uint64_t db) {
  if constexpr (!ACC) {
    asm volatile(
        "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7},"
        " {%8,%9,%10,%11}, %12, 0, 1, 1, 0;\n"
        : MLA_WG_D8_OUT
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
    return;
  }
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %13, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 {%0,%1,%2,%3,%4,%5,%6,%7},"
      " {%8,%9,%10,%11}, %12, p, 1, 1, 0;\n}\n"
      : MLA_WG_D8
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "n"(ACC ? 1 : 0));
}

template <int WG>
__device__ __forceinline__ void mla_wg2h16_loop(const MlaParams& p, uint8_t* smem, const uint8_t* kvb, int tok0,
                                                int tok1, int ntiles, float fq) {
  using C = Wg2Cfg;
  constexpr int BN = C::BN, NST = C::NST;
  const int tid = threadIdx.x, lane = tid & 31, wl = (tid >> 5) & 3, wtid = tid & 127;
  const int g = lane >> 2, t4 = lane & 3;
  const int split = blockIdx.x, b = blockIdx.y;
  const uint32_t sbase = smem_u32(smem);
  const uint32_t sQb = sbase + C::Q_OFF;
  const uint32_t sPw = sbase + C::P_OFF + WG * 8192;
  const uint64_t dQ = wg_desc(sQb), dPw = wg_desc(sPw);
  const uint32_t sMb = sbase + C::B_OFF;
  float* sRedW = reinterpret_cast<float*>(smem + C::R_OFF) + WG * 2 * 136;

  float m_run[4], l_run[4];  // heads 8(k>>1) + 2t4 + (k&1)
#pragma unroll
  for (int k = 0; k < 4; ++k) { m_run[k] = -INFINITY; l_run[k] = 0.f; }
  int kr = 100;
  float oacc[8][8];
#pragma unroll
  for (int m = 0; m < 8; ++m)
#pragma unroll
    for (int i = 0; i < 8; ++i) oacc[m][i] = 0.f;

  const int rg = 16 * wl + g;
  const int mi = lane >> 3;
  const uint32_t k_off = (uint32_t)((16 * wl + 8 * (mi & 1) + (lane & 7)) * FP8_ROW + 16 * (mi >> 1));
  const uint32_t r_off = (uint32_t)((16 * wl + (lane & 15)) * FP8_ROW + FP8_ROPE_OFF + 16 * (lane >> 4));
  const int sc_off = rg * FP8_ROW + FP8_SCALE_OFF;
  const int v_off = 2 * t4 * FP8_ROW + 32 * wl + 4 * g;
  const uint32_t p_lane = (uint32_t)((mi & 1) * 128 + (lane & 7) * 16 + (mi >> 1) * 256);

  uint32_t bufA[4][4], bufB[4][4];
  int it = 0;
  for (int t = WG; t < ntiles; t += 2, ++it) {
    const int slot = t % NST;
    const uint8_t* sT = smem + slot * C::STAGE;
    const uint32_t sTa = sbase + slot * C::STAGE;
    mbar_wait(sMb + 8 * (t % (2 * NST)), (uint32_t)((t / (2 * NST)) & 1));
    const int first = tok0 + t * BN;
    const bool partial = first + BN > tok1;

    // ---- S^T (64 tokens x 16 heads) ----
    float4 sc0 = *reinterpret_cast<const float4*>(sT + sc_off);
    float4 sc1 = *reinterpret_cast<const float4*>(sT + sc_off + 8 * FP8_ROW);
    const bool v0 = first + rg < tok1, v1 = first + rg + 8 < tok1;
    if (partial) {
      if (!v0) sc0 = make_float4(0.f, 0.f, 0.f, 0.f);
      if (!v1) sc1 = make_float4(0.f, 0.f, 0.f, 0.f);
    }
    float sv[8];
    {
      float accr[8], acc0[8], acc1[8];
#pragma unroll
      for (int r = 0; r < 4; ++r) ldsm_x4(sTa + r_off + 32 * r, bufA[r][0], bufA[r][1], bufA[r][2], bufA[r][3]);
      wg_fence();
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        if (r == 0) wg16_mma_bf16<false>(accr, bufA[r], dQ + (32 + r) * 64);
        else wg16_mma_bf16<true>(accr, bufA[r], dQ + (32 + r) * 64);
      }
      wg_commit();
#pragma unroll
      for (int hc = 0; hc < 8; ++hc) {
        const int c = hc >> 1, h = hc & 1;
        uint32_t (&a)[4][4] = (hc & 1) ? bufA : bufB;
        float (&acc)[8] = (c & 1) ? acc1 : acc0;
#pragma unroll
        for (int q = 0; q < 2; ++q) {
          uint32_t r0, r1, r2, r3;
          ldsm_x4(sTa + k_off + 128 * c + 32 * (2 * h + q), r0, r1, r2, r3);
          cvt_e4m3x4(r0, a[2 * q][0], a[2 * q][2]);
          cvt_e4m3x4(r1, a[2 * q][1], a[2 * q][3]);
          cvt_e4m3x4(r2, a[2 * q + 1][0], a[2 * q + 1][2]);
          cvt_e4m3x4(r3, a[2 * q + 1][1], a[2 * q + 1][3]);
        }
        wg_fence();
#pragma unroll
        for (int ks = 0; ks < 4; ++ks) {
          const int K = 8 * c + 4 * h + ks;
          if (h == 0 && ks == 0) wg16_mma_f16<false>(acc, a[ks], dQ + K * 64);
          else wg16_mma_f16<true>(acc, a[ks], dQ + K * 64);
        }
        wg_commit();
        wg_wait<1>();
        if (hc == 0) {
          wg_reg_fence8(accr);
#pragma unroll
          for (int i = 0; i < 8; ++i) sv[i] = accr[i] * p.scale_log2;
        }
        if (hc >= 2 && h == 0) {
          float (&af)[8] = ((c - 1) & 1) ? acc1 : acc0;
          wg_reg_fence8(af);
          const float f0 = (c - 1 == 0 ? sc0.x : c - 1 == 1 ? sc0.y : sc0.z) * fq;
          const float f1 = (c - 1 == 0 ? sc1.x : c - 1 == 1 ? sc1.y : sc1.z) * fq;
#pragma unroll
          for (int i = 0; i < 8; ++i) sv[i] = fmaf(af[i], ((i >> 1) & 1) ? f1 : f0, sv[i]);
        }
      }
      wg_wait<0>();
      float (&al)[8] = acc1;
      wg_reg_fence8(al);
      {
        const float f0 = sc0.w * fq, f1 = sc1.w * fq;
#pragma unroll
        for (int i = 0; i < 8; ++i) sv[i] = fmaf(al[i], ((i >> 1) & 1) ? f1 : f0, sv[i]);
      }
    }
    if (partial) {
#pragma unroll
      for (int i = 0; i < 8; ++i)
        if (!(((i >> 1) & 1) ? v1 : v0)) sv[i] = -INFINITY;
    }

    // ---- softmax (16 heads over the warpgroup's 64 tokens) ----
    float tmax[4];
    float smax;
    {
      float cm[4];
#pragma unroll
      for (int j = 0; j < 2; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) cm[2 * j + e] = fmaxf(sv[4 * j + e], sv[4 * j + 2 + e]);
#pragma unroll
      for (int off = 4; off < 32; off <<= 1)
#pragma unroll
        for (int k = 0; k < 4; ++k) cm[k] = fmaxf(cm[k], __shfl_xor_sync(0xffffffffu, cm[k], off));
      const float smx_t = fmaxf(fmaxf(fmaxf(fabsf(sc0.x), fabsf(sc0.y)), fmaxf(fabsf(sc0.z), fabsf(sc0.w))),
                                fmaxf(fmaxf(fabsf(sc1.x), fabsf(sc1.y)), fmaxf(fabsf(sc1.z), fabsf(sc1.w))));
      const uint32_t u = __reduce_max_sync(0xffffffffu, __float_as_uint(smx_t));
      float* red = sRedW + (it & 1) * 136;
      if (g == 0) *reinterpret_cast<float4*>(red + wl * 16 + t4 * 4) = make_float4(cm[0], cm[1], cm[2], cm[3]);
      if (lane == 0) red[64 + wl] = __uint_as_float(u);
      bar_wg(1 + WG);
#pragma unroll
      for (int k = 0; k < 4; ++k) tmax[k] = m_run[k];
#pragma unroll
      for (int w = 0; w < 4; ++w) {
        const float4 x = *reinterpret_cast<const float4*>(red + w * 16 + t4 * 4);
        tmax[0] = fmaxf(tmax[0], x.x); tmax[1] = fmaxf(tmax[1], x.y);
        tmax[2] = fmaxf(tmax[2], x.z); tmax[3] = fmaxf(tmax[3], x.w);
      }
      const float4 sm = *reinterpret_cast<const float4*>(red + 64);
      smax = fmaxf(fmaxf(sm.x, sm.y), fmaxf(sm.z, sm.w));
    }
    const int kold = kr;
    kr = max(-100, min(kr, 6 - exponent_of(smax)));
    const float pw = pow2i(kr), kf = pow2i(max(-126, kr - kold));
    float fac[4];
    bool rescale = false;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const float alpha = ex2f(m_run[k] - tmax[k]);
      m_run[k] = tmax[k];
      fac[k] = alpha * kf;
      l_run[k] *= alpha;
      rescale |= fac[k] != 1.f;
    }
    float pv[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int k = 2 * (i >> 2) + (i & 1);
      pv[i] = ex2f(sv[i] - m_run[k]);
      l_run[k] += pv[i];
    }
    uint32_t pk[4][4];  // [c][f16x2 reg]
    {
      const float scr[2][4] = {{sc0.x, sc0.y, sc0.z, sc0.w}, {sc1.x, sc1.y, sc1.z, sc1.w}};
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const float cs0 = scr[0][c] * pw, cs1 = scr[1][c] * pw;
        pk[c][0] = f16x2_bits(pv[0] * cs0, pv[1] * cs0);
        pk[c][1] = f16x2_bits(pv[2] * cs1, pv[3] * cs1);
        pk[c][2] = f16x2_bits(pv[4] * cs0, pv[5] * cs0);
        pk[c][3] = f16x2_bits(pv[6] * cs1, pv[7] * cs1);
      }
    }
    auto p_store = [&](int half) {
#pragma unroll
      for (int cl = 0; cl < 2; ++cl) {
        const int c = 2 * half + cl;
        stsm_x4_t(sPw + (cl * 4 + wl) * 1024 + p_lane, pk[c][0], pk[c][1], pk[c][2], pk[c][3]);
      }
      fence_async_smem();
    };
    p_store(0);
    if (__any_sync(0xffffffffu, rescale)) {
#pragma unroll
      for (int m = 0; m < 8; ++m)
#pragma unroll
        for (int i = 0; i < 8; ++i) oacc[m][i] *= fac[2 * (i >> 2) + (i & 1)];
    }
    bar_wg(1 + WG);

    // ---- O^T += V^T P'^T ----
#pragma unroll
    for (int m = 0; m < 8; ++m) wg_reg_fence8(oacc[m]);
#pragma unroll
    for (int q = 0; q < 8; ++q) {
      const int Gp = q >> 2, ks = q & 3;
      if (q == 4) {
        wg_wait<0>();
        bar_wg(1 + WG);
        p_store(1);
        bar_wg(1 + WG);
      }
      uint32_t (&a)[4][4] = (q & 1) ? bufA : bufB;
#pragma unroll
      for (int Gl = 0; Gl < 2; ++Gl) {
        const uint8_t* vb = sT + v_off + 16 * ks * FP8_ROW + 128 * (2 * Gp + Gl);
        const uint32_t w0 = *reinterpret_cast<const uint32_t*>(vb);
        const uint32_t w1 = *reinterpret_cast<const uint32_t*>(vb + FP8_ROW);
        const uint32_t w2 = *reinterpret_cast<const uint32_t*>(vb + 8 * FP8_ROW);
        const uint32_t w3 = *reinterpret_cast<const uint32_t*>(vb + 9 * FP8_ROW);
        cvt_e4m3x4(prmt(w0, w1, 0x5140), a[2 * Gl][0], a[2 * Gl][1]);
        cvt_e4m3x4(prmt(w0, w1, 0x7362), a[2 * Gl + 1][0], a[2 * Gl + 1][1]);
        cvt_e4m3x4(prmt(w2, w3, 0x5140), a[2 * Gl][2], a[2 * Gl][3]);
        cvt_e4m3x4(prmt(w2, w3, 0x7362), a[2 * Gl + 1][2], a[2 * Gl + 1][3]);
      }
      wg_fence();
#pragma unroll
      for (int Gl = 0; Gl < 2; ++Gl) {
        const int G = 2 * Gp + Gl;
        const uint64_t dp = dPw + (Gl * 4 + ks) * 64;
        wg16_mma_f16<true>(oacc[2 * G], a[2 * Gl], dp);
        wg16_mma_f16<true>(oacc[2 * G + 1], a[2 * Gl + 1], dp);
      }
      wg_commit();
      if (q != 3 && q != 7) wg_wait<1>();
    }
    wg_wait<0>();
#pragma unroll
    for (int m = 0; m < 8; ++m) wg_reg_fence8(oacc[m]);
    bar_wg(1 + WG);
    if (wtid == 0 && t + NST < ntiles) wg2_issue(kvb, tok0, tok1, t + NST, sbase, sMb);
  }

  // ---- epilogue: merge the two warpgroups ----
#pragma unroll
  for (int off = 4; off < 32; off <<= 1)
#pragma unroll
    for (int k = 0; k < 4; ++k) l_run[k] += __shfl_xor_sync(0xffffffffu, l_run[k], off);
  __syncthreads();
  float* sEm = reinterpret_cast<float*>(smem + C::E_OFF);  // [wg][32] (heads < 16 used)
  float* sEl = sEm + 64;                                   // [wg][warp][32]
  float* sEk = sEl + 256;                                  // [wg]
  float* sO = reinterpret_cast<float*>(smem);              // [wg][32][128]
  if (g == 0) {
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int head = 8 * (k >> 1) + 2 * t4 + (k & 1);
      sEl[(WG * 4 + wl) * 32 + head] = l_run[k];
      if (wl == 0) sEm[WG * 32 + head] = m_run[k];
    }
  }
  if (wtid == 0) sEk[WG] = pow2i(-kr);
#pragma unroll
  for (int m = 0; m < 4; ++m)
#pragma unroll
    for (int i = 0; i < 8; ++i) sO[(WG * 32 + m * 8 + i) * 128 + wtid] = oacc[4 * (1 - WG) + m][i];
  __syncthreads();
  const float kmine = sEk[WG], kother = sEk[1 - WG];
#pragma unroll
  for (int j = 0; j < 2; ++j)
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const int head = 8 * j + 2 * t4 + e;
      const float m0 = sEm[WG * 32 + head], m1 = sEm[(1 - WG) * 32 + head];
      float l0 = 0.f, l1 = 0.f;
#pragma unroll
      for (int w = 0; w < 4; ++w) { l0 += sEl[(WG * 4 + w) * 32 + head]; l1 += sEl[((1 - WG) * 4 + w) * 32 + head]; }
      const float mm = fmaxf(m0, m1);
      const float e0 = ex2f(m0 - mm), e1 = ex2f(m1 - mm);
      const float l = l0 * e0 + l1 * e1;
      const float w0 = e0 * kmine / l, w1 = e1 * kother / l;
      const size_t bh = (size_t)b * p.h + head;
#pragma unroll
      for (int Gl = 0; Gl < 2; ++Gl) {
        const int G = 2 * WG + Gl;
        const int d0 = 128 * G + 32 * wl + 4 * g;
        float v[4];
#pragma unroll
        for (int idx = 0; idx < 4; ++idx) {
          const int mt = 2 * Gl + (idx >> 1), i = 4 * j + 2 * (idx & 1) + e;
          v[idx] = oacc[4 * WG + mt][i] * w0 + sO[((1 - WG) * 32 + mt * 8 + i) * 128 + wtid] * w1;
        }
        if (p.nsplit == 1) {
          uint2 o;
          o.x = bf16x2_bits(v[0], v[1]);
          o.y = bf16x2_bits(v[2], v[3]);
          *reinterpret_cast<uint2*>(p.out + bh * DV + d0) = o;
        } else {
          *reinterpret_cast<float4*>(p.opart + (bh * p.nsplit + split) * DV + d0) = make_float4(v[0], v[1], v[2], v[3]);
        }
      }
      if (p.nsplit > 1 && WG == 0 && wl == 0 && g == 0) p.lse[bh * p.nsplit + split] = mm + log2f(l);
    }
}

__global__ void __launch_bounds__(256, 1) mla_wg2h16_kernel(const MlaParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using C = Wg2Cfg;
  constexpr int NT = C::NT, BN = C::BN, NST = C::NST;
  constexpr int NQ = 16 * 72;  // 16-byte pieces of Q per b
  extern __shared__ __align__(128) uint8_t smem[];
  uint8_t* sQ = smem + C::Q_OFF;
  float* sQmax = reinterpret_cast<float*>(smem + C::R_OFF);

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wg = tid >> 7;
  const int split = blockIdx.x, b = blockIdx.y;
  const int tok0 = split * p.split_len;
  const int tok1 = min(p.s, tok0 + p.split_len);
  const int ntiles = (tok1 - tok0 + BN - 1) / BN;
  if (ntiles <= 0) return;
  const uint8_t* kvb = p.kv + (size_t)b * p.s * FP8_ROW;
  const uint32_t sbase = smem_u32(smem), sMb = sbase + C::B_OFF;
  const __nv_bfloat16* qb = p.q + (size_t)b * 16 * D;
  uint4 qv[5];
#pragma unroll
  for (int k = 0; k < 5; ++k)
    qv[k] = (tid + NT * k < NQ) ? __ldg(reinterpret_cast<const uint4*>(qb) + tid + NT * k) : make_uint4(0u, 0u, 0u, 0u);

  if (tok1 - tok0 < ntiles * BN) {
    uint4* z = reinterpret_cast<uint4*>(smem + ((ntiles - 1) % NST) * C::STAGE);
    for (int i = tid; i < C::STAGE / 16; i += NT) z[i] = make_uint4(0u, 0u, 0u, 0u);
    fence_async_smem();
  }
  if (tid == 0) {
#pragma unroll
    for (int s = 0; s < 2 * NST; ++s) mbar_init(sMb + 8 * s, 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (tid == 0)
    for (int t = 0; t < MLA_WG2_EARLY && t < ntiles; ++t) wg2_issue(kvb, tok0, tok1, t, sbase, sMb);
  {
    float mx = 0.f;  // zero pieces past NQ do not change the max
#pragma unroll
    for (int k = 0; k < 5; ++k) {
      if ((tid + NT * k) % 72 < 64) {
        const __nv_bfloat162* h2 = reinterpret_cast<const __nv_bfloat162*>(&qv[k]);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 f = __bfloat1622float2(h2[e]);
          mx = fmaxf(mx, fmaxf(fabsf(f.x), fabsf(f.y)));
        }
      }
    }
    mx = __uint_as_float(__reduce_max_sync(0xffffffffu, __float_as_uint(mx)));
    if (lane == 0) sQmax[warp] = mx;
  }
  __syncthreads();
  float qmax = 0.f;
#pragma unroll
  for (int w = 0; w < 8; ++w) qmax = fmaxf(qmax, sQmax[w]);
  const int qe = min(100, max(-100, 13 - exponent_of(qmax)));
  const float qsc = pow2i(qe);
  const float fq = pow2i(-qe) * p.scale_log2;
#pragma unroll
  for (int k = 0; k < 5; ++k) {
    const int i = tid + NT * k, n = i / 72, c = i % 72;
    if (i >= NQ) break;
    const uint32_t* w = reinterpret_cast<const uint32_t*>(&qv[k]);
    if (c < 64) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int d = 8 * c + 4 * hh;
        const float2 f0 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[2 * hh]));
        const float2 f1 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[2 * hh + 1]));
        const int K = 8 * (d >> 7) + ((d >> 4) & 7), tq = (d >> 2) & 3;
        uint8_t* base = sQ + K * 1024 + (n >> 3) * 256 + (n & 7) * 16 + tq * 4;
        *reinterpret_cast<uint32_t*>(base) = f16x2_bits(f0.x * qsc, f0.y * qsc);
        *reinterpret_cast<uint32_t*>(base + 128) = f16x2_bits(f1.x * qsc, f1.y * qsc);
      }
    } else {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int d = 8 * (c - 64) + 2 * e;
        const int K = 32 + (d >> 4), kk = d & 15;
        *reinterpret_cast<uint32_t*>(sQ + K * 1024 + (n >> 3) * 256 + (kk >> 3) * 128 + (n & 7) * 16 + (kk & 7) * 2) = w[e];
      }
    }
  }
  fence_async_smem();
  __syncthreads();
#if MLA_WG2_EARLY < MLA_WG2_NST
  if (tid == 0)
    for (int t = MLA_WG2_EARLY; t < NST && t < ntiles; ++t) wg2_issue(kvb, tok0, tok1, t, sbase, sMb);
#endif
  if (wg == 0) mla_wg2h16_loop<0>(p, smem, kvb, tok0, tok1, ntiles, fq);
  else mla_wg2h16_loop<1>(p, smem, kvb, tok0, tok1, ntiles, fq);
#endif
}

// 1 when the module was built for sm_90a (wgmma available), 0 for a plain sm_90 build.
__global__ void mla_wg_probe(int* out) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  *out = 1;
#else
  *out = 0;
#endif
}

// One block of 128 threads per (b, head): combine the splits.
__global__ void __launch_bounds__(128) mla_combine_kernel(const float* __restrict__ opart, const float* __restrict__ lse,
                                                          int nsplit, __nv_bfloat16* __restrict__ out) {
  extern __shared__ float wsh[];
  const size_t bh = blockIdx.x;
  __shared__ float smax, ssum;
  for (int i = threadIdx.x; i < nsplit; i += blockDim.x) wsh[i] = lse[bh * nsplit + i];
  __syncthreads();
  if (threadIdx.x < 32) {
    float m = -INFINITY;
    for (int i = threadIdx.x; i < nsplit; i += 32) m = fmaxf(m, wsh[i]);
    for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    float s = 0.f;
    for (int i = threadIdx.x; i < nsplit; i += 32) s += exp2f(wsh[i] - m);
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (threadIdx.x == 0) { smax = m; ssum = s; }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < nsplit; i += blockDim.x) wsh[i] = exp2f(wsh[i] - smax) / ssum;
  __syncthreads();
  float4 acc = make_float4(0, 0, 0, 0);
  const float4* src = reinterpret_cast<const float4*>(opart + bh * nsplit * DV) + threadIdx.x;
  for (int i = 0; i < nsplit; ++i) {
    float4 v = __ldg(src + (size_t)i * (DV / 4));
    float w = wsh[i];
    acc.x += w * v.x; acc.y += w * v.y; acc.z += w * v.z; acc.w += w * v.w;
  }
  __nv_bfloat162* o = reinterpret_cast<__nv_bfloat162*>(out + bh * DV) + threadIdx.x * 2;
  o[0] = __floats2bfloat162_rn(acc.x, acc.y);
  o[1] = __floats2bfloat162_rn(acc.z, acc.w);
}

struct Plan {
  int MT, BN, hb, hg, nsplit, split_len;
};

// fp8 h=32 runs a wgmma kernel (mla_wg2_kernel / mla_wg_kernel, see use_wg1) from
// B*s >= 8192 tokens; below that (launch- and
// latency-bound, 16-23 us) the shared-memory dequantisation kernel measured 3-7% faster
// (H200 dev grid, NOTES.md). MOESIM_MLA_F8H32=old (dev knob, for A/B runs) keeps the
// old kernel everywhere.
// The harness must be built for sm_90a (CMAKE_CUDA_ARCHITECTURES=90a) for the wgmma kernel;
// a plain sm_90 build keeps the old kernel (probed once, outside any timing).
bool wg_kernel_available() {
  static const bool v = [] {
    int* d = nullptr;
    int h = 0;
    MOESIM_CUDA_CHECK(cudaMalloc(&d, sizeof(int)));
    mla_wg_probe<<<1, 1>>>(d);
    CUSTOM_CHECK_LAUNCH();
    MOESIM_CUDA_CHECK(cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost));
    MOESIM_CUDA_CHECK(cudaFree(d));
    if (!h) std::fprintf(stderr, "mla_decode: built without sm_90a, fp8 h=32 uses the mma.sync kernel\n");
    return h == 1;
  }();
  return v;
}
bool use_wg_kernel(int B, int s) {
  static const bool off = [] {
    const char* e = std::getenv("MOESIM_MLA_F8H32");
    return e && std::string(e) == "old";
  }();
  return !off && (long)B * s >= 8192 && wg_kernel_available();
}

// fp8 h=16: mla_wg2h16_kernel (plan with 64-token tiles, one block per SM) from B*s >= 8192
// tokens (the h=32 threshold), mla_fp8_kernel (32-token tiles, 2 blocks per SM) below. H200 dev
// grid (session 5, third helper): 0.61-0.99x the time of mla_fp8_kernel at every B*s >= 8192
// point, short splits included (unlike h=32); below 8192 tokens it lost 5-15% (B=1 s<=2048).
// MOESIM_MLA_F8H16=old / wg2 (dev knobs, A/B runs and checks): one of the two everywhere
// (wg2: every fp8 h=16 shape, for the checks; needs sm_90a).
int f8h16_mode() {
  static const int v = [] {
    const char* e = std::getenv("MOESIM_MLA_F8H16");
    return e && std::string(e) == "old" ? 1 : e && std::string(e) == "wg2" ? 2 : 0;
  }();
  return v;
}

Plan make_plan(int B, int h, int s, bool fp8, int sms, int force_nsplit = 0, bool no_wg16 = false) {
  Plan pl{};
  if (h % 64 == 0) pl.MT = 4;
  else if (h == 32) pl.MT = 2;
  else if (h == 16) pl.MT = 1;
  else throw std::runtime_error("mla_decode: heads must be 16, 32 or a multiple of 64");
  const bool wg16 = fp8 && pl.MT == 1 && !no_wg16 &&
                    (f8h16_mode() == 2 ? wg_kernel_available() : f8h16_mode() == 0 && use_wg_kernel(B, s));
  // fp8 h=16: mla_fp8_kernel (32-token tiles) or mla_wg2h16_kernel (64, BN identifies it)
  pl.BN = wg16 ? 64 : ((fp8 && pl.MT == 4) || pl.MT == 1) ? 32 : 64;
  const int slots = sms * (pl.MT == 1 && !wg16 ? 2 : 1);  // resident blocks
  pl.hb = 16 * pl.MT;
  pl.hg = h / pl.hb;
  const int tiles = (s + pl.BN - 1) / pl.BN;
  const long base = (long)B * pl.hg;
  int best = 1;
  double best_cost = 1e300;
  // At most 128 splits: the combine kernel (one 128-thread block per (b, head), splits
  // read in sequence) becomes latency-bound beyond that (H200 dev run: B=1 s=32768 h=16
  // took 45 us with 256 splits, 35-40 us with 128). A minimum split length instead made
  // small problems slow (one block walking 8 tiles: ~25 us for B=1 s=512).
  const int maxns = std::max(1, std::min({tiles, 4 * slots, 128}));
  // fp8 h=16 (mla_fp8_kernel): the combine traffic of a split (fp32 partial output
  // written and read back), in units of cache tiles spread over all slots, counts once
  // the grid needs more than one wave: keeps large batches from splitting for a marginal
  // wave-quantisation gain (a dev version took 18 splits at h=32 B=256 s=32768 without
  // it). The other plans are unchanged.
  const double tile_bytes = (double)pl.BN * FP8_ROW;
  const double combine_tiles =
      (fp8 && (pl.MT == 1 || (pl.MT == 2 && use_wg_kernel(B, s)))) ? (double)pl.hb * DV * 4 * 2 / tile_bytes : 0.0;
  for (int ns = 1; ns <= maxns; ++ns) {
    long blocks = base * ns;
    long waves = (blocks + slots - 1) / slots;
    double cost = (double)waves * ((tiles + ns - 1) / ns + 1.0) +
                  (ns > 1 && blocks > slots ? blocks * combine_tiles / slots : 0.0);
    if (cost < best_cost - 1e-9) { best_cost = cost; best = ns; }
  }
  if (force_nsplit) best = std::min(force_nsplit, tiles);
  // Tokens per split, in whole tiles; recompute the count so every split holds tokens.
  const int tiles_per = (tiles + best - 1) / best;
  pl.split_len = tiles_per * pl.BN;
  pl.nsplit = (s + pl.split_len - 1) / pl.split_len;
  return pl;
}

template <int MT, int BN, bool FP8, int NST>
void launch_cfg(const Plan& pl, const MlaParams& p, cudaStream_t st) {
  using C = Cfg<MT, BN, FP8, NST>;
  static bool attr_set = false;
  if (!attr_set) {
    MOESIM_CUDA_CHECK(cudaFuncSetAttribute(mla_decode_kernel<MT, BN, FP8, NST>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM));
    attr_set = true;
  }
  dim3 grid(pl.nsplit, p.B, pl.hg);
  mla_decode_kernel<MT, BN, FP8, NST><<<grid, NTHREADS, C::SMEM, st>>>(p);
  CUSTOM_CHECK_LAUNCH();
}

template <int MT, int NST>
void launch_f8(const Plan& pl, const MlaParams& p, cudaStream_t st) {
  using C = F8Cfg<MT, NST>;
  static bool attr_set = false;
  if (!attr_set) {
    MOESIM_CUDA_CHECK(
        cudaFuncSetAttribute(mla_fp8_kernel<MT, NST>, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM));
    attr_set = true;
  }
  dim3 grid(pl.nsplit, p.B, pl.hg);
  mla_fp8_kernel<MT, NST><<<grid, C::NT, C::SMEM, st>>>(p);
  CUSTOM_CHECK_LAUNCH();
}

void launch_wg(const Plan& pl, const MlaParams& p, cudaStream_t st) {
  static bool attr_set = false;
  if (!attr_set) {
    MOESIM_CUDA_CHECK(cudaFuncSetAttribute(mla_wg_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, WgCfg::SMEM));
    attr_set = true;
  }
  dim3 grid(pl.nsplit, p.B, 1);
  mla_wg_kernel<<<grid, WgCfg::NT, WgCfg::SMEM, st>>>(p);
  CUSTOM_CHECK_LAUNCH();
}

void launch_wg2(const Plan& pl, const MlaParams& p, cudaStream_t st) {
  static bool attr_set = false;
  if (!attr_set) {
    MOESIM_CUDA_CHECK(cudaFuncSetAttribute(mla_wg2_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Wg2Cfg::SMEM));
    attr_set = true;
  }
  dim3 grid(pl.nsplit, p.B, 1);
  mla_wg2_kernel<<<grid, Wg2Cfg::NT, Wg2Cfg::SMEM, st>>>(p);
  CUSTOM_CHECK_LAUNCH();
}
void launch_wg2h16(const Plan& pl, const MlaParams& p, cudaStream_t st) {
  static bool attr_set = false;
  if (!attr_set) {
    MOESIM_CUDA_CHECK(
        cudaFuncSetAttribute(mla_wg2h16_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Wg2Cfg::SMEM));
    attr_set = true;
  }
  dim3 grid(pl.nsplit, p.B, 1);
  mla_wg2h16_kernel<<<grid, Wg2Cfg::NT, Wg2Cfg::SMEM, st>>>(p);
  CUSTOM_CHECK_LAUNCH();
}
// mla_wg2_kernel for splits of >= 16 tiles (1024 tokens), session 4's mla_wg_kernel below:
// with 1-8 tiles per split (each warpgroup walks half of them in sequence) mla_wg2_kernel
// measured up to 11% slower, from 16 tiles on 10-39% faster (H200 dev grid, session 5).
// MOESIM_MLA_F8H32=wg1 / wg2 (dev knobs, A/B runs): one of the two everywhere.
bool use_wg1(const Plan& pl) {
  static const int v = [] {
    const char* e = std::getenv("MOESIM_MLA_F8H32");
    return e && std::string(e) == "wg1" ? 1 : e && std::string(e) == "wg2" ? 2 : 0;
  }();
  return v == 1 || (v == 0 && pl.split_len < 16 * 64);
}

struct MlaWork {
  DevBuf<float> opart, lse;
};

void launch_mla(const Plan& pl, bool fp8, const __nv_bfloat16* q, const uint8_t* kv, int B, int h, int s,
                __nv_bfloat16* out, MlaWork& w, cudaStream_t st) {
  MlaParams p{};
  p.q = q; p.kv = kv; p.B = B; p.h = h; p.s = s;
  p.nsplit = pl.nsplit; p.split_len = pl.split_len;
  p.scale_log2 = (float)(1.0 / std::sqrt(192.0) * 1.4426950408889634);
  p.out = out;
  if (pl.nsplit > 1) {
    size_t need = (size_t)B * h * pl.nsplit;
    if (w.lse.n < need) { w.lse.alloc(need); w.opart.alloc(need * DV); }
    p.opart = w.opart.p; p.lse = w.lse.p;
  }
  // Configurations (heads per block, tile tokens, cp.async stages): see NOTES.md.
  if (pl.MT == 4) { if (fp8) launch_cfg<4, 32, true, 4>(pl, p, st); else launch_cfg<4, 64, false, 2>(pl, p, st); }
  else if (pl.MT == 2) {
    if (fp8) { if (use_wg_kernel(B, s)) { if (use_wg1(pl)) launch_wg(pl, p, st); else launch_wg2(pl, p, st); } else launch_cfg<2, 64, true, 2>(pl, p, st); }
    else launch_cfg<2, 64, false, 2>(pl, p, st);
  }
  else {
    if (fp8) { if (pl.BN == 64) launch_wg2h16(pl, p, st); else launch_f8<1, 4>(pl, p, st); }
    else launch_cfg<1, 32, false, 2>(pl, p, st);
  }
  if (pl.nsplit > 1) {
    mla_combine_kernel<<<B * h, 128, pl.nsplit * sizeof(float), st>>>(p.opart, p.lse, pl.nsplit, out);
    CUSTOM_CHECK_LAUNCH();
  }
}

size_t row_bytes(bool fp8) { return fp8 ? FP8_ROW : (size_t)D * 2; }

// Random cache: bf16 uniform [-1,1); fp8: e4m3 of uniform [-400,400) with scales in
// [0.5,1.5)/400 (dequantised values ~ uniform [-1.5,1.5)), rope bf16 uniform [-1,1).
__global__ void k_fill_fp8_cache(uint8_t* kv, size_t ntok, uint64_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < ntok * FP8_ROW; i += (size_t)gridDim.x * blockDim.x) {
    size_t tkn = i / FP8_ROW;
    int o = (int)(i % FP8_ROW);
    uint8_t* row = kv + tkn * FP8_ROW;
    if (o < 512) {
      __nv_fp8_e4m3 v(-400.f + 800.f * cuni01(seed, i));
      row[o] = v.__x;
    } else if (o < FP8_ROPE_OFF) {
      if ((o - 512) % 4 == 0) reinterpret_cast<float*>(row + 512)[(o - 512) / 4] = (0.5f + cuni01(seed, i)) / 400.f;
    } else if ((o - FP8_ROPE_OFF) % 2 == 0) {
      *reinterpret_cast<__nv_bfloat16*>(row + o) = __float2bfloat16(-1.f + 2.f * cuni01(seed, i));
    }
  }
}

void fill_cache(uint8_t* kv, size_t ntok, bool fp8, cudaStream_t st) {
  if (fp8) {
    k_fill_fp8_cache<<<fill_blocks(ntok * FP8_ROW), 256, 0, st>>>(kv, ntok, next_seed());
    CUSTOM_CHECK_LAUNCH();
  } else {
    fill_bf16(reinterpret_cast<__nv_bfloat16*>(kv), ntok * D, -1.f, 1.f, st);
  }
}

// Dequantised cache row on the host.
void host_row(const uint8_t* row, bool fp8, float* outv) {
  if (!fp8) {
    const __nv_bfloat16* r = reinterpret_cast<const __nv_bfloat16*>(row);
    for (int i = 0; i < D; ++i) outv[i] = bf2f(r[i]);
    return;
  }
  const float* sc = reinterpret_cast<const float*>(row + FP8_SCALE_OFF);
  for (int i = 0; i < 512; ++i) {
    __nv_fp8_e4m3 v;
    v.__x = row[i];
    outv[i] = (float)v * sc[i / 128];
  }
  const __nv_bfloat16* rope = reinterpret_cast<const __nv_bfloat16*>(row + FP8_ROPE_OFF);
  for (int i = 0; i < 64; ++i) outv[512 + i] = bf2f(rope[i]);
}

// Checks (b, head) pairs against an FP32/double CPU reference; returns rel L2 error
// over all checked outputs.
double check_mla(int B, int h, int s, bool fp8, int sms, const std::vector<std::pair<int, int>>& pairs_in,
                 int force_nsplit, cudaStream_t st, int* nsplit_used = nullptr) {
  DevBuf<__nv_bfloat16> q((size_t)B * h * D), out((size_t)B * h * DV);
  DevBuf<uint8_t> kv((size_t)B * s * row_bytes(fp8));
  fill_bf16(q.p, q.n, -1.f, 1.f, st);
  fill_cache(kv.p, (size_t)B * s, fp8, st);
  out.poison(st);
  Plan pl = make_plan(B, h, s, fp8, sms, force_nsplit);
  if (nsplit_used) *nsplit_used = pl.nsplit;
  MlaWork w;
  launch_mla(pl, fp8, q.p, kv.p, B, h, s, out.p, w, st);
  MOESIM_CUDA_CHECK(cudaStreamSynchronize(st));
  std::vector<std::pair<int, int>> pairs = pairs_in;
  if (pairs.empty())
    for (int b = 0; b < B; ++b)
      for (int hh = 0; hh < h; ++hh) pairs.push_back({b, hh});
  auto hq = q.to_host(), ho = out.to_host();
  std::vector<float> got, ref;
  std::vector<uint8_t> rows;
  std::vector<float> kvf((size_t)s * D);
  int cur_b = -1;
  const double scale = 1.0 / std::sqrt(192.0);
  for (auto [b, hh] : pairs) {
    if (b != cur_b) {
      rows.resize((size_t)s * row_bytes(fp8));
      MOESIM_CUDA_CHECK(cudaMemcpy(rows.data(), kv.p + (size_t)b * s * row_bytes(fp8), rows.size(),
                                   cudaMemcpyDeviceToHost));
      for (int i = 0; i < s; ++i) host_row(rows.data() + (size_t)i * row_bytes(fp8), fp8, &kvf[(size_t)i * D]);
      cur_b = b;
    }
    float qf[D];
    for (int i = 0; i < D; ++i) qf[i] = bf2f(hq[((size_t)b * h + hh) * D + i]);
    std::vector<double> sc(s);
    double mx = -1e300;
    for (int i = 0; i < s; ++i) {
      const float* k = &kvf[(size_t)i * D];
      float acc = 0.f;
      for (int d = 0; d < D; ++d) acc += qf[d] * k[d];
      sc[i] = acc * scale;
      mx = std::max(mx, sc[i]);
    }
    double sum = 0;
    for (int i = 0; i < s; ++i) { sc[i] = std::exp(sc[i] - mx); sum += sc[i]; }
    std::vector<double> o(DV, 0.0);
    for (int i = 0; i < s; ++i) {
      const float* k = &kvf[(size_t)i * D];
      const double pi = sc[i] / sum;
      for (int d = 0; d < DV; ++d) o[d] += pi * k[d];
    }
    for (int d = 0; d < DV; ++d) {
      ref.push_back((float)o[d]);
      got.push_back(bf2f(ho[((size_t)b * h + hh) * DV + d]));
    }
  }
  // Every output must have been written (poisoned with NaN before the run).
  if (pairs_in.empty()) {
    for (auto v : ho)
      if (!(bf2f(v) == bf2f(v))) return INFINITY;
  }
  return rel_l2_error(got.data(), ref.data(), got.size());
}

}  // namespace
}  // namespace custom

void run_mla_decode_suite(Harness& h) {
  using namespace custom;
  cudaStream_t st;
  MOESIM_CUDA_CHECK(cudaStreamCreate(&st));
  const int l2 = l2_bytes(h.device());
  const int sms = sm_count(h.device());
  int failures = 0;

  // ---- 1. full checks on small shapes (all heads, odd lengths, forced splits) ----
  struct Small { int B, h, s, ns; };
  const Small smalls[] = {{2, 16, 777, 0}, {3, 32, 300, 0}, {2, 64, 1100, 0}, {1, 128, 2048, 5},
                          {2, 16, 100, 1}, {1, 128, 333, 1}, {4, 64, 513, 3}, {2, 32, 777, 3},
                          {1, 32, 64, 1},  {2, 32, 4099, 0}, {3, 32, 2777, 3}, {1, 32, 8257, 1}};
  const char* sweep = std::getenv("MOESIM_MLA_SWEEP");
  const bool prof = sweep && std::string(sweep).rfind("prof", 0) == 0;  // dev knob: prof16 / prof32: one fp8 point
  for (int fp8 = 0; fp8 <= 1 && !prof; ++fp8)
    for (const Small& c : smalls) {
      if (h.quick && c.ns == 1) continue;
      int ns = 0;
      double err = check_mla(c.B, c.h, c.s, fp8, sms, {}, c.ns, st, &ns);
      bool ok = err <= 1e-2;
      std::fprintf(stderr, "mla_decode check %s B=%d h=%d s=%d splits=%d: rel err %.3e %s\n", fp8 ? "fp8 " : "bf16",
                   c.B, c.h, c.s, ns, err, ok ? "ok" : "FAILED");
      if (!ok) {
        ++failures;
        report_check_failure("mla_decode", strfmt("B=%d h=%d s=%d", c.B, c.h, c.s), err, "small-shape check");
      }
    }

  // ---- 2. timed grid ----
  const char* env = std::getenv("MOESIM_MLA_MAX_TOKENS");
  const double max_tokens = env ? std::atof(env) : 1e18;  // optional B*s cap per point
  std::vector<int> Bs = {1, 4, 16, 64, 128, 256};
  std::vector<int> Ss = {512, 1024, 2048, 4096, 8192, 16384, 32768};
  std::vector<int> Hs = {16, 32, 64, 128};
  struct Pt { int B, s, h; bool fp8; };
  std::vector<Pt> pts;
  if (prof) {
    pts = {{64, 8192, std::atoi(sweep + 4), true}};
  } else if (sweep && std::string(sweep) == "f8h32") {  // dev knob: the fp8 h=32 grid points
    for (int B : Bs)
      for (int s : Ss) pts.push_back({B, s, 32, true});
  } else if (sweep && std::string(sweep) == "checks") {  // dev knob: the small-shape checks only
  } else if (sweep && std::string(sweep) == "f8w") {  // dev knob: the four large fp8 h=32 points
    pts = {{256, 32768, 32, true}, {128, 32768, 32, true}, {256, 8192, 32, true}, {64, 8192, 32, true}};
  } else if (sweep && std::string(sweep) == "f8g") {  // dev knob: fp8 h=32 points with B*s >= 2^20 (+ B=128 s=4096)
    pts = {{256, 4096, 32, true}, {128, 8192, 32, true}, {64, 16384, 32, true}, {256, 8192, 32, true},
           {128, 16384, 32, true}, {64, 32768, 32, true}, {256, 16384, 32, true}, {128, 32768, 32, true},
           {256, 32768, 32, true}, {128, 4096, 32, true}};
  } else if (sweep && std::string(sweep) == "f8h16") {  // dev knob: the fp8 h=16 grid points
    for (int B : Bs)
      for (int s : Ss) pts.push_back({B, s, 16, true});
  } else if (sweep && std::string(sweep) == "f8h16cmp") {  // dev knob: mla_wg2h16_kernel vs mla_fp8_kernel, all outputs
    const std::pair<int, int> cmps[] = {{256, 4096}, {64, 16384}, {4, 32768}, {16, 8192}, {128, 1024}, {256, 32768}, {3, 5000}};
    for (auto [B, s] : cmps) {
      DevBuf<__nv_bfloat16> q((size_t)B * 16 * D), o1((size_t)B * 16 * DV), o2((size_t)B * 16 * DV);
      DevBuf<uint8_t> kv((size_t)B * s * FP8_ROW);
      fill_bf16(q.p, q.n, -1.f, 1.f, st);
      fill_cache(kv.p, (size_t)B * s, true, st);
      o1.poison(st);
      o2.poison(st);
      const Plan pn = make_plan(B, 16, s, true, sms, 0, false), po = make_plan(B, 16, s, true, sms, 0, true);
      MlaWork w1, w2;
      launch_mla(pn, true, q.p, kv.p, B, 16, s, o1.p, w1, st);
      launch_mla(po, true, q.p, kv.p, B, 16, s, o2.p, w2, st);
      MOESIM_CUDA_CHECK(cudaStreamSynchronize(st));
      auto h1 = o1.to_host(), h2 = o2.to_host();
      std::vector<float> f1(h1.size()), f2(h2.size());
      size_t bad = 0;
      for (size_t i = 0; i < h1.size(); ++i) {
        f1[i] = bf2f(h1[i]); f2[i] = bf2f(h2[i]);
        if (!(f1[i] == f1[i]) || !(f2[i] == f2[i])) ++bad;
      }
      const double e = bad ? INFINITY : rel_l2_error(f1.data(), f2.data(), f1.size());
      const bool ok = e <= 1e-2;
      if (!ok) ++failures;
      std::fprintf(stderr, "mla_decode cmp fp8 h=16 B=%d s=%d BN %d/%d splits %d/%d: all %zu outputs rel L2 %.3e nan %zu %s\n", B, s,
                   pn.BN, po.BN, pn.nsplit, po.nsplit, h1.size(), e, bad, ok ? "ok" : "FAILED");
    }
  } else if (sweep && std::string(sweep) == "f8h16g") {  // dev knob: fp8 h=16 points with B*s >= 2^20 (+ 2^19)
    pts = {{256, 4096, 16, true}, {128, 8192, 16, true}, {64, 16384, 16, true}, {256, 8192, 16, true},
           {128, 16384, 16, true}, {64, 32768, 16, true}, {256, 16384, 16, true}, {128, 32768, 16, true},
           {256, 32768, 16, true}, {128, 4096, 16, true}, {64, 8192, 16, true}};
  } else if (sweep && std::string(sweep) == "f8") {  // dev knob: the large fp8 h=16/32 points
    pts = {{256, 32768, 16, true}, {128, 32768, 16, true}, {256, 8192, 16, true}, {64, 8192, 16, true},
           {256, 32768, 32, true}, {256, 32768, 16, false}, {128, 32768, 32, true}, {256, 8192, 32, true},
           {64, 8192, 32, true}};
  } else if (sweep && std::string(sweep) == "dev") {
    for (int fp8 = 0; fp8 <= 1; ++fp8)
      for (int hh : Hs)
        for (auto [B, s] : {std::pair{1, 32768}, std::pair{64, 8192}, std::pair{128, 4096}, std::pair{256, 32768}})
          pts.push_back({B, s, hh, (bool)fp8});
  } else if (h.quick) {
    pts = {{64, 4096, 16, false}, {1, 32768, 16, false}, {64, 4096, 128, false}, {128, 4096, 128, false},
           {64, 4096, 16, true}};
  } else {
    for (int fp8 = 0; fp8 <= 1; ++fp8)
      for (int hh : Hs)
        for (int B : Bs)
          for (int s : Ss) {
            double cache = (double)B * s * row_bytes(fp8);
            if (cache > 40e9 || (double)B * s > max_tokens) continue;
            pts.push_back({B, s, hh, (bool)fp8});
          }
  }
  for (const Pt& pt : pts) {
    const int B = pt.B, s = pt.s, hh = pt.h;
    const bool fp8 = pt.fp8;
    std::string shape =
        strfmt(R"({"batch":%d,"context":%d,"heads":%d,"kv_dim":576,"v_dim":512})", B, s, hh);
    // Check on fresh inputs of the real shape: a sample of (b, head) pairs.
    std::vector<std::pair<int, int>> pairs = {{B - 1, 0}, {B - 1, hh - 1}};
    if (s <= 4096) pairs.insert(pairs.begin(), {{0, hh / 2}, {0, 0}});
    double err = check_mla(B, hh, s, fp8, sms, pairs, 0, st);
    if (!(err <= 1e-2)) {
      ++failures;
      report_check_failure("mla_decode", shape, err, fp8 ? "fp8" : "bf16");
    }
    Plan pl = make_plan(B, hh, s, fp8, sms);
    const double cache = (double)B * s * row_bytes(fp8);
    const double bytes = cache + (double)B * hh * D * 2 + (double)B * hh * DV * 2;
    const double flops = 2.0 * B * hh * s * (576.0 + 512.0);
    const int nsets = rotation_sets(bytes, l2, 64);
    std::vector<DevBuf<__nv_bfloat16>> qs(nsets), outs(nsets);
    std::vector<DevBuf<uint8_t>> kvs(nsets);
    for (int k = 0; k < nsets; ++k) {
      qs[k].alloc((size_t)B * hh * D);
      outs[k].alloc((size_t)B * hh * DV);
      kvs[k].alloc((size_t)B * s * row_bytes(fp8));
      fill_bf16(qs[k].p, qs[k].n, -1.f, 1.f, st);
      fill_cache(kvs[k].p, (size_t)B * s, fp8, st);
    }
    MlaWork w;
    TimeOptions opts;
    // Heavy points: fewer repetitions (a launch can take 100+ ms).
    const double est_ms = std::max(flops / 300e12, bytes / 2.5e12) * 1e3;
    if (est_ms > 5) { opts.warmup = 2; opts.min_reps = 5; opts.max_reps = 20; }
    Timing t = h.time(
        [&](int rep, cudaStream_t s2) {
          int k = rep % nsets;
          launch_mla(pl, fp8, qs[k].p, kvs[k].p, B, hh, s, outs[k].p, w, s2);
        },
        st, opts);
#if MLA_WG2_TL
    static const bool tl_on = std::getenv("MOESIM_MLA_TL") != nullptr;  // dev knob
    if (tl_on && fp8 && hh == 32 && use_wg_kernel(B, s) && !use_wg1(pl)) {  // timeline of one extra launch
      void* sym = nullptr;
      MOESIM_CUDA_CHECK(cudaGetSymbolAddress(&sym, g_wg2_tl));
      MOESIM_CUDA_CHECK(cudaMemsetAsync(sym, 0, sizeof(unsigned long long) * 8 * 1024, st));
      launch_mla(pl, fp8, qs[0].p, kvs[0].p, B, hh, s, outs[0].p, w, st);
      std::vector<unsigned long long> r(8 * 1024);
      MOESIM_CUDA_CHECK(cudaMemcpyAsync(r.data(), sym, r.size() * 8, cudaMemcpyDeviceToHost, st));
      MOESIM_CUDA_CHECK(cudaStreamSynchronize(st));
      std::vector<int> ids;
      unsigned long long t0 = ~0ull, t1 = 0;
      for (int i = 0; i < 1024; ++i)
        if (r[8 * i + 5]) { ids.push_back(i); t0 = std::min(t0, r[8 * i]); t1 = std::max(t1, r[8 * i + 2]); }
      std::vector<double> q, dur, mhz, gap, w1s, lastend, t0w, mrg;
      std::sort(ids.begin(), ids.end(), [&](int a, int c) { return r[8 * a] < r[8 * c]; });
      std::map<int, unsigned long long> prev_end;
      for (int i : ids) {
        const unsigned long long* x = &r[8 * i];
        q.push_back((x[1] - x[0]) * 1e-3);
        t0w.push_back(((double)x[6] - (double)x[1]) * 1e-3);
        mrg.push_back(((double)x[2] - (double)x[7]) * 1e-3);
        dur.push_back((x[2] - x[0]) * 1e-3);
        mhz.push_back((double)x[3] / (double)(x[2] - x[0]) * 1e3);
        auto itp = prev_end.find((int)x[4]);
        if (itp != prev_end.end()) gap.push_back(((double)x[0] - (double)itp->second) * 1e-3);
        else w1s.push_back((x[0] - t0) * 1e-3);
        prev_end[(int)x[4]] = x[2];
      }
      for (auto& kv : prev_end) lastend.push_back((kv.second - t0) * 1e-3);
      auto st3 = [](std::vector<double> v) {
        if (v.empty()) return std::string("-");
        std::sort(v.begin(), v.end());
        return strfmt("%.2f/%.2f/%.2f", v.front(), v[v.size() / 2], v.back());
      };
      std::fprintf(stderr,
                   "wg2tl B=%d s=%d blocks=%zu sms=%zu span=%.2f us | first-wave start %s | q-prologue %s | tile0 after q %s | merge %s | block %s | MHz %s | "
                   "refill gap %s (n=%zu) | SM last end %s\n",
                   B, s, ids.size(), prev_end.size(), (t1 - t0) * 1e-3, st3(w1s).c_str(), st3(q).c_str(), st3(t0w).c_str(), st3(mrg).c_str(),
                   st3(dur).c_str(), st3(mhz).c_str(), st3(gap).c_str(), gap.size(), st3(lastend).c_str());
    }
#endif
    const double tf = flops / t.median_us * 1e-6, gbs = bytes / t.median_us * 1e-3;
    h.record("mla_decode", fp8 ? "fp8" : "bf16", shape, t, err, flops, bytes,
             strfmt(R"("splits":%d,"heads_per_block":%d,"tile_tokens":%d,"fp8_format":"%s","input_sets":%d,"check":"sampled_heads")",
                    pl.nsplit, pl.hb, pl.BN, fp8 ? "flashmla_656B" : "none", nsets));
    std::fprintf(stderr,
                 "mla_decode %s B=%4d s=%6d h=%3d splits=%3d  %10.2f us  %7.1f GB/s  %6.1f TFLOP/s  err=%.2e\n",
                 fp8 ? "fp8 " : "bf16", B, s, hh, pl.nsplit, t.median_us, gbs, tf, err);
  }
  MOESIM_CUDA_CHECK(cudaStreamDestroy(st));
  if (failures) std::fprintf(stderr, "!!!!! mla_decode suite: %d failed checks !!!!!\n", failures);
}

}  // namespace moesim::validate
