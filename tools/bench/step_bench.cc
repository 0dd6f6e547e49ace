// Wall time of one simulated DeepSeek-R1 decode step with EP72 on one GB200
// NVL72 (61 layers, 72 GPUs), per mode, at several batch sizes per GPU.
//   ./build/ci/tools/bench/step_bench --benchmark_min_time=1s
// Arg 0: sequences per GPU (context 2000 each). Counters: step_ms (the
// simulated step), events (engine events per step).
#include <benchmark/benchmark.h>

#include "sim/config/hardware_load.h"
#include "sim/config/model_load.h"
#include "sim/model/routing.h"
#include "sim/step/step.h"

namespace moesim {
namespace {

StepSetup ep72(std::int64_t per_gpu, StepMode mode, NetworkMode net, Overlap overlap = Overlap::kNone) {
  StepSetup s;
  s.model = load_model(std::string(MOESIM_SOURCE_DIR) + "/models/deepseek-r1.json");
  s.cluster = ClusterSpec{load_system(std::string(MOESIM_SOURCE_DIR) + "/hardware/systems/gb200-nvl72.json"), 1};
  s.plan = parse_plan("tp=1,ep=72,redundant=32", "bench", "");
  s.eplb = true;
  s.batch = BatchShape::decode(72 * per_gpu, 2000);
  s.mode = mode;
  s.network = net;
  s.overlap = overlap;
  s.routing = parse_routing("zipf:1.2", "bench");
  return s;
}

void run(benchmark::State& state, StepMode mode, NetworkMode net, Overlap overlap = Overlap::kNone) {
  StepSimulator sim(ep72(state.range(0), mode, net, overlap));
  std::uint64_t step = 0;
  StepResult r;
  for (auto _ : state) {
    r = sim.run(step++);
    benchmark::DoNotOptimize(r.step_time);
  }
  state.counters["step_ms"] = to_ms(r.step_time);
  state.counters["events"] = static_cast<double>(r.events);
  state.counters["per_token_routing"] = r.per_token_routing ? 1 : 0;
}

void BM_StepDetailedAnalytic(benchmark::State& s) { run(s, StepMode::kDetailed, NetworkMode::kAnalytic); }
void BM_StepDetailedAnalyticTbo(benchmark::State& s) { run(s, StepMode::kDetailed, NetworkMode::kAnalytic, Overlap::kTbo); }
void BM_StepFast(benchmark::State& s) { run(s, StepMode::kFast, NetworkMode::kAnalytic); }
void BM_StepDetailedFluid(benchmark::State& s) { run(s, StepMode::kDetailed, NetworkMode::kFluid); }

void BM_StepSetup(benchmark::State& state) {
  const StepSetup s = ep72(state.range(0), StepMode::kDetailed, NetworkMode::kAnalytic);
  for (auto _ : state) {
    StepSimulator sim(s);
    benchmark::DoNotOptimize(&sim);
  }
}
void BM_StepSetupUniform(benchmark::State& state) {
  StepSetup s = ep72(state.range(0), StepMode::kDetailed, NetworkMode::kAnalytic);
  s.routing = parse_routing("uniform", "bench");
  for (auto _ : state) {
    StepSimulator sim(s);
    benchmark::DoNotOptimize(&sim);
  }
}
// Moving one simulator to another batch (what the serving step timer does per grid point), 32 <-> 128 per GPU.
void BM_StepRebatch(benchmark::State& state) {
  StepSimulator sim(ep72(32, StepMode::kFast, NetworkMode::kAnalytic));
  bool big = false;
  for (auto _ : state) {
    big = !big;
    sim.rebatch(BatchShape::decode(72 * (big ? 128 : 32), 2000), Overlap::kNone);
  }
}

// Agreement of the fast path with the detailed fluid engine: DeepSeek-R1 EP16 over two HGX H200 nodes
// (InfiniBand between them), 64 decode sequences per GPU; counter fast_over_fluid = step-time ratio.
void BM_FastOverFluid(benchmark::State& state) {
  StepSetup s;
  s.model = load_model(std::string(MOESIM_SOURCE_DIR) + "/models/deepseek-r1.json");
  s.cluster = ClusterSpec{load_system(std::string(MOESIM_SOURCE_DIR) + "/hardware/systems/hgx-h200.json"), 2};
  s.plan = parse_plan("tp=1,ep=16", "bench", "");
  s.batch = BatchShape::decode(16 * 64, 2000);
  double ratio = 0;
  for (auto _ : state) {
    s.mode = StepMode::kFast;
    const StepResult f = simulate_step(s);
    s.mode = StepMode::kDetailed;
    s.network = NetworkMode::kFluid;
    const StepResult d = simulate_step(s);
    ratio = to_seconds(f.step_time) / to_seconds(d.step_time);
  }
  state.counters["fast_over_fluid"] = ratio;
}

// Per-token routing draws alone: 576 tokens (8 per GPU at EP72) x 58 MoE layers of DeepSeek-R1, Zipf 1.2 or
// uniform; counter per_pick = CPU time per selected expert.
void draw_tokens(benchmark::State& state, const char* spec) {
  const ModelSpec m = load_model(std::string(MOESIM_SOURCE_DIR) + "/models/deepseek-r1.json");
  std::vector<int> ids;
  for (int l = 0; l < m.layers; ++l) {
    if (m.is_moe_layer(l)) ids.push_back(l);
  }
  const RoutingModel r(m, parse_routing(spec, "bench"), 0, ids);
  constexpr std::int64_t kTokens = 576;
  std::vector<std::uint16_t> out(static_cast<std::size_t>(kTokens * r.top_k()));
  std::uint64_t step = 0;
  for (auto _ : state) {
    for (int l = 0; l < r.layers(); ++l) {
      Rng rng = r.stream(l, step);
      r.draw_tokens(l, rng, kTokens, out);
    }
    ++step;
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["per_pick"] = benchmark::Counter(static_cast<double>(kTokens * r.top_k() * r.layers()),
                                                  benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
void BM_DrawTokensZipf(benchmark::State& s) { draw_tokens(s, "zipf:1.2"); }
void BM_DrawTokensUniform(benchmark::State& s) { draw_tokens(s, "uniform"); }

BENCHMARK(BM_FastOverFluid)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StepDetailedAnalytic)->Arg(8)->Arg(32)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StepDetailedAnalyticTbo)->Arg(32)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StepFast)->Arg(8)->Arg(32)->Arg(128)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StepDetailedFluid)->Arg(8)->Arg(32)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StepSetup)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StepSetupUniform)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_StepRebatch)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DrawTokensZipf)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DrawTokensUniform)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace moesim

BENCHMARK_MAIN();
