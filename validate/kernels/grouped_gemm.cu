// MoE expert GEMMs on one GPU: for each local expert e with t_e > 0 tokens,
// Y_e[t_e, n] = X_e[t_e, k] . W_e[n, k]^T. Token counts come from a multinomial
// split of T routed tokens over E experts (uniform or Zipf(1.2) popularity, fixed
// seed). Implementations:
//   bf16 "cublas_grouped": one cublasGemmGroupedBatchedEx call (one group per expert)
//   bf16 "lt_graph":       one cuBLASLt matmul per expert, captured in a CUDA graph
//   fp8  "lt_graph":       same, e4m3 with per-tensor fp32 scales (cuBLAS 13.1 has no
//                          cuBLASLt grouped GEMM)
// Checked per point against fp32 SGEMM (pedantic) on the first rows of every expert.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "common.cuh"
#include "lt_gemm.cuh"
#include "suites.h"

namespace moesim::validate {

namespace {

struct ExpertShape {
  int n, k;
  const char* model;
  const char* proj;
};

std::vector<int> split_tokens(int T, int E, bool zipf, uint64_t seed) {
  std::vector<double> p(E);
  for (int e = 0; e < E; ++e) p[e] = zipf ? 1.0 / std::pow(e + 1.0, 1.2) : 1.0;
  double sum = std::accumulate(p.begin(), p.end(), 0.0);
  std::vector<double> cdf(E);
  double c = 0;
  for (int e = 0; e < E; ++e) cdf[e] = (c += p[e] / sum);
  HostRng rng(seed);
  std::vector<int> t(E, 0);
  for (int i = 0; i < T; ++i) {
    double u = rng.uniform01();
    int e = (int)(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    t[std::min(e, E - 1)]++;
  }
  return t;
}

}  // namespace

void run_grouped_gemm_suite(Harness& h) {
  cudaStream_t s;
  MOESIM_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cublasHandle_t cb, ref_handle;
  MOESIM_CUBLAS_CHECK(cublasCreate(&cb));
  MOESIM_CUBLAS_CHECK(cublasSetStream(cb, s));
  void* cb_ws;
  MOESIM_CUDA_CHECK(cudaMalloc(&cb_ws, 32u << 20));
  MOESIM_CUBLAS_CHECK(cublasSetWorkspace(cb, cb_ws, 32u << 20));
  MOESIM_CUBLAS_CHECK(cublasCreate(&ref_handle));
  MOESIM_CUBLAS_CHECK(cublasSetStream(ref_handle, s));
  MOESIM_CUBLAS_CHECK(cublasSetMathMode(ref_handle, CUBLAS_PEDANTIC_MATH));
  LtGemm lt;

  std::vector<ExpertShape> shapes = {{4096, 7168, "deepseek_r1/kimi_k2", "gate_up"},
                                     {7168, 2048, "deepseek_r1/kimi_k2", "down"},
                                     {8192, 7168, "mistral_large3", "gate_up"},
                                     {7168, 4096, "mistral_large3", "down"}};
  std::vector<int> Es = {4, 8, 32};
  std::vector<int> Ts = {8, 32, 128, 512, 2048, 8192, 32768};
  if (h.quick) {
    shapes = {shapes[0]};
    Es = {8};
    Ts = {32, 2048};
  }
  const size_t ROT_BYTES = 256ull << 20;
  const int RREF = 32;  // rows per expert checked
  bool grouped_api_ok = true;

  struct Impl { Prec prec; bool lt_graph; };
  const Impl impls[] = {{Prec::BF16, false}, {Prec::BF16, true}, {Prec::FP8, true}};

  for (const ExpertShape& sh : shapes) {
    const int n = sh.n, k = sh.k;
    for (int E : Es) {
      for (const Impl& im : impls) {
        if (!im.lt_graph && !grouped_api_ok) continue;
        const Prec prec = im.prec;
        const size_t el = prec_bytes(prec);
        const size_t wset = (size_t)E * n * k * el;
        const int nW = (int)std::clamp<size_t>((ROT_BYTES + wset - 1) / wset, 1, 8);
        const uint64_t seed = mix64(((uint64_t)n << 24) ^ ((uint64_t)k << 4) ^ E ^ ((uint64_t)prec << 56));
        // X/Y pool sized for the largest T and its rotation count.
        auto nxy_for = [&](int T) {
          size_t b = (size_t)T * k * el + (size_t)T * n * 2;
          return (int)std::clamp<size_t>((ROT_BYTES + b - 1) / b, 1, 8);
        };
        size_t pool_rows = 0;
        for (int T : Ts) pool_rows = std::max(pool_rows, (size_t)T * nxy_for(T));
        void *W, *X;
        __nv_bfloat16* Y;
        float *Wf, *Xf, *ref, *scales = nullptr;
        MOESIM_CUDA_CHECK(cudaMalloc(&W, wset * nW));
        MOESIM_CUDA_CHECK(cudaMalloc(&X, pool_rows * k * el));
        MOESIM_CUDA_CHECK(cudaMalloc(&Y, pool_rows * n * 2));
        MOESIM_CUDA_CHECK(cudaMalloc(&Wf, (size_t)n * k * 4));
        MOESIM_CUDA_CHECK(cudaMalloc(&Xf, (size_t)RREF * k * 4));
        MOESIM_CUDA_CHECK(cudaMalloc(&ref, (size_t)RREF * n * 4));
        const float sc = 1.0f / 16.0f;
        if (prec == Prec::BF16) {
          fill_bf16((__nv_bfloat16*)W, (size_t)E * n * k * nW, seed + 1, 1.0f, s);
          fill_bf16((__nv_bfloat16*)X, pool_rows * k, seed + 2, 1.0f, s);
        } else {
          fill_fp8((__nv_fp8_e4m3*)W, (size_t)E * n * k * nW, seed + 1, 16.0f, s);
          fill_fp8((__nv_fp8_e4m3*)X, pool_rows * k, seed + 2, 16.0f, s);
          // One scalar per 64-byte slot (cuBLASLt wants 16-byte aligned scale pointers).
          std::vector<float> hs(((size_t)E * nW + 1) * 16);
          HostRng rng(seed);
          for (auto& v : hs) v = sc * (float)(0.5 + rng.uniform01());
          MOESIM_CUDA_CHECK(cudaMalloc(&scales, hs.size() * 4));
          MOESIM_CUDA_CHECK(cudaMemcpy(scales, hs.data(), hs.size() * 4, cudaMemcpyHostToDevice));
        }
        std::vector<float> hscales;
        if (scales) {
          hscales.resize(((size_t)E * nW + 1) * 16);
          MOESIM_CUDA_CHECK(cudaMemcpy(hscales.data(), scales, hscales.size() * 4, cudaMemcpyDeviceToHost));
        }

        for (int T : Ts) {
          for (bool zipf : {false, true}) {
            std::vector<int> tok = split_tokens(T, E, zipf, mix64(0xE0E0 + (uint64_t)T * 131 + E * 7 + zipf));
            std::vector<int> off(E + 1, 0);
            for (int e = 0; e < E; ++e) off[e + 1] = off[e] + tok[e];
            std::vector<int> act;
            for (int e = 0; e < E; ++e) if (tok[e] > 0) act.push_back(e);
            const int nxy = nxy_for(T);
            const int nsets = std::max(nW, nxy);
            const char* dt = prec_name(prec);
            std::string toks = "[";
            for (int e = 0; e < E; ++e) toks += (e ? "," : "") + std::to_string(tok[e]);
            toks += "]";
            std::string shape = strf("{\"n\":%d,\"k\":%d,\"experts\":%d,\"tokens\":%s,\"routing\":\"%s\",\"total_tokens\":%d}",
                                     n, k, E, toks.c_str(), zipf ? "zipf1.2" : "uniform", T);
            auto wptr = [&](int set, int e) { return (const char*)W + (size_t)(set % nW) * wset + (size_t)e * n * k * el; };
            auto xptr = [&](int set, int e) { return (const char*)X + ((size_t)(set % nxy) * T + off[e]) * k * el; };
            auto yptr = [&](int set, int e) { return Y + ((size_t)(set % nxy) * T + off[e]) * n; };

            // Per-implementation launch.
            std::vector<LtPlan*> plans(E, nullptr);
            // cublasGemmGroupedBatchedEx: device pointer arrays per rotation set.
            const int G = (int)act.size();
            void** dptr = nullptr;  // [nsets][3][G]
            std::vector<cublasOperation_t> ta(G, CUBLAS_OP_T), tb(G, CUBLAS_OP_N);
            std::vector<int> ma(G, n), na(G), ka(G, k), lda(G, k), ldb(G, k), ldc(G, n), gs(G, 1);
            std::vector<float> alpha(G, 1.f), beta(G, 0.f);
            for (int g = 0; g < G; ++g) na[g] = tok[act[g]];
            bool skip = false;
            if (im.lt_graph) {
              for (int e : act) {
                plans[e] = lt.plan(prec, tok[e], n, k);
                if (!plans[e]) skip = true;
              }
            } else {
              std::vector<const void*> hp((size_t)nsets * 3 * G);
              for (int st = 0; st < nsets; ++st)
                for (int g = 0; g < G; ++g) {
                  hp[((size_t)st * 3 + 0) * G + g] = wptr(st, act[g]);
                  hp[((size_t)st * 3 + 1) * G + g] = xptr(st, act[g]);
                  hp[((size_t)st * 3 + 2) * G + g] = yptr(st, act[g]);
                }
              MOESIM_CUDA_CHECK(cudaMalloc(&dptr, hp.size() * sizeof(void*)));
              MOESIM_CUDA_CHECK(cudaMemcpy(dptr, hp.data(), hp.size() * sizeof(void*), cudaMemcpyHostToDevice));
            }
            if (skip) {
              std::fprintf(stderr, "[grouped_gemm] SKIP %s %s: no cuBLASLt algorithm\n", dt, shape.c_str());
              continue;
            }
            auto launch = [&](int rep, cudaStream_t st) {
              int set = rep % nsets;
              if (im.lt_graph) {
                for (int e : act) {
                  const float* ws = scales ? scales + ((size_t)(set % nW) * E + e) * 16 : nullptr;
                  const float* xs = scales ? scales + (size_t)E * nW * 16 : nullptr;
                  cublasStatus_t r = lt.run(plans[e], wptr(set, e), xptr(set, e), yptr(set, e), ws, xs, st);
                  if (r != CUBLAS_STATUS_SUCCESS) throw std::runtime_error("cublasLtMatmul failed " + std::to_string((int)r));
                }
              } else {
                void** base = dptr + (size_t)set * 3 * G;
                MOESIM_CUBLAS_CHECK(cublasSetStream(cb, st));
                MOESIM_CUBLAS_CHECK(cublasGemmGroupedBatchedEx(
                    cb, ta.data(), tb.data(), ma.data(), na.data(), ka.data(), alpha.data(), (const void* const*)base,
                    CUDA_R_16BF, lda.data(), (const void* const*)(base + G), CUDA_R_16BF, ldb.data(), beta.data(),
                    base + 2 * G, CUDA_R_16BF, ldc.data(), G, gs.data(), CUBLAS_COMPUTE_32F));
              }
            };
            // Check (set 0): every active expert, first min(t_e, RREF) rows.
            double se = 0, sr = 0;
            bool bad = false;
            try {
              poison_bf16(Y, (size_t)T * n, s);
              launch(0, s);
              MOESIM_CUDA_CHECK(cudaStreamSynchronize(s));
              for (int e : act) {
                int r = std::min(tok[e], RREF);
                if (prec == Prec::BF16) {
                  bf16_to_f32((const __nv_bfloat16*)wptr(0, e), Wf, (size_t)n * k, s);
                  bf16_to_f32((const __nv_bfloat16*)xptr(0, e), Xf, (size_t)r * k, s);
                } else {
                  fp8_to_f32((const __nv_fp8_e4m3*)wptr(0, e), Wf, (size_t)n * k, hscales[(size_t)e * 16], s);
                  fp8_to_f32((const __nv_fp8_e4m3*)xptr(0, e), Xf, (size_t)r * k, hscales[(size_t)E * nW * 16], s);
                }
                const float one = 1.f, zero = 0.f;
                MOESIM_CUBLAS_CHECK(cublasSgemm(ref_handle, CUBLAS_OP_T, CUBLAS_OP_N, n, r, k, &one, Wf, k, Xf, k,
                                                &zero, ref, n));
                double e2 = rel_err_bf16_vs_f32(yptr(0, e), n, ref, n, r, n, s);
                if (!std::isfinite(e2)) bad = true;
                // Accumulate as squared-norm weighted by this expert's reference norm share.
                double rn = 0;
                {
                  std::vector<float> hr((size_t)r * n);
                  MOESIM_CUDA_CHECK(cudaMemcpy(hr.data(), ref, hr.size() * 4, cudaMemcpyDeviceToHost));
                  for (float v : hr) rn += (double)v * v;
                }
                se += e2 * e2 * rn;
                sr += rn;
              }
            } catch (const std::exception& ex) {
              std::fprintf(stderr, "[grouped_gemm] %s %s impl=%s failed to run: %s\n", dt, shape.c_str(),
                           im.lt_graph ? "lt_graph" : "cublas_grouped", ex.what());
              if (!im.lt_graph) grouped_api_ok = false;
              if (dptr) cudaFree(dptr);
              cudaGetLastError();
              continue;
            }
            double err = bad ? INFINITY : (sr > 0 ? std::sqrt(se / sr) : INFINITY);
            const char* impl = im.lt_graph ? "lt_graph" : "cublas_grouped";
            if (h.check("grouped_gemm", dt, shape, err, 1e-2, impl)) {
              TimeOptions o;
              o.warmup = 3;
              o.min_reps = 10;
              o.max_reps = 100;
              o.target_ms = 25;
              o.use_graph = im.lt_graph;
              o.graph_variants = nsets;
              Timing t = h.time(launch, s, o);
              double flops = 2.0 * n * k * T;
              double bytes = (double)G * n * k * el + (double)T * k * el + (double)T * n * 2;
              h.record("grouped_gemm", dt, shape, t, err, flops, bytes,
                       strf("\"impl\":\"%s\",\"model\":\"%s\",\"proj\":\"%s\",\"active_experts\":%d,\"max_tokens\":%d,"
                            "\"rotation_sets\":%d",
                            impl, sh.model, sh.proj, G, *std::max_element(tok.begin(), tok.end()), nsets));
              std::fprintf(stderr, "[grouped_gemm] %-4s %-14s n=%d k=%d E=%2d T=%5d %-7s  %10.2f us  %7.1f TFLOP/s  %6.0f GB/s\n",
                           dt, impl, n, k, E, T, zipf ? "zipf" : "uniform", t.median_us, flops / t.median_us * 1e-6,
                           bytes / t.median_us * 1e-3);
            }
            if (dptr) cudaFree(dptr);
          }
        }
        cudaFree(W);
        cudaFree(X);
        cudaFree(Y);
        cudaFree(Wf);
        cudaFree(Xf);
        cudaFree(ref);
        if (scales) cudaFree(scales);
      }
    }
  }
  cudaFree(cb_ws);
  cublasDestroy(cb);
  cublasDestroy(ref_handle);
  cudaStreamDestroy(s);
}

}  // namespace moesim::validate
