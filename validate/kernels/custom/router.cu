// Kernel "router": top-k expert selection from FP32 router logits [T, E].
//
// One warp per token; lane l holds the E/32 contiguous logits l*V .. l*V+V-1
// (V = E/32), loaded with 16-byte loads. Each of the k rounds: local arg-max per lane,
// warp max by __reduce_max_sync on an order-preserving uint32 key, winner lane by ballot. Variants:
//   sigmoid (DeepSeek-V3/R1 "noaux_tc", Kimi K2): s = sigmoid(x); selection on
//     s + bias; optional group limit (group score = sum of the top-2 biased
//     scores of the group, keep topk_groups groups); weights = s of the chosen
//     experts renormalised to sum 1, times route_scale.
//   softmax (Mistral Large 3 / Qwen3 as specified): selection on the logits;
//     weights = softmax over the chosen k (= softmax over E, renormalised).
// Ties break towards the lower expert index (the CPU reference does the same).
// Outputs: ids int32 [T, k], weights fp32 [T, k], in selection order.
#include <algorithm>
#include <numeric>

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

// Order-preserving map float -> uint32 (larger float -> larger key).
__device__ __forceinline__ unsigned okey(float v) {
  unsigned u = __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
// Lowest lane whose key equals the warp maximum (REDUX + BALLOT). Lanes hold
// increasing expert ranges and each lane offers its lowest-index best, so this is
// the arg-max with ties broken towards the lower expert index.
__device__ __forceinline__ int warp_argmax_lane(unsigned key) {
  unsigned m = __reduce_max_sync(0xffffffffu, key);
  return __ffs(__ballot_sync(0xffffffffu, key == m)) - 1;
}

// LPG: lanes per group (group size / V); GROUPED only when groups > 1.
template <int E, int K, bool SIGMOID, bool GROUPED, int LPG>
__global__ void __launch_bounds__(256) router_kernel(const float* __restrict__ logits,
                                                     const float* __restrict__ bias, int T,
                                                     int topk_groups, float route_scale,
                                                     int* __restrict__ ids, float* __restrict__ wts) {
  constexpr int V = E / 32;
  static_assert(V % 4 == 0, "E must be a multiple of 128");
  static_assert(K <= 32, "k <= 32");
  const int lane = threadIdx.x & 31;
  const int tok = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  if (tok >= T) return;

  float x[V];
  const float4* src = reinterpret_cast<const float4*>(logits + (size_t)tok * E + lane * V);
#pragma unroll
  for (int i = 0; i < V / 4; ++i) {
    float4 v = __ldg(src + i);
    x[4 * i] = v.x; x[4 * i + 1] = v.y; x[4 * i + 2] = v.z; x[4 * i + 3] = v.w;
  }
  float sel[V], wv[V];
  if constexpr (SIGMOID) {
    const float4* bsrc = reinterpret_cast<const float4*>(bias + lane * V);
#pragma unroll
    for (int i = 0; i < V / 4; ++i) {
      float4 b = __ldg(bsrc + i);
      float bb[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        float s = 1.0f / (1.0f + expf(-x[4 * i + j]));
        wv[4 * i + j] = s;
        sel[4 * i + j] = s + bb[j];
      }
    }
  } else {
#pragma unroll
    for (int i = 0; i < V; ++i) { sel[i] = x[i]; wv[i] = x[i]; }
  }

  if constexpr (GROUPED) {
    // Top-2 sum inside the group: local top-2, then merge across the LPG lanes.
    float a = -INFINITY, b = -INFINITY;
#pragma unroll
    for (int i = 0; i < V; ++i) {
      float v = sel[i];
      if (v > a) { b = a; a = v; } else if (v > b) { b = v; }
    }
#pragma unroll
    for (int off = 1; off < LPG; off <<= 1) {
      float oa = __shfl_xor_sync(0xffffffffu, a, off);
      float ob = __shfl_xor_sync(0xffffffffu, b, off);
      float na = fmaxf(a, oa);
      float nb = fmaxf(fminf(a, oa), fmaxf(b, ob));
      a = na; b = nb;
    }
    const float gscore = a + b;
    const int my_group = lane / LPG;
    bool keep = false, taken = false;
    for (int r = 0; r < topk_groups; ++r) {
      // All lanes of a group hold the same score: the lowest lane is the group's first.
      int wl = warp_argmax_lane(taken ? 0u : okey(gscore));
      if (wl / LPG == my_group) { keep = true; taken = true; }
    }
    if (!keep) {
#pragma unroll
      for (int i = 0; i < V; ++i) sel[i] = -INFINITY;
    }
  }

  int my_id = 0;
  float my_w = 0.f;
#pragma unroll
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
    // The first pick holds the largest chosen logit.
    float m = __shfl_sync(0xffffffffu, my_w, 0);
    w = (lane < K) ? expf(my_w - m) : 0.f;
  }
  float sum = w;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
  if (lane < K) {
    ids[(size_t)tok * K + lane] = my_id;
    wts[(size_t)tok * K + lane] = w / sum * route_scale;
  }
}

void launch_router(const RouterVariant& v, const float* logits, const float* bias, int T, int* ids,
                   float* w, cudaStream_t s) {
  dim3 block(256), grid((T + 7) / 8);
  if (v.E == 256 && v.K == 8 && v.sigmoid && v.groups == 8)
    router_kernel<256, 8, true, true, 4><<<grid, block, 0, s>>>(logits, bias, T, v.topk_groups, v.route_scale, ids, w);
  else if (v.E == 384 && v.K == 8 && v.sigmoid && v.groups == 1)
    router_kernel<384, 8, true, false, 1><<<grid, block, 0, s>>>(logits, bias, T, 1, v.route_scale, ids, w);
  else if (v.E == 128 && v.K == 4 && !v.sigmoid && v.groups == 1)
    router_kernel<128, 4, false, false, 1><<<grid, block, 0, s>>>(logits, bias, T, 1, v.route_scale, ids, w);
  else if (v.E == 128 && v.K == 8 && !v.sigmoid && v.groups == 1)
    router_kernel<128, 8, false, false, 1><<<grid, block, 0, s>>>(logits, bias, T, 1, v.route_scale, ids, w);
  else
    throw std::runtime_error("router: unsupported variant");
  CUSTOM_CHECK_LAUNCH();
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

}  // namespace
}  // namespace custom

void run_router_suite(Harness& h) {
  using namespace custom;
  cudaStream_t s;
  MOESIM_CUDA_CHECK(cudaStreamCreate(&s));
  const int l2 = l2_bytes(h.device());
  std::vector<int> Ts;
  if (h.quick) Ts = {1, 256, 16384};
  else for (int t = 1; t <= 16384; t *= 2) Ts.push_back(t);
  int failures = 0;
  for (const auto& v : kVariants) {
    if (h.quick && (v.E == 128 && v.K == 4)) continue;
    for (int T : Ts) {
      std::string shape = strfmt(
          R"({"tokens":%d,"experts":%d,"topk":%d,"groups":%d,"topk_groups":%d,"scoring":"%s"})", T,
          v.E, v.K, v.groups, v.topk_groups, v.sigmoid ? "sigmoid" : "softmax");
      CheckOut c = check_router(v, T, s);
      double err = c.max_rel_w;
      if (c.mismatched > 0 || !(err < 1e-5)) {
        ++failures;
        report_check_failure("router", shape, err,
                             strfmt("%ld tokens with wrong expert sets, max weight rel err %g",
                                    c.mismatched, c.max_rel_w).c_str());
        if (c.mismatched > 0) err = INFINITY;
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
               strfmt(R"("model":"%s","route_scale":%g,"near_ties":%ld,"input_sets":%d)", v.model,
                      v.route_scale, c.near_ties, nsets));
      std::fprintf(stderr, "router %-15s T=%6d  %8.2f us  %7.1f GB/s  err=%.2e ties=%ld\n", v.model, T,
                   t.median_us, bytes / t.median_us * 1e-3, err, c.near_ties);
    }
  }
  MOESIM_CUDA_CHECK(cudaStreamDestroy(s));
  if (failures) std::fprintf(stderr, "!!!!! router suite: %d failed checks !!!!!\n", failures);
}

}  // namespace moesim::validate
