// cuBLASLt wrapper for out[m,n] = X[m,k] . W[n,k]^T (W stored like a PyTorch
// Linear weight, row-major [n][k]; X row-major [m][k]; out row-major [m][n], bf16).
// In cuBLASLt's column-major terms this is the "TN" layout: A = W (k x n, op T),
// B = X (k x m, op N), D = out (n x m). Used by the gemm and grouped_gemm suites.
#pragma once

#include <map>
#include <memory>
#include <tuple>

#include "common.cuh"

namespace moesim::validate {

enum class Prec { BF16, FP8, FP8_BLOCK128 };
inline const char* prec_name(Prec p) {
  return p == Prec::BF16 ? "bf16" : p == Prec::FP8 ? "fp8" : "fp8_block128";
}
inline size_t prec_bytes(Prec p) { return p == Prec::BF16 ? 2 : 1; }

struct LtPlan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulHeuristicResult_t heur[8];
  int n_heur = 0;
  int chosen = -1;  // index into heur once one ran successfully
  Prec prec;
  int m, n, k;
};

class LtGemm {
 public:
  explicit LtGemm(size_t workspace_bytes = 32ull << 20) : ws_size_(workspace_bytes) {
    MOESIM_CUBLAS_CHECK(cublasLtCreate(&h_));
    MOESIM_CUDA_CHECK(cudaMalloc(&ws_, ws_size_));
  }
  ~LtGemm() {
    for (auto& [key, p] : plans_) {
      cublasLtMatmulDescDestroy(p->op);
      cublasLtMatrixLayoutDestroy(p->a);
      cublasLtMatrixLayoutDestroy(p->b);
      cublasLtMatrixLayoutDestroy(p->d);
    }
    cudaFree(ws_);
    cublasLtDestroy(h_);
  }
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  // Returns the plan (heuristics queried, no algorithm chosen yet), or nullptr if
  // cuBLASLt offers no algorithm for it.
  LtPlan* plan(Prec prec, int m, int n, int k) {
    auto key = std::make_tuple((int)prec, m, n, k);
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second.get();
    auto p = std::make_unique<LtPlan>();
    p->prec = prec;
    p->m = m; p->n = n; p->k = k;
    MOESIM_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    MOESIM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    MOESIM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    cudaDataType_t in = prec == Prec::BF16 ? CUDA_R_16BF : CUDA_R_8F_E4M3;
    if (prec == Prec::FP8_BLOCK128) {
      int32_t ma = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F, mb = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
      MOESIM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &ma, sizeof ma));
      MOESIM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mb, sizeof mb));
    }
    if (prec != Prec::BF16) {
      // Placeholder scale pointers so the heuristic query sees a scaled problem.
      const void* dummy = ws_;
      MOESIM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &dummy, sizeof dummy));
      MOESIM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &dummy, sizeof dummy));
    }
    MOESIM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, in, k, n, k));
    MOESIM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, in, k, m, k));
    MOESIM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->d, CUDA_R_16BF, n, m, n));
    cublasLtMatmulPreference_t pref;
    MOESIM_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    MOESIM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                             &ws_size_, sizeof ws_size_));
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(h_, p->op, p->a, p->b, p->d, p->d, pref, 8, p->heur, &p->n_heur);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS) p->n_heur = 0;
    LtPlan* raw = p.get();
    plans_[key] = std::move(p);
    return raw->n_heur > 0 ? raw : nullptr;
  }

  // Enqueues one matmul. Before an algorithm is chosen, tries the heuristic results
  // in order and keeps the first that launches (synchronising to see errors).
  cublasStatus_t run(LtPlan* p, const void* W, const void* X, void* out, const float* w_scale,
                     const float* x_scale, cudaStream_t s) {
    if (p->prec != Prec::BF16) {
      MOESIM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &w_scale, sizeof w_scale));
      MOESIM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &x_scale, sizeof x_scale));
    }
    const float one = 1.f, zero = 0.f;
    if (p->chosen >= 0)
      return cublasLtMatmul(h_, p->op, &one, W, p->a, X, p->b, &zero, out, p->d, out, p->d,
                            &p->heur[p->chosen].algo, ws_, ws_size_, s);
    cublasStatus_t last = CUBLAS_STATUS_NOT_SUPPORTED;
    for (int i = 0; i < p->n_heur; ++i) {
      last = cublasLtMatmul(h_, p->op, &one, W, p->a, X, p->b, &zero, out, p->d, out, p->d, &p->heur[i].algo,
                            ws_, ws_size_, s);
      if (last == CUBLAS_STATUS_SUCCESS && cudaStreamSynchronize(s) == cudaSuccess &&
          cudaGetLastError() == cudaSuccess) {
        p->chosen = i;
        return last;
      }
    }
    return last;
  }

 private:
  cublasLtHandle_t h_;
  void* ws_ = nullptr;
  size_t ws_size_;
  std::map<std::tuple<int, int, int, int>, std::unique_ptr<LtPlan>> plans_;
};

}  // namespace moesim::validate
