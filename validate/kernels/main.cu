// moesim_harness: runs the measurement suites and writes JSON lines.
//   moesim_harness [--suite copy,launch,gemm,grouped_gemm,router,permute,mla_decode|all]
//                  [--nccl N] [--ep-layer N] [--quick] [--out FILE] [--device D]
// copy runs first (when selected) so Harness::copy_bytes_per_s is measured.
// Exit status: 0 if every check passed and no suite threw, 1 otherwise.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "harness.h"
#include "ep_layer.cuh"
#include "suites.h"

using namespace moesim::validate;

namespace {
void usage() {
  std::fprintf(stderr,
               "usage: moesim_harness [--suite LIST|all] [--nccl N] [--ep-layer N] [--quick] [--out FILE] [--device D]\n"
               "  suites: copy,launch,gemm,grouped_gemm,router,permute,mla_decode (default: all)\n"
               "  --nccl N: run only the NCCL all-to-all + p2p suite over N GPUs\n"
               "  --ep-layer N: run only the expert-parallel MoE layer benchmark over GPUs 0..N-1\n");
}
std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> v;
  size_t p = 0;
  while (p <= s.size()) {
    size_t q = s.find(',', p);
    if (q == std::string::npos) q = s.size();
    if (q > p) v.push_back(s.substr(p, q - p));
    p = q + 1;
  }
  return v;
}
}  // namespace

int main(int argc, char** argv) {
  setenv("NCCL_NVLS_ENABLE", "0", 1);
  std::string suites = "all", out_path;
  int nccl = 0, ep_layer = 0, device = 0;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) { usage(); std::exit(2); }
      return argv[++i];
    };
    if (a == "--suite") suites = val();
    else if (a == "--nccl") nccl = std::atoi(val().c_str());
    else if (a == "--ep-layer") ep_layer = std::atoi(val().c_str());
    else if (a == "--quick") quick = true;
    else if (a == "--out") out_path = val();
    else if (a == "--device") device = std::atoi(val().c_str());
    else if (a == "-h" || a == "--help") { usage(); return 0; }
    else { std::fprintf(stderr, "unknown argument %s\n", a.c_str()); usage(); return 2; }
  }
  std::FILE* out = stdout;
  if (!out_path.empty()) {
    out = std::fopen(out_path.c_str(), "a");
    if (!out) { std::perror(out_path.c_str()); return 2; }
  }
  int errors = 0;
  if (ep_layer > 0) {
    try {
      run_ep_layer_suite(out, ep_layer, quick);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "[ERROR] ep_layer suite: %s\n", e.what());
      errors++;
    }
  } else if (nccl > 0) {
    try {
      run_nccl_suite(out, nccl, quick);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "[ERROR] nccl suite: %s\n", e.what());
      errors++;
    }
  } else {
    const std::vector<std::pair<std::string, std::function<void(Harness&)>>> all = {
        {"copy", run_copy_suite},         {"launch", run_launch_suite}, {"gemm", run_gemm_suite},
        {"grouped_gemm", run_grouped_gemm_suite}, {"router", run_router_suite}, {"permute", run_permute_suite},
        {"mla_decode", run_mla_decode_suite}};
    std::vector<std::string> want = suites == "all" ? std::vector<std::string>{} : split(suites);
    for (auto& w : want) {
      bool known = false;
      for (auto& [name, fn] : all) known |= name == w;
      if (!known) { std::fprintf(stderr, "unknown suite %s\n", w.c_str()); usage(); return 2; }
    }
    Harness h(out, device);
    h.quick = quick;
    for (auto& [name, fn] : all) {
      bool on = want.empty();
      for (auto& w : want) on |= w == name;
      if (!on) continue;
      std::fprintf(stderr, "=== suite %s%s ===\n", name.c_str(), quick ? " (quick)" : "");
      try {
        fn(h);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "[ERROR] suite %s: %s\n", name.c_str(), e.what());
        errors++;
        cudaGetLastError();
      }
    }
    h.print_summary(stderr);
  }
  int fails = check_failures();
  std::fprintf(stderr, "\nchecks failed: %d, suite errors: %d\n", fails, errors);
  if (out != stdout) std::fclose(out);
  return (fails || errors) ? 1 : 0;
}
