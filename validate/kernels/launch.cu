// Empty-kernel launch overhead: N back-to-back empty kernels, eager vs CUDA graph.
// host_ahead=true: the host was ahead of the GPU (a spin kernel ran first), so the
// time is the GPU-side cost per kernel; host_ahead=false: the GPU waited for the
// host, as in eager code that launches as it goes. Each record also carries the
// host wall time per API call (launch or graph launch) in "host_us_per_call".
#include <chrono>
#include <vector>

#include "common.cuh"
#include "suites.h"

namespace moesim::validate {

namespace {
__global__ void k_empty(int* p) {
  if (p && threadIdx.x == 1000000) *p = 1;  // never true; keeps the kernel non-trivial to the compiler
}
__global__ void k_mark(int* p, int v) {
  if (threadIdx.x == 0 && blockIdx.x == 0) *p = v;
}
}  // namespace

void run_launch_suite(Harness& h) {
  cudaStream_t s;
  MOESIM_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  int* flag;
  MOESIM_CUDA_CHECK(cudaMalloc(&flag, sizeof(int)));

  // Check: a marker kernel launched eagerly and from a graph really runs.
  {
    int v = 0;
    k_mark<<<1, 32, 0, s>>>(flag, 12345);
    MOESIM_CUDA_CHECK(cudaMemcpyAsync(&v, flag, sizeof v, cudaMemcpyDeviceToHost, s));
    MOESIM_CUDA_CHECK(cudaStreamSynchronize(s));
    cudaGraph_t g;
    cudaGraphExec_t ex;
    MOESIM_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    k_mark<<<1, 32, 0, s>>>(flag, 777);
    MOESIM_CUDA_CHECK(cudaStreamEndCapture(s, &g));
    MOESIM_CUDA_CHECK(cudaGraphInstantiate(&ex, g, 0));
    int v2 = 0;
    MOESIM_CUDA_CHECK(cudaGraphLaunch(ex, s));
    MOESIM_CUDA_CHECK(cudaMemcpyAsync(&v2, flag, sizeof v2, cudaMemcpyDeviceToHost, s));
    MOESIM_CUDA_CHECK(cudaStreamSynchronize(s));
    cudaGraphExecDestroy(ex);
    cudaGraphDestroy(g);
    double err = (v == 12345 && v2 == 777) ? 0.0 : 1.0;
    if (!h.check("launch", "none", "{\"graph\":false,\"kernels\":1}", err, 0.0, "marker kernel")) return;
  }

  std::vector<int> counts = h.quick ? std::vector<int>{1, 64} : std::vector<int>{1, 8, 64, 512};
  for (int n : counts) {
    for (bool graph : {false, true}) {
      // Host cost per API call, wall clock, GPU kept busy ahead so queues do not fill.
      double host_us = 0;
      {
        cudaGraphExec_t ex = nullptr;
        if (graph) {
          cudaGraph_t g;
          MOESIM_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
          for (int i = 0; i < n; ++i) k_empty<<<1, 32, 0, s>>>(nullptr);
          MOESIM_CUDA_CHECK(cudaStreamEndCapture(s, &g));
          MOESIM_CUDA_CHECK(cudaGraphInstantiate(&ex, g, 0));
          cudaGraphDestroy(g);
        }
        int calls = graph ? 200 : std::max(200, 2000 / n * n);
        for (int w = 0; w < 20; ++w) graph ? (void)cudaGraphLaunch(ex, s) : (void)(k_empty<<<1, 32, 0, s>>>(nullptr), 0);
        MOESIM_CUDA_CHECK(cudaStreamSynchronize(s));
        auto t0 = std::chrono::steady_clock::now();
        for (int c = 0; c < calls; ++c) {
          if (graph) MOESIM_CUDA_CHECK(cudaGraphLaunch(ex, s));
          else k_empty<<<1, 32, 0, s>>>(nullptr);
        }
        auto t1 = std::chrono::steady_clock::now();
        MOESIM_CUDA_CHECK(cudaStreamSynchronize(s));
        host_us = std::chrono::duration<double, std::micro>(t1 - t0).count() / calls;
        if (ex) cudaGraphExecDestroy(ex);
      }
      for (bool ahead : {true, false}) {
        TimeOptions o;
        o.warmup = 5;
        o.min_reps = 30;
        o.max_reps = 300;
        o.target_ms = 20;
        o.use_graph = graph;
        o.host_ahead = ahead;
        auto launch = [&](int, cudaStream_t st) {
          for (int i = 0; i < n; ++i) k_empty<<<1, 32, 0, st>>>(nullptr);
        };
        Timing t = h.time(launch, s, o);
        std::string shape = strf("{\"graph\":%s,\"kernels\":%d,\"host_ahead\":%s}", graph ? "true" : "false", n,
                                 ahead ? "true" : "false");
        h.record("launch", "none", shape, t, 0.0, 0, 0,
                 strf("\"us_per_kernel\":%.4f,\"host_us_per_call\":%.4f", t.median_us / n, host_us));
        std::fprintf(stderr, "[launch] graph=%d n=%4d ahead=%d  %9.3f us total  %7.3f us/kernel  host %.3f us/call\n",
                     graph, n, ahead, t.median_us, t.median_us / n, host_us);
      }
    }
  }
  cudaFree(flag);
  cudaStreamDestroy(s);
}

}  // namespace moesim::validate
