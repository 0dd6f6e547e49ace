// Multi-GPU suite, single process: ncclCommInitAll over n GPUs, one stream each.
//  - "nccl_alltoall": all-to-all(v) as grouped ncclSend/ncclRecv (self included),
//    patterns uniform, skewed (one hot destination receives 4x) and dirichlet
//    (random split per source, fixed seed).
//  - "p2p": GPU0 -> GPU1 by cudaMemcpyPeerAsync and by NCCL send/recv.
// Timing: host wall clock around `iters` back-to-back operations, all streams
// synchronised; a trial gives the mean per operation; median/p10/p90 over trials.
// NVLink multicast (NVLS) stays off: NCCL_NVLS_ENABLE=0 is set before init.
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "nccl_check.cuh"
#include "common.cuh"
#include "suites.h"

namespace moesim::validate {

namespace {


__global__ void k_pattern(uint8_t* p, size_t n, uint32_t tag) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    p[i] = (uint8_t)(mix64(((uint64_t)tag << 40) ^ i) >> 56);
}

using Matrix = std::vector<std::vector<size_t>>;

struct Ctx {
  int n;
  std::vector<ncclComm_t> comms;
  std::vector<cudaStream_t> streams;
};

void sync_all(Ctx& c) {
  for (int i = 0; i < c.n; ++i) {
    MOESIM_CUDA_CHECK(cudaSetDevice(i));
    MOESIM_CUDA_CHECK(cudaStreamSynchronize(c.streams[i]));
  }
}

// Enqueues one all-to-all(v) given byte matrix M[i][j] = bytes i -> j.
void alltoallv(Ctx& c, const Matrix& M, const std::vector<uint8_t*>& send, const std::vector<uint8_t*>& recv) {
  MOESIM_NCCL_CHECK(ncclGroupStart());
  for (int i = 0; i < c.n; ++i) {
    size_t so = 0, ro = 0;
    for (int j = 0; j < c.n; ++j) {
      if (M[i][j]) MOESIM_NCCL_CHECK(ncclSend(send[i] + so, M[i][j], ncclUint8, j, c.comms[i], c.streams[i]));
      if (M[j][i]) MOESIM_NCCL_CHECK(ncclRecv(recv[i] + ro, M[j][i], ncclUint8, j, c.comms[i], c.streams[i]));
      so += M[i][j];
      ro += M[j][i];
    }
  }
  MOESIM_NCCL_CHECK(ncclGroupEnd());
}

// Times `op` (enqueue one operation on all GPUs): trials x iters, wall clock.
Timing time_host_loop(Ctx& c, const std::function<void()>& op, double est_us, int trials) {
  int iters = (int)std::clamp(8000.0 / std::max(est_us, 1.0), 2.0, 400.0);
  for (int w = 0; w < 3; ++w) op();
  sync_all(c);
  std::vector<double> per;
  for (int t = 0; t < trials; ++t) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) op();
    sync_all(c);
    auto t1 = std::chrono::steady_clock::now();
    per.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / iters);
  }
  std::sort(per.begin(), per.end());
  auto q = [&](double f) {
    double pos = f * (per.size() - 1);
    size_t lo = (size_t)pos, hi = std::min(per.size() - 1, lo + 1);
    return per[lo] + (per[hi] - per[lo]) * (pos - lo);
  };
  Timing tm;
  tm.median_us = q(0.5);
  tm.p10_us = q(0.1);
  tm.p90_us = q(0.9);
  tm.reps = trials * iters;
  return tm;
}

// Quick single-op estimate to size the loop.
double estimate_us(Ctx& c, const std::function<void()>& op) {
  op();
  sync_all(c);
  auto t0 = std::chrono::steady_clock::now();
  op();
  sync_all(c);
  auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::micro>(t1 - t0).count();
}

std::string matrix_json(const Matrix& M) {
  std::string s = "[";
  for (size_t i = 0; i < M.size(); ++i) {
    s += i ? ",[" : "[";
    for (size_t j = 0; j < M[i].size(); ++j) s += (j ? "," : "") + std::to_string(M[i][j]);
    s += "]";
  }
  return s + "]";
}

// Verifies an all-to-all: recv[i] segment from j must equal the pattern j wrote for i.
double verify_alltoall(Ctx& c, const Matrix& M, const std::vector<uint8_t*>& send, const std::vector<uint8_t*>& recv) {
  // Fill send[i] segment j with pattern tag (i,j), poison recv.
  for (int i = 0; i < c.n; ++i) {
    MOESIM_CUDA_CHECK(cudaSetDevice(i));
    size_t so = 0, rtot = 0;
    for (int j = 0; j < c.n; ++j) {
      if (M[i][j]) k_pattern<<<256, 256, 0, c.streams[i]>>>(send[i] + so, M[i][j], (uint32_t)(i * 1000 + j));
      so += M[i][j];
      rtot += M[j][i];
    }
    MOESIM_CUDA_CHECK(cudaMemsetAsync(recv[i], 0x5A, rtot, c.streams[i]));
  }
  sync_all(c);
  alltoallv(c, M, send, recv);
  sync_all(c);
  size_t bad = 0, total = 0;
  for (int i = 0; i < c.n; ++i) {
    size_t ro = 0;
    for (int j = 0; j < c.n; ++j) {
      size_t b = M[j][i];
      if (b) {
        std::vector<uint8_t> got(b);
        MOESIM_CUDA_CHECK(cudaSetDevice(i));
        MOESIM_CUDA_CHECK(cudaMemcpy(got.data(), recv[i] + ro, b, cudaMemcpyDeviceToHost));
        uint32_t tag = (uint32_t)(j * 1000 + i);
        for (size_t x = 0; x < b; ++x) bad += got[x] != (uint8_t)(mix64(((uint64_t)tag << 40) ^ x) >> 56);
        total += b;
      }
      ro += b;
    }
  }
  return total ? (double)bad / total : 1.0;
}

}  // namespace

void run_nccl_suite(std::FILE* out, int n, bool quick) {
  setenv("NCCL_NVLS_ENABLE", "0", 1);  // never NVLink multicast (shared hosts)
  int ndev = 0;
  MOESIM_CUDA_CHECK(cudaGetDeviceCount(&ndev));
  if (n < 2 || n > ndev) throw std::runtime_error(strf("--nccl %d: need 2..%d GPUs", n, ndev));
  Harness h(out, 0);
  Ctx c;
  c.n = n;
  c.comms.resize(n);
  c.streams.resize(n);
  std::vector<int> devs(n);
  for (int i = 0; i < n; ++i) devs[i] = i;
  MOESIM_NCCL_CHECK(ncclCommInitAll(c.comms.data(), n, devs.data()));
  for (int i = 0; i < n; ++i) {
    MOESIM_CUDA_CHECK(cudaSetDevice(i));
    MOESIM_CUDA_CHECK(cudaStreamCreateWithFlags(&c.streams[i], cudaStreamNonBlocking));
  }
  // Link topology, for the record.
  std::string topo = "[";
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      if (i == j) continue;
      int acc = 0, perf = 0;
      cudaDeviceCanAccessPeer(&acc, i, j);
      cudaDeviceGetP2PAttribute(&perf, cudaDevP2PAttrPerformanceRank, i, j);
      topo += strf("%s{\"src\":%d,\"dst\":%d,\"peer\":%d,\"perf_rank\":%d}", topo.size() > 1 ? "," : "", i, j, acc, perf);
    }
  topo += "]";
  std::fprintf(stderr, "[nccl] %d GPUs, p2p: %s\n", n, topo.c_str());

  const size_t KB = 1024, MB = KB * KB;
  std::vector<size_t> sizes;
  if (quick) sizes = {1 * KB, 64 * KB, 4 * MB};
  else sizes = {1 * KB, 2 * KB, 4 * KB, 8 * KB, 16 * KB, 64 * KB, 128 * KB, 256 * KB, 1 * MB, 2 * MB,
                4 * MB, 16 * MB, 32 * MB, 64 * MB, 128 * MB, 256 * MB};
  const size_t maxB = sizes.back();
  // Buffers: a hot destination receives 4B from each of n ranks; dirichlet columns sum to <= n*n*B.
  const size_t buf = maxB * 4 * n + 4096;  // worst column: hot destination or dirichlet
  std::vector<uint8_t*> send(n), recv(n);
  for (int i = 0; i < n; ++i) {
    MOESIM_CUDA_CHECK(cudaSetDevice(i));
    MOESIM_CUDA_CHECK(cudaMalloc(&send[i], buf));
    MOESIM_CUDA_CHECK(cudaMalloc(&recv[i], buf));
    k_pattern<<<1024, 256, 0, c.streams[i]>>>(send[i], buf, 77u + i);
  }
  sync_all(c);

  auto make_matrix = [&](const std::string& pattern, size_t B) {
    Matrix M(n, std::vector<size_t>(n, B));
    if (pattern == "skewed") {
      for (int i = 0; i < n; ++i) M[i][0] = 4 * B;  // destination 0 is hot
    } else if (pattern == "dirichlet") {
      HostRng rng(0xD1A1C7 + B);
      for (int i = 0; i < n; ++i) {
        std::vector<double> w(n);
        double sum = 0;
        for (auto& x : w) sum += (x = -std::log(1.0 - rng.uniform01()));  // Gamma(1) -> Dirichlet(1)
        size_t total = B * n, used = 0;
        for (int j = 0; j < n; ++j) {
          size_t b = j == n - 1 ? total - used : std::min(total - used, (size_t)(w[j] / sum * total) / 16 * 16);
          M[i][j] = b;
          used += b;
        }
      }
    }
    return M;
  };

  // Verify contents on small sizes for each pattern before timing.
  for (const char* pat : {"uniform", "skewed", "dirichlet"}) {
    Matrix M = make_matrix(pat, 64 * KB + 16);
    double err = verify_alltoall(c, M, send, recv);
    std::string shape = strf("{\"gpus\":%d,\"bytes_per_peer\":%zu,\"pattern\":\"%s\"}", n, 64 * KB + 16, pat);
    if (!h.check("nccl_alltoall", "u8", shape, err, 0.0, "content verification")) {
      std::fprintf(stderr, "[nccl] all-to-all verification failed; not timing\n");
      return;
    }
  }
  std::fprintf(stderr, "[nccl] all-to-all contents verified (uniform, skewed, dirichlet)\n");

  for (const char* pat : {"uniform", "skewed", "dirichlet"}) {
    for (size_t B : sizes) {
      if (quick && std::string(pat) == "dirichlet") continue;
      Matrix M = make_matrix(pat, B);
      auto op = [&]() { alltoallv(c, M, send, recv); };
      double est = estimate_us(c, op);
      Timing t = time_host_loop(c, op, est, quick ? 5 : 9);
      size_t total = 0, max_off = 0;
      for (int i = 0; i < n; ++i) {
        size_t so = 0, ro = 0;
        for (int j = 0; j < n; ++j) {
          total += M[i][j];
          if (i != j) { so += M[i][j]; ro += M[j][i]; }
        }
        max_off = std::max({max_off, so, ro});
      }
      double busbw = max_off / (t.median_us * 1e-6);
      std::string shape = strf("{\"gpus\":%d,\"bytes_per_peer\":%zu,\"pattern\":\"%s\",\"matrix\":%s}", n, B, pat,
                               matrix_json(M).c_str());
      h.record("nccl_alltoall", "u8", shape, t, 0.0, 0, (double)total,
               strf("\"impl\":\"nccl_grouped_send_recv\",\"timing\":\"host_loop\",\"max_rank_offgpu_bytes\":%zu,"
                    "\"busbw_GBps\":%.3f,\"nvls\":false,\"topology\":%s",
                    max_off, busbw / 1e9, topo.c_str()));
      std::fprintf(stderr, "[nccl] alltoall n=%d %-9s B=%9zu  %10.2f us  busbw %7.1f GB/s\n", n, pat, B, t.median_us,
                   busbw / 1e9);
    }
  }

  // p2p GPU0 -> GPU1.
  {
    int acc = 0;
    cudaDeviceCanAccessPeer(&acc, 0, 1);
    if (acc) {
      MOESIM_CUDA_CHECK(cudaSetDevice(0));
      cudaError_t e = cudaDeviceEnablePeerAccess(1, 0);
      if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled) MOESIM_CUDA_CHECK(e);
      cudaGetLastError();
    }
    std::vector<size_t> psz;
    if (quick) psz = {8, 8192, 32 * MB};
    else for (size_t b = 8; b <= 1024 * MB; b *= 4) psz.push_back(b);
    if (psz.back() != 1024 * MB && !quick) psz.push_back(1024 * MB);
    size_t pmax = psz.back();
    uint8_t *src, *dst;
    MOESIM_CUDA_CHECK(cudaSetDevice(0));
    MOESIM_CUDA_CHECK(cudaMalloc(&src, pmax));
    k_pattern<<<1024, 256, 0, c.streams[0]>>>(src, pmax, 4242);
    MOESIM_CUDA_CHECK(cudaSetDevice(1));
    MOESIM_CUDA_CHECK(cudaMalloc(&dst, pmax));
    sync_all(c);
    // Only GPUs 0 and 1 take part; with n > 2 the others idle.
    Ctx c2 = c;
    for (const char* method : {"memcpy_peer", "nccl"}) {
      bool nccl = method[0] == 'n';
      for (size_t b : psz) {
        auto op = [&]() {
          if (nccl) {
            MOESIM_NCCL_CHECK(ncclGroupStart());
            MOESIM_NCCL_CHECK(ncclSend(src, b, ncclUint8, 1, c.comms[0], c.streams[0]));
            MOESIM_NCCL_CHECK(ncclRecv(dst, b, ncclUint8, 0, c.comms[1], c.streams[1]));
            MOESIM_NCCL_CHECK(ncclGroupEnd());
          } else {
            MOESIM_CUDA_CHECK(cudaSetDevice(0));
            MOESIM_CUDA_CHECK(cudaMemcpyPeerAsync(dst, 1, src, 0, b, c.streams[0]));
          }
        };
        // Check: poison destination, one op, compare a window at the start and end.
        MOESIM_CUDA_CHECK(cudaSetDevice(1));
        MOESIM_CUDA_CHECK(cudaMemset(dst, 0x3C, b));
        MOESIM_CUDA_CHECK(cudaDeviceSynchronize());
        op();
        sync_all(c);
        size_t win = std::min<size_t>(b, 1 << 20);
        std::vector<uint8_t> a(win), g(win), a2(win), g2(win);
        MOESIM_CUDA_CHECK(cudaMemcpy(a.data(), src, win, cudaMemcpyDeviceToHost));
        MOESIM_CUDA_CHECK(cudaMemcpy(g.data(), dst, win, cudaMemcpyDeviceToHost));
        MOESIM_CUDA_CHECK(cudaMemcpy(a2.data(), src + b - win, win, cudaMemcpyDeviceToHost));
        MOESIM_CUDA_CHECK(cudaMemcpy(g2.data(), dst + b - win, win, cudaMemcpyDeviceToHost));
        size_t bad = 0;
        for (size_t x = 0; x < win; ++x) bad += (a[x] != g[x]) + (a2[x] != g2[x]);
        double err = (double)bad / (2.0 * win);
        std::string shape = strf("{\"bytes\":%zu,\"method\":\"%s\"}", b, method);
        if (!h.check("p2p", "u8", shape, err, 0.0, strf("gpus=%d", n))) continue;
        double est = estimate_us(c2, op);
        Timing t = time_host_loop(c2, op, est, quick ? 5 : 9);
        h.record("p2p", "u8", shape, t, err, 0, (double)b,
                 strf("\"src\":0,\"dst\":1,\"gpus_in_comm\":%d,\"peer_access\":%s,\"timing\":\"host_loop\","
                      "\"GBps\":%.3f,\"nvls\":false",
                      n, acc ? "true" : "false", b / t.median_us * 1e-3));
        std::fprintf(stderr, "[p2p] %-11s %11zu B  %10.2f us  %7.1f GB/s\n", method, b, t.median_us,
                     b / t.median_us * 1e-3);
      }
    }
    MOESIM_CUDA_CHECK(cudaSetDevice(0));
    cudaFree(src);
    MOESIM_CUDA_CHECK(cudaSetDevice(1));
    cudaFree(dst);
  }

  for (int i = 0; i < n; ++i) {
    MOESIM_CUDA_CHECK(cudaSetDevice(i));
    cudaFree(send[i]);
    cudaFree(recv[i]);
    ncclCommDestroy(c.comms[i]);
    cudaStreamDestroy(c.streams[i]);
  }
  h.print_summary(stderr);
}

}  // namespace moesim::validate
