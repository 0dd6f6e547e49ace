// Wall time of one skewed MoE all-to-all (dispatch) in fluid and analytic mode:
//   EP8   one HGX H200 node (8 x 7 = 56 flows)
//   EP72  one GB200 NVL72 rack (72 x 71 = 5,112 flows)
//   EP576 eight NVL72 racks joined by rail-optimised InfiniBand (576 x 575 = 331,200 flows)
// Traffic: every GPU routes 4,096 tokens x top-8 to experts with Zipf(1.0)-skewed
// popularity over the destination GPUs (multinomial split, rng stream "bench/a2a"),
// 7,312 bytes per token copy (DeepEP FP8 dispatch for H = 7168: 7168 + 7168/128*4 + 16).
#include <benchmark/benchmark.h>

#include <chrono>
#include <vector>

#include "sim/core/rng.h"
#include "sim/hw/analytic_comm.h"
#include "sim/hw/collectives.h"

namespace {

using namespace moesim;
using namespace std::chrono_literals;

SystemSpec hgx_h200() {
  SystemSpec s;
  s.id = "hgx-h200";
  s.file = "bench:hgx-h200";
  s.scale_up = ScaleUp{.domain_gpus = 8,
                       .switch_chips = 4,
                       .bandwidth_per_gpu_per_direction = BytesPerSec(450e9),
                       .latency = Duration(2us),
                       .in_switch_reduction = true};
  s.scale_out = ScaleOut{.fabric = "infiniband-rail-optimized",
                         .nics_per_gpu = 1,
                         .nic_bandwidth_per_direction = BytesPerSec(50e9),
                         .nic_latency = Duration(2us),
                         .switch_latency = Duration(300ns),
                         .leaf_ports = 64};
  return s;
}

SystemSpec gb200_nvl72() {
  SystemSpec s;
  s.id = "gb200-nvl72";
  s.file = "bench:gb200-nvl72";
  s.scale_up = ScaleUp{.domain_gpus = 72,
                       .switch_chips = 18,
                       .bandwidth_per_gpu_per_direction = BytesPerSec(900e9),
                       .latency = Duration(2us),
                       .in_switch_reduction = true};
  s.scale_out = ScaleOut{.fabric = "infiniband-rail-optimized",
                         .nics_per_gpu = 1,
                         .nic_bandwidth_per_direction = BytesPerSec(100e9),
                         .nic_latency = Duration(2us),
                         .switch_latency = Duration(300ns),
                         .leaf_ports = 144};
  return s;
}

struct Case {
  Topology topo;
  std::vector<GpuId> gpus;
  ByteMatrix bytes;
};

Case make_case(int ep) {
  SystemSpec sys = ep == 8 ? hgx_h200() : gb200_nvl72();
  const int domains = ep / sys.scale_up.domain_gpus;
  Case c{build_topology(ClusterSpec{sys, domains}), {}, ByteMatrix(static_cast<std::size_t>(ep))};
  for (int i = 0; i < ep; ++i) c.gpus.emplace_back(static_cast<std::uint32_t>(i));
  Rng rng = Rng::stream(2024, "bench/a2a");
  ZipfTable zipf(static_cast<std::size_t>(ep), 1.0);
  std::vector<double> p(static_cast<std::size_t>(ep));
  // Popularity rank of each GPU: a random permutation so the hot GPUs are spread.
  std::vector<std::size_t> rank(p.size());
  for (std::size_t i = 0; i < rank.size(); ++i) rank[i] = i;
  for (std::size_t i = rank.size(); i > 1; --i) std::swap(rank[i - 1], rank[rng.uniform_int(i)]);
  for (std::size_t j = 0; j < p.size(); ++j) p[j] = zipf.probability(rank[j]);
  for (std::size_t i = 0; i < p.size(); ++i) {
    const auto counts = rng.multinomial(4096 * 8, p);
    for (std::size_t j = 0; j < p.size(); ++j) {
      if (i != j) c.bytes.set(i, j, Bytes(static_cast<double>(counts[j]) * 7312.0));
    }
  }
  // Warm the route cache (built once per source on first use).
  (void)alltoall_time(c.topo, c.gpus, c.bytes);
  return c;
}

const Case& get_case(int ep) {
  static const Case c8 = make_case(8);  // read-only fixtures, built once per process
  static const Case c72 = make_case(72);
  static const Case c576 = make_case(576);
  return ep == 8 ? c8 : ep == 72 ? c72 : c576;
}

void BM_AllToAllFluid(benchmark::State& state) {
  const Case& c = get_case(static_cast<int>(state.range(0)));
  double sim_us = 0;
  std::uint64_t solves = 0, kept = 0, events = 0, rounds = 0, round_flows = 0, changes = 0;
  for (auto _ : state) {
    Simulator sim;
    Network net(sim, c.topo);
    Time done{};
    net.all_to_all(c.gpus, c.bytes, [&](Time t) { done = t; });
    sim.run();
    sim_us = to_us(done.time_since_epoch());
    solves = net.flows().stats().solves;
    kept = net.flows().stats().completions_kept_rates;
    rounds = net.flows().stats().repair_rounds;
    round_flows = net.flows().stats().repair_flows;
    changes = net.flows().stats().rate_changes;
    events = sim.events_executed();
    benchmark::DoNotOptimize(done);
  }
  state.counters["sim_us"] = sim_us;
  state.counters["flows"] = static_cast<double>(c.gpus.size() * (c.gpus.size() - 1));
  state.counters["solves"] = static_cast<double>(solves);
  state.counters["kept"] = static_cast<double>(kept);
  state.counters["events"] = static_cast<double>(events);
  state.counters["rounds"] = static_cast<double>(rounds);            // repair sub-problem solves
  state.counters["round_flows"] = static_cast<double>(round_flows);  // flows in them, summed
  state.counters["rate_changes"] = static_cast<double>(changes);
}

void BM_AllToAllAnalytic(benchmark::State& state) {
  const Case& c = get_case(static_cast<int>(state.range(0)));
  Duration d{};
  for (auto _ : state) {
    d = alltoall_time(c.topo, c.gpus, c.bytes);
    benchmark::DoNotOptimize(d);
  }
  state.counters["sim_us"] = to_us(d);
}

}  // namespace

BENCHMARK(BM_AllToAllFluid)->Arg(8)->Arg(72)->Arg(576)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AllToAllAnalytic)->Arg(8)->Arg(72)->Arg(576)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
