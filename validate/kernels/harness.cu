// Harness: environment capture, event timing, checks and JSON-line records.
#include <cublas_v2.h>
#include <dlfcn.h>
#include <nccl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <vector>

#include "common.cuh"
#include "harness.h"

namespace moesim::validate {

namespace {

std::atomic<int> g_failures{0};

// Minimal NVML through dlopen: no header or link dependency.
struct Nvml {
  using Init = int (*)();
  using ByPci = int (*)(const char*, void**);
  using Clock = int (*)(void*, int, unsigned*);
  using DrvVer = int (*)(char*, unsigned);
  Init init = nullptr;
  ByPci by_pci = nullptr;
  Clock clock = nullptr, max_clock = nullptr;
  DrvVer drv = nullptr;
  bool ok = false;
  Nvml() {
    void* h = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen("libnvidia-ml.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
    init = (Init)dlsym(h, "nvmlInit_v2");
    by_pci = (ByPci)dlsym(h, "nvmlDeviceGetHandleByPciBusId_v2");
    clock = (Clock)dlsym(h, "nvmlDeviceGetClockInfo");
    max_clock = (Clock)dlsym(h, "nvmlDeviceGetMaxClockInfo");
    drv = (DrvVer)dlsym(h, "nvmlSystemGetDriverVersion");
    ok = init && by_pci && clock && init() == 0;
  }
};
Nvml& nvml() {
  static Nvml n;
  return n;
}

std::string iso_date_utc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  if (v == std::floor(v) && std::fabs(v) < 9e15) return strf("%.0f", v);
  return strf("%.6g", v);
}

double peak_flops_for(const std::string& dtype) {
  // Dense datasheet peaks of H100/H200 SXM, used only for the stderr summary.
  if (dtype.rfind("fp8", 0) == 0) return 1978.9e12;
  if (dtype == "fp32" || dtype == "f32") return 66.9e12;
  return 989.4e12;
}

}  // namespace

void count_check_failure() { g_failures++; }
int check_failures() { return g_failures.load(); }

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\r': o += "\\r"; break;
      case '\t': o += "\\t"; break;
      default:
        if (c < 0x20) o += strf("\\u%04x", c);
        else o += (char)c;
    }
  }
  return o + "\"";
}

Harness::Harness(std::FILE* out, int device) : out_(out), device_(device) {
  MOESIM_CUDA_CHECK(cudaSetDevice(device));
  cudaDeviceProp p{};
  MOESIM_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  int clock_khz = 0, memclock_khz = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device);
  cudaDeviceGetAttribute(&memclock_khz, cudaDevAttrMemoryClockRate, device);
  max_sm_clock_mhz_ = clock_khz / 1000.0;
  int rt = 0, drv_api = 0;
  cudaRuntimeGetVersion(&rt);
  cudaDriverGetVersion(&drv_api);
  int cbm = 0, cbn = 0, cbp = 0;
  cublasGetProperty(MAJOR_VERSION, &cbm);
  cublasGetProperty(MINOR_VERSION, &cbn);
  cublasGetProperty(PATCH_LEVEL, &cbp);
  int nv = 0;
  ncclGetVersion(&nv);
  std::string nccl_s = strf("%d.%d.%d", nv / 10000, (nv / 100) % 100, nv % 100);

  std::string driver = strf("cuda-driver-api-%d.%d", drv_api / 1000, (drv_api % 1000) / 10);
  std::string clock_src = "cudaDevAttrClockRate(max)";
  Nvml& n = nvml();
  if (n.ok) {
    char bus[64] = {0};
    if (cudaDeviceGetPCIBusId(bus, sizeof bus, device) == cudaSuccess) {
      void* h = nullptr;
      if (n.by_pci(bus, &h) == 0) {
        nvml_dev_ = h;
        clock_src = "nvml";
        unsigned mx = 0;
        if (n.max_clock && n.max_clock(h, 1, &mx) == 0) max_sm_clock_mhz_ = mx;
      }
    }
    char dv[96] = {0};
    if (n.drv && n.drv(dv, sizeof dv) == 0) driver = dv;
  }

  env_json_ = "\"gpu\":" + json_string(p.name) + ",\"sms\":" + std::to_string(p.multiProcessorCount) +
              ",\"l2_bytes\":" + std::to_string(p.l2CacheSize) +
              ",\"mem_bytes\":" + num((double)p.totalGlobalMem) +
              ",\"sm_clock_max_mhz\":" + num(max_sm_clock_mhz_) +
              ",\"sm_clock_src\":" + json_string(clock_src) + ",\"driver\":" + json_string(driver) +
              ",\"cuda\":" + json_string(strf("%d.%d", rt / 1000, (rt % 1000) / 10)) +
              ",\"cublas\":" + json_string(strf("%d.%d.%d", cbm, cbn, cbp)) +
              ",\"nccl\":" + json_string(nccl_s) + ",\"date\":" + json_string(iso_date_utc());
  std::fprintf(stderr, "[harness] device %d: %s, %d SMs, L2 %d B, driver %s, cuda %d, cublas %d.%d.%d, nccl %s, clock via %s\n",
               device, p.name, p.multiProcessorCount, p.l2CacheSize, driver.c_str(), rt, cbm, cbn, cbp,
               nccl_s.c_str(), clock_src.c_str());
}

double Harness::sm_clock_mhz() const {
  if (nvml_dev_) {
    unsigned c = 0;
    if (nvml().clock(nvml_dev_, 1 /*NVML_CLOCK_SM*/, &c) == 0) return c;
  }
  return max_sm_clock_mhz_;
}

Timing Harness::time(const std::function<void(int rep, cudaStream_t stream)>& launch, cudaStream_t stream,
                     const TimeOptions& opts) {
  MOESIM_CUDA_CHECK(cudaSetDevice(device_));
  std::vector<cudaGraphExec_t> graphs;
  if (opts.use_graph) {
    int g = std::max(1, opts.graph_variants);
    for (int v = 0; v < g; ++v) {
      cudaGraph_t graph;
      MOESIM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
      launch(v, stream);
      MOESIM_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
      cudaGraphExec_t ex;
      MOESIM_CUDA_CHECK(cudaGraphInstantiate(&ex, graph, 0));
      MOESIM_CUDA_CHECK(cudaGraphDestroy(graph));
      graphs.push_back(ex);
    }
  }
  auto run = [&](int rep) {
    if (graphs.empty()) launch(rep, stream);
    else MOESIM_CUDA_CHECK(cudaGraphLaunch(graphs[rep % graphs.size()], stream));
  };
  // Warm-up; its host enqueue time sizes the spin that keeps the host ahead later.
  auto w0 = std::chrono::steady_clock::now();
  for (int i = 0; i < opts.warmup; ++i) run(i);
  auto w1 = std::chrono::steady_clock::now();
  double host_us_per_call =
      std::chrono::duration<double, std::micro>(w1 - w0).count() / std::max(1, opts.warmup);
  MOESIM_CUDA_CHECK(cudaGetLastError());
  MOESIM_CUDA_CHECK(cudaStreamSynchronize(stream));

  const int max_reps = std::max(1, opts.max_reps);
  std::vector<cudaEvent_t> ev(2 * (size_t)max_reps);
  for (auto& e : ev) MOESIM_CUDA_CHECK(cudaEventCreate(&e));
  std::vector<double> times;
  times.reserve(max_reps);
  double total_ms = 0;
  int batch = std::min(std::max(1, opts.min_reps), max_reps);
  while (true) {
    int base = (int)times.size();
    if (opts.host_ahead) {
      // Enough GPU time for the host to enqueue the whole batch (+ 2 event records each).
      double per = std::max(host_us_per_call, 2.0) * 1.5 + 6.0;
      double ns = std::min(per * batch * 1000.0 + 20000.0, 200e6);
      launch_spin((uint64_t)ns, stream);
    }
    for (int i = 0; i < batch; ++i) {
      MOESIM_CUDA_CHECK(cudaEventRecord(ev[2 * (base + i)], stream));
      run(base + i);
      MOESIM_CUDA_CHECK(cudaEventRecord(ev[2 * (base + i) + 1], stream));
    }
    MOESIM_CUDA_CHECK(cudaGetLastError());
    MOESIM_CUDA_CHECK(cudaStreamSynchronize(stream));
    for (int i = 0; i < batch; ++i) {
      float ms = 0;
      MOESIM_CUDA_CHECK(cudaEventElapsedTime(&ms, ev[2 * (base + i)], ev[2 * (base + i) + 1]));
      times.push_back(ms * 1000.0);
      total_ms += ms;
    }
    int done = (int)times.size();
    if (done >= max_reps || total_ms >= opts.target_ms) break;
    double avg = total_ms / done;
    int need = (int)std::ceil((opts.target_ms - total_ms) / std::max(avg, 1e-4));
    batch = std::clamp(need, 1, std::min(100, max_reps - done));
  }
  for (auto& e : ev) cudaEventDestroy(e);
  for (auto& g : graphs) cudaGraphExecDestroy(g);

  std::sort(times.begin(), times.end());
  auto q = [&](double f) {
    double pos = f * (times.size() - 1);
    size_t lo = (size_t)std::floor(pos), hi = std::min(times.size() - 1, lo + 1);
    return times[lo] + (times[hi] - times[lo]) * (pos - lo);
  };
  Timing t;
  t.median_us = q(0.5);
  t.p10_us = q(0.1);
  t.p90_us = q(0.9);
  t.reps = (int)times.size();
  return t;
}

void Harness::record(const std::string& kernel, const std::string& dtype, const std::string& shape_json,
                     const Timing& t, double check_rel_err, double flops, double bytes,
                     const std::string& extra_json) {
  std::string line = "{" + env_json_ + ",\"sm_clock_mhz\":" + num(sm_clock_mhz()) +
                     ",\"kernel\":" + json_string(kernel) + ",\"dtype\":" + json_string(dtype) +
                     ",\"shape\":" + shape_json + ",\"median_us\":" + strf("%.4f", t.median_us) +
                     ",\"p10_us\":" + strf("%.4f", t.p10_us) + ",\"p90_us\":" + strf("%.4f", t.p90_us) +
                     ",\"reps\":" + std::to_string(t.reps) + ",\"check_rel_err\":" + num(check_rel_err) +
                     ",\"flops\":" + num(flops) + ",\"bytes\":" + num(bytes);
  if (!extra_json.empty()) line += "," + extra_json;
  line += "}\n";
  std::fputs(line.c_str(), out_);
  std::fflush(out_);

  // Roofline fraction for the summary: max(compute time, memory time) / measured.
  double bw = copy_bytes_per_s > 0 ? copy_bytes_per_s : 3.0e12;
  double floor_s = std::max(flops / peak_flops_for(dtype), bytes / bw);
  double frac = t.median_us > 0 ? floor_s / (t.median_us * 1e-6) : 0;
  auto it = std::find_if(families_.begin(), families_.end(), [&](auto& p) { return p.first == kernel; });
  if (it == families_.end()) {
    families_.push_back({kernel, {}});
    it = families_.end() - 1;
  }
  it->second.points++;
  if (frac > it->second.best_frac) {
    it->second.best_frac = frac;
    it->second.best_shape = dtype + " " + shape_json.substr(0, 120);
  }
}

bool Harness::check(const std::string& kernel, const std::string& dtype, const std::string& shape_json,
                    double rel_err, double tol, const std::string& note) {
  if (std::isfinite(rel_err) && rel_err <= tol) return true;
  count_check_failure();
  std::fprintf(stderr, "[CHECK FAILED] kernel=%s dtype=%s shape=%s rel_err=%g tol=%g %s\n", kernel.c_str(),
               dtype.c_str(), shape_json.c_str(), rel_err, tol, note.c_str());
  std::string line = "{" + env_json_ + ",\"status\":\"check_failed\",\"kernel\":" + json_string(kernel) +
                     ",\"dtype\":" + json_string(dtype) + ",\"shape\":" + shape_json +
                     ",\"check_rel_err\":" + num(rel_err) + ",\"check_tol\":" + num(tol) +
                     (note.empty() ? "" : ",\"note\":" + json_string(note)) + "}\n";
  std::fputs(line.c_str(), out_);
  std::fflush(out_);
  return false;
}

void Harness::print_summary(std::FILE* f) const {
  std::fprintf(f, "\n%-16s %7s %9s  %s\n", "family", "points", "best_frac", "at");
  for (auto& [k, s] : families_)
    std::fprintf(f, "%-16s %7d %9.3f  %s\n", k.c_str(), s.points, s.best_frac, s.best_shape.c_str());
  std::fprintf(f, "(best_frac = max(flops/peak_datasheet, bytes/measured_copy_bw) / median time; copy bw %.0f GB/s)\n",
               copy_bytes_per_s / 1e9);
}

double rel_l2_error(const float* out, const float* ref, std::size_t n) {
  double se = 0, sr = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(out[i])) return INFINITY;
    double d = (double)out[i] - (double)ref[i];
    se += d * d;
    sr += (double)ref[i] * ref[i];
  }
  if (sr == 0) return se == 0 ? 0 : INFINITY;
  return std::sqrt(se / sr);
}

}  // namespace moesim::validate
