// Serving speed and memory: 10,000 DeepSeek-R1 requests (ISL 1K, OSL 1K) on one
// GB200 NVL72 rack, disaggregated (3 x EP8 prefill + EP48 decode), one core.
//   BM_Serve10k/cold: a fresh step timer (the step simulator runs at every grid point it needs)
//   BM_Serve10k/warm: the same timers again (grid points memoised: the serving loop alone)
//   BM_GridVsDirect:  the step timer's interpolation against direct step simulation at off-grid shapes
// Counters: wall seconds, peak RSS (MB, whole process), steps, step-simulator grid points evaluated, engine
// events, max/mean relative error.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <chrono>
#include <cmath>

#include "sim/config/scenario.h"
#include "sim/obs/report.h"
#include "sim/serve/serving_sim.h"
#include "sim/serve/step_timers.h"
#include "sim/step/step.h"

namespace {

using namespace moesim;

double peak_rss_mb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

ScenarioSpec bench_scenario() {
  ScenarioSpec sc = load_scenario(std::string(MOESIM_SOURCE_DIR) + "/scenarios/dsr1-nvl72-disagg.json");
  sc.workload.requests = 10000;
  sc.workload.warmup_requests = 0;
  return sc;
}

void run_once(benchmark::State& state, const ScenarioSpec& sc, const serve::StepTimerFactory& timers) {
  serve::ServingOptions o;
  o.progress = false;
  const auto t0 = std::chrono::steady_clock::now();
  serve::ServingResult r = serve::run_serving(sc, timers, o);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  long long steps = 0, grid_points = 0;
  for (const auto& p : r.pools) {
    steps += p.steps;
    grid_points += p.step_evaluations;
  }
  state.counters["wall_s"] = wall;
  state.counters["peak_rss_MB"] = peak_rss_mb();
  state.counters["requests"] = static_cast<double>(r.metrics.records().size());
  state.counters["steps"] = static_cast<double>(steps);
  state.counters["grid_points"] = static_cast<double>(grid_points);
  state.counters["events"] = static_cast<double>(r.events);
  state.counters["tok_s_per_gpu"] = obs::summarize_run(sc, r).output_tokens_per_s_per_gpu;
}

void BM_Serve10kCold(benchmark::State& state) {
  const ScenarioSpec sc = bench_scenario();
  for (auto _ : state) run_once(state, sc, serve::moe_step_timers(serve::StepFidelity::kFast));
}
BENCHMARK(BM_Serve10kCold)->Iterations(1)->Unit(benchmark::kSecond);

void BM_Serve10kWarm(benchmark::State& state) {
  const ScenarioSpec sc = bench_scenario();
  const serve::StepTimerFactory timers = serve::moe_step_timers(serve::StepFidelity::kFast);
  {
    serve::ServingOptions o;
    o.progress = false;
    (void)serve::run_serving(sc, timers, o);  // fills the grid
  }
  for (auto _ : state) run_once(state, sc, timers);
}
BENCHMARK(BM_Serve10kWarm)->Iterations(1)->Unit(benchmark::kSecond);

// Decode shapes between grid points: the timer's interpolation vs the step simulator run directly
// (same setup, same two routing draws averaged).
void BM_GridVsDirect(benchmark::State& state) {
  const ScenarioSpec sc = bench_scenario();
  const PoolSpec& pool = sc.pools[1];  // decode EP48
  const int dp = pool.plan.attention_dp();
  const serve::StepTimerFactory timers = serve::moe_step_timers(serve::StepFidelity::kFast);
  std::vector<GpuId> gpus;
  auto timer = timers(sc, pool, gpus);
  const std::pair<int, int> shapes[] = {{500, 1300}, {1000, 1500}, {2500, 1700}, {5000, 1200}, {7000, 1900}, {10000, 1600}};
  double max_err = 0, sum_err = 0;
  for (auto _ : state) {
    for (const auto& [seqs, ctx] : shapes) {
      std::vector<serve::RankBatch> ranks(static_cast<std::size_t>(dp));
      for (int i = 0; i < seqs; ++i) {
        serve::RankBatch& b = ranks[static_cast<std::size_t>(i % dp)];
        ++b.decode_seqs;
        b.decode_context += ctx;
      }
      const double interp = to_seconds(timer->time(ranks).total);
      StepSetup s;
      s.model = sc.model;
      s.precision = sc.precision;
      s.cluster = sc.cluster;
      s.plan = pool.plan;
      s.expansion.kv_dtype = sc.kv.dtype;
      s.mode = StepMode::kFast;
      s.memory = MemoryOptions{sc.kv.dtype, sc.kv.memory_fraction, sc.kv.reserve_bytes};
      s.seed = sc.workload.seed;
      s.batch = BatchShape::decode(seqs, ctx);
      StepSimulator sim(s);
      const double direct = (to_seconds(sim.run(0).step_time) + to_seconds(sim.run(1).step_time)) / 2;
      const double err = std::abs(interp / direct - 1);
      max_err = std::max(max_err, err);
      sum_err += err;
      state.counters["err_" + std::to_string(seqs) + "x" + std::to_string(ctx)] = interp / direct - 1;
    }
  }
  state.counters["max_rel_err"] = max_err;
  state.counters["mean_rel_err"] = sum_err / std::size(shapes);
}
BENCHMARK(BM_GridVsDirect)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();
