// StepSimulator: setup (expansion, topology, routing, placement, static
// costs), per-step preparation (routing draw, routed-op prices, collective
// matrices), the run, and the report.
#include "sim/step/step.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <unordered_map>

#include "sim/config/error.h"
#include "sim/cost/roofline.h"
#include "sim/hw/topology.h"
#include "sim/obs/trace.h"
#include "sim/step/pair_routes.h"
#include "sim/step/step_program.h"
#include "sim/step/step_run.h"

namespace moesim {

using step_detail::FlatOp;
using step_detail::Program;
using step_detail::RunRecord;

const char* step_mode_name(StepMode m) { return m == StepMode::kDetailed ? "detailed" : "fast"; }
const char* network_mode_name(NetworkMode m) { return m == NetworkMode::kFluid ? "fluid" : "analytic"; }
const char* overlap_name(Overlap o) { return o == Overlap::kNone ? "none" : "tbo"; }

namespace {

// One pipeline stage (the whole plan when pp = 1): its GPUs, expansion, program and run.
struct StageSim {
  StepSetup setup;  // setup.expansion.stage selects the stage
  int gpu_offset = 0;  // the stage's GPUs are cluster GPUs gpu_offset .. gpu_offset + G - 1
  const PrecisionVariant* variant = nullptr;
  std::optional<Topology> topo;
  std::vector<GpuId> gpu_ids;
  std::vector<ForwardPass> mbs;
  std::unique_ptr<RoutingModel> routing;
  std::vector<ExpertPlacement> placements;
  std::shared_ptr<const DedupRatios> dedup;  // computed at the first batch that needs them
  std::vector<std::unique_ptr<MoeRouter>> routers;
  std::vector<std::vector<MoeLayerTraffic>> traffic;  // [mb][moe layer]
  Program prog;
  std::shared_ptr<const CostModel> cost;
  std::vector<Duration> analytic;  // per comm
  std::vector<std::vector<std::pair<std::uint32_t, std::int64_t>>> link_busy;  // per comm, with two micro-batches
  std::optional<step_detail::PairRoutes> routes;
  RunRecord rec;
  PlannedOp scratch;
  bool needs_analytic = false;

  void setup_all();    // setup_static() + setup_batch()
  void setup_static();  // checks, topology, cost model, route cache: what does not depend on the batch
  void setup_batch();   // expansion, routers, program, static op costs of setup.batch / setup.overlap (and, the
                        // first time, the batch-independent routing model, placements and dedup ratios)
  void prepare(std::uint64_t step);
  void run(std::uint64_t step);
  StepResult report() const;
};

// Sequences dealt alternately to two micro-batches.
std::vector<BatchShape> split_batch(const BatchShape& b, Overlap o) {
  if (o == Overlap::kNone) return {b};
  if (b.seqs.size() < 2)
    throw ConfigError("--overlap", "", "tbo (two-micro-batch overlap) needs at least 2 sequences in the batch");
  BatchShape a, c;
  a.phase = c.phase = b.phase;
  for (std::size_t i = 0; i < b.seqs.size(); ++i) (i % 2 == 0 ? a : c).seqs.push_back(b.seqs[i]);
  return {a, c};
}

}  // namespace

void StageSim::setup_all() {
  setup_static();
  setup_batch();
}

void StageSim::setup_static() {
  const ModelSpec& m = setup.model;
  const std::string prec = setup.precision.empty() ? m.native_precision : setup.precision;
  if (!m.precisions.count(prec)) {
    std::string names;
    for (const auto& [n, v] : m.precisions) names += (names.empty() ? "" : ", ") + n;
    throw ConfigError("--precision", "", fmt::format("{} has no precision variant \"{}\": expected one of {}", m.id, prec, names));
  }
  variant = &m.precisions.at(prec);
  setup.precision = prec;
  check_plan(setup.plan, m, "--plan", "");
  const int G = setup.plan.gpus();
  if (setup.cluster.total_gpus() < G)
    throw ConfigError("--domains", "",
                      fmt::format("plan {} needs {} GPUs but {} x {} has {}", setup.plan.to_string(), G,
                                  setup.cluster.domains, setup.cluster.system.id, setup.cluster.total_gpus()));
  const GpuSpec& gpu = setup.cluster.system.gpu;
  const MemoryPlan mem = plan_memory(m, *variant, gpu, setup.plan, setup.memory);
  if (!mem.fits)
    throw ConfigError("--plan", "",
                      fmt::format("{} ({}) does not fit on {} under plan {}: {:.1f} GB of weights per GPU + {:.1f} GiB "
                                  "reserve exceed the {:.1f} GB usable",
                                  m.id, prec, gpu.id, setup.plan.to_string(), mem.weight_bytes_per_gpu / 1e9,
                                  setup.memory.reserve_bytes / 1073741824.0, gpu.hbm_usable.value() / 1e9));
  topo.emplace(build_topology(setup.cluster));
  gpu_offset = setup.expansion.stage * setup.plan.gpus_per_stage();
  for (int g = 0; g < setup.plan.gpus_per_stage(); ++g) gpu_ids.emplace_back(static_cast<std::uint32_t>(gpu_offset + g));
  cost = setup.cost ? setup.cost : std::make_shared<RooflineCostModel>();

  needs_analytic = setup.mode == StepMode::kFast || setup.network == NetworkMode::kAnalytic;
  if (needs_analytic) routes.emplace(*topo, gpu_ids);
}

void StageSim::setup_batch() {
  const ModelSpec& m = setup.model;
  const GpuSpec& gpu = setup.cluster.system.gpu;
  const std::vector<BatchShape> batches = split_batch(setup.batch, setup.overlap);  // throws before any change
  mbs.clear();
  routers.clear();
  traffic.clear();
  for (const BatchShape& b : batches)
    mbs.push_back(expand_forward(m, *variant, gpu, setup.plan, b, setup.expansion));
  if (!routing) {
    // The routing model and the placements depend on the model's layers and the plan, not on the batch: made
    // once, from the first batch's expansion.
    std::vector<int> moe_layers;
    for (std::size_t l = 0; l < mbs[0].layer_type.size(); ++l) {
      if (mbs[0].moe_index[l] >= 0) moe_layers.push_back(mbs[0].first_layer + static_cast<int>(l));
    }
    routing = std::make_unique<RoutingModel>(m, setup.routing, setup.seed, moe_layers);
    placements = make_placements(mbs[0], *routing, setup.eplb);
  }
  traffic.resize(mbs.size());
  for (const ForwardPass& f : mbs) {
    if (!dedup && MoeRouter::needs_dedup_ratios(f, *routing, setup.traffic))
      dedup = std::make_shared<const DedupRatios>(dedup_ratios(*routing, placements));
    routers.push_back(std::make_unique<MoeRouter>(f, *routing, placements, setup.traffic, dedup));
    traffic[routers.size() - 1].resize(static_cast<std::size_t>(f.moe_layers));
  }

  std::vector<const ForwardPass*> ptrs;
  for (const ForwardPass& f : mbs) ptrs.push_back(&f);
  prog = step_detail::build_program(ptrs);

  // Static op costs, once per distinct PlannedOp (layers of one type share theirs).
  std::unordered_map<const PlannedOp*, OpCost> cache;
  for (auto& s : prog.streams) {
    for (FlatOp& o : s.ops) {
      if (o.moe >= 0) continue;
      auto it = cache.find(o.op);
      if (it == cache.end()) it = cache.emplace(o.op, cost->cost(o.op->op, gpu, setup.cost_options)).first;
      o.cost = it->second.time;
      o.bound = it->second.bound;
      o.source = it->second.source;
    }
  }
  analytic.assign(prog.comms.size(), Duration{0});
  link_busy.assign(needs_analytic && mbs.size() > 1 ? prog.comms.size() : 0, {});
  if (needs_analytic) {
    for (std::size_t c = 0; c < prog.comms.size(); ++c) {
      if (!prog.comms[c].static_matrix.empty())
        analytic[c] = routes->time(prog.comms[c].static_matrix, link_busy.empty() ? nullptr : &link_busy[c]);
    }
  }
}

void StageSim::prepare(std::uint64_t step) {
  for (std::size_t mb = 0; mb < mbs.size(); ++mb) {
    for (int l = 0; l < mbs[mb].moe_layers; ++l)
      routers[mb]->route(l, step * mbs.size() + mb, traffic[mb][static_cast<std::size_t>(l)]);
  }
  const GpuSpec& gpu = setup.cluster.system.gpu;
  const auto G = static_cast<std::size_t>(prog.gpus);
  for (std::size_t g = 0; g < G; ++g) {
    for (FlatOp& o : prog.streams[g].ops) {
      if (o.moe < 0) continue;
      const MoeLayerTraffic& t = traffic[o.mb][static_cast<std::size_t>(o.moe)];
      const PlannedOp& src = *o.op;
      scratch.op.kind = src.op.kind;
      if (scratch.op.name != src.op.name) scratch.op.name = src.op.name;
      scratch.op.precision = src.op.precision;
      scratch.op.kernels = src.op.kernels;
      scratch.op.shape.n = src.op.shape.n;
      scratch.op.shape.k = src.op.shape.k;
      scratch.weight_bpp = src.weight_bpp;
      scratch.in_bytes = src.in_bytes;
      scratch.bytes_per_row = src.bytes_per_row;
      scratch.routed = true;
      if (src.op.kind == OpKind::kGroupedGemm) {
        fill_grouped_gemm(scratch, t.gpu_slot_tokens[g]);
      } else {
        scratch.op.flops = 0;
        fill_routed_activation(scratch, t.gpu_rows[g]);
      }
      const OpCost c = cost->cost(scratch.op, gpu, setup.cost_options);
      o.cost = c.time;
      o.bound = c.bound;
      o.source = c.source;
    }
  }
  for (std::size_t c = 0; c < prog.comms.size(); ++c) {
    auto& ci = prog.comms[c];
    if (!ci.static_matrix.empty()) continue;
    const MoeLayerTraffic& t = traffic[ci.mb][static_cast<std::size_t>(ci.moe)];
    ci.matrix = ci.decl.kind == CommKind::kDispatch ? &t.dispatch : &t.combine;
    if (needs_analytic) analytic[c] = routes->time(*ci.matrix, link_busy.empty() ? nullptr : &link_busy[c]);
  }
}

StepResult StageSim::report() const {
  StepResult r;
  const auto G = static_cast<std::size_t>(prog.gpus);
  const auto T = static_cast<std::size_t>(prog.types);
  r.mode = setup.mode;
  r.network = setup.network;
  r.tokens = setup.batch.tokens();
  r.sequences = static_cast<std::int64_t>(setup.batch.seqs.size());
  r.events = rec.events;
  r.per_token_routing = routers.empty() ? false : routers[0]->per_token();
  std::int64_t end = 0;
  for (std::size_t g = 0; g < G; ++g) {
    if (rec.finish[g] > end) {
      end = rec.finish[g];
      r.critical_gpu = static_cast<int>(g);
    }
  }
  r.step_time = Duration{end};
  r.tokens_per_second = end > 0 ? static_cast<double>(r.tokens) / (static_cast<double>(end) * 1e-12) : 0;

  // Busy time per GPU, the critical GPU's split, per-op statistics.
  const ForwardPass& f0 = mbs[0];
  std::vector<std::size_t> op_offset(T + 2, 0);
  for (std::size_t t = 0; t < T; ++t) op_offset[t + 1] = op_offset[t] + f0.programs[t][0].ops.size();
  op_offset[T + 1] = op_offset[T] + f0.head[0].size() + f0.tail[0].size();
  const std::size_t nops = op_offset[T + 1];
  std::vector<double> op_sum(nops, 0), op_max(nops, 0), per_gpu(nops);
  std::vector<std::array<int, 4>> bound_count(nops, std::array<int, 4>{});
  std::vector<const PlannedOp*> op_ref(nops, nullptr);
  std::vector<CostSource> source_of(nops, CostSource::kRoofline);
  std::vector<int> layers_of(T + 1, 0);
  for (const int t : f0.layer_type) layers_of[static_cast<std::size_t>(t)] += 1;
  layers_of[T] = 1;
  std::vector<double> busy(G, 0);
  std::vector<double> split((T + 1) * kOpGroupCount, 0);
  for (std::size_t g = 0; g < G; ++g) {
    std::fill(per_gpu.begin(), per_gpu.end(), 0.0);
    for (const FlatOp& o : prog.streams[g].ops) {
      const double s = to_seconds(o.cost);
      busy[g] += s;
      const std::size_t k = op_offset[static_cast<std::size_t>(o.type)] + o.op_index;
      per_gpu[k] += s;
      bound_count[k][static_cast<std::size_t>(o.bound)] += 1;
      if (!op_ref[k] && g == 0) {
        op_ref[k] = o.op;
        source_of[k] = o.source;
      }
      if (g == static_cast<std::size_t>(r.critical_gpu))
        split[static_cast<std::size_t>(o.type) * kOpGroupCount + static_cast<std::size_t>(o.op->group)] += s;
    }
    for (std::size_t k = 0; k < nops; ++k) {
      op_sum[k] += per_gpu[k];
      op_max[k] = std::max(op_max[k], per_gpu[k]);
    }
  }
  for (std::size_t t = 0; t <= T; ++t) {
    for (int gr = 0; gr < kOpGroupCount; ++gr)
      split[t * kOpGroupCount + static_cast<std::size_t>(gr)] +=
          rec.stall[(static_cast<std::size_t>(r.critical_gpu) * (T + 1) + t) * kOpGroupCount + static_cast<std::size_t>(gr)];
  }
  double busy_sum = 0;
  for (std::size_t g = 0; g < G; ++g) {
    busy_sum += busy[g];
    if (busy[g] > busy[static_cast<std::size_t>(r.slowest_gpu)]) r.slowest_gpu = static_cast<int>(g);
  }
  r.slowest_gpu_busy_s = busy[static_cast<std::size_t>(r.slowest_gpu)];
  r.mean_gpu_busy_s = busy_sum / static_cast<double>(G);

  for (std::size_t t = 0; t < T; ++t) {
    LayerTypeReport lt;
    lt.name = f0.types[t].name;
    lt.layers = layers_of[t];
    for (int gr = 0; gr < kOpGroupCount; ++gr)
      lt.seconds_per_layer[static_cast<std::size_t>(gr)] = split[t * kOpGroupCount + static_cast<std::size_t>(gr)] / lt.layers;
    for (std::size_t k = op_offset[t]; k < op_offset[t + 1]; ++k) {
      if (!op_ref[k]) continue;
      LayerTypeReport::OpRow row;
      row.name = op_ref[k]->op.name;
      row.group = op_ref[k]->group;
      row.mean_s = op_sum[k] / static_cast<double>(G) / lt.layers;
      row.max_s = op_max[k] / lt.layers;
      row.bound = static_cast<Bound>(std::max_element(bound_count[k].begin(), bound_count[k].end()) - bound_count[k].begin());
      row.source = source_of[k];
      lt.ops.push_back(row);
    }
    r.layer_types.push_back(std::move(lt));
  }
  for (int gr = 0; gr < kOpGroupCount; ++gr) r.head_tail_seconds[static_cast<std::size_t>(gr)] = split[T * kOpGroupCount + static_cast<std::size_t>(gr)];

  // Expert load.
  std::vector<double> rows(G, 0);
  double distinct = 0, ratio = 0;
  int draws = 0;
  for (const auto& per_mb : traffic) {
    for (const MoeLayerTraffic& t : per_mb) {
      double layer_max = 0, layer_sum = 0;
      for (std::size_t g = 0; g < G && g < t.gpu_rows.size(); ++g) {
        const auto x = static_cast<double>(t.gpu_rows[g]);
        rows[g] += x;
        layer_max = std::max(layer_max, x);
        layer_sum += x;
      }
      ratio += layer_sum > 0 ? layer_max / (layer_sum / static_cast<double>(G)) : 0;
      distinct += t.distinct_experts();
      ++draws;
    }
  }
  if (draws > 0) {
    double sum = 0;
    for (const double x : rows) {
      sum += x;
      r.max_expert_rows = std::max(r.max_expert_rows, x);
    }
    r.mean_expert_rows = sum / static_cast<double>(G);
    r.expert_load_max_over_mean = ratio / draws;
    r.slowest_gpu_expert_rows = rows[static_cast<std::size_t>(r.slowest_gpu)];
    r.mean_distinct_experts = distinct / draws;
  }

  // Collectives by kind. The stage's GPUs are cluster GPUs gpu_offset .. gpu_offset + G - 1, domain after domain.
  // Each GPU's scale-up domain is a contiguous range of the stage's GPUs: [dom_lo[i], dom_hi[i]).
  const auto domain_gpus = static_cast<std::size_t>(std::max(1, setup.cluster.system.scale_up.domain_gpus));
  const auto off = static_cast<std::size_t>(gpu_offset);
  std::vector<std::size_t> dom_lo(G), dom_hi(G);
  for (std::size_t i = 0; i < G; ++i) {
    const std::size_t d0 = (off + i) / domain_gpus * domain_gpus;
    dom_lo[i] = std::max(d0, off) - off;
    dom_hi[i] = std::min(d0 + domain_gpus, off + G) - off;
  }
  std::map<int, CommReport> by_kind;
  for (std::size_t c = 0; c < prog.comms.size(); ++c) {
    const auto& ci = prog.comms[c];
    CommReport& cr = by_kind[static_cast<int>(ci.decl.kind)];
    cr.kind = ci.decl.kind;
    cr.count += 1;
    const auto& m = *ci.matrix;
    for (std::size_t i = 0; i < G; ++i) {
      const double* row = &m[i * G];
      double all = 0, same = 0;
      for (std::size_t j = 0; j < G; ++j) all += row[j];
      for (std::size_t j = dom_lo[i]; j < dom_hi[i]; ++j) same += row[j];
      cr.bytes += all - row[i];         // the diagonal stays on the GPU
      cr.scale_out_bytes += all - same;  // to GPUs outside i's domain
    }
    if (rec.comm_first_send[c] >= 0)
      cr.mean_span_s += static_cast<double>(rec.comm_last_arrival[c] - rec.comm_first_send[c]) * 1e-12;
  }
  for (auto& [k, cr] : by_kind) {
    cr.mean_span_s /= cr.count;
    r.comms.push_back(cr);
  }
  return r;
}

void StageSim::run(std::uint64_t step) {
  prepare(step);
  step_detail::RunInputs in;
  in.prog = &prog;
  in.topo = &*topo;
  in.gpus = gpu_ids;
  in.network = setup.mode == StepMode::kFast ? NetworkMode::kAnalytic : setup.network;
  in.analytic = analytic;
  in.link_busy = link_busy;
  in.links = topo->link_count();
  in.trace = setup.record_trace;
  rec.reset(prog.gpus, prog.types, prog.comms.size(), in.trace);
  if (setup.mode == StepMode::kFast) {
    step_detail::run_fast(in, rec);
  } else {
    step_detail::run_detailed(in, rec);
  }
}

namespace {

// Trace slices of one stage's last run, its GPUs numbered from gpu_offset, its times shifted by `start`.
void stage_trace(const StageSim& s, std::int64_t start, TraceWriter& w) {
  const int mbs = static_cast<int>(s.mbs.size());
  for (int l = 0; l < s.prog.gpus; ++l) {
    const int g = s.gpu_offset + l;
    w.name_process(g, s.setup.plan.pp > 1 ? fmt::format("GPU {} (stage {})", g, s.setup.expansion.stage) : fmt::format("GPU {}", g));
    w.name_thread(g, 0, "compute stream");
    for (int mb = 0; mb < mbs; ++mb) {
      const std::string sfx = mbs > 1 ? fmt::format(" (micro-batch {})", mb == 0 ? 'A' : 'B') : "";
      w.name_thread(g, 1 + 2 * mb, "link out (tx)" + sfx);
      w.name_thread(g, 2 + 2 * mb, "link in (rx)" + sfx);
    }
  }
  const int layer0 = s.mbs[0].first_layer;
  for (const auto& sp : s.rec.op_spans) {
    const FlatOp& o = s.prog.streams[sp.gpu].ops[sp.op];
    std::vector<std::pair<std::string, std::string>> args = {
        {"layer", o.layer >= 0 ? std::to_string(layer0 + o.layer) : "-"},
        {"bound", bound_name(o.bound)},
        {"kind", op_kind_name(o.op->op.kind)},
        {"priced_by", cost_source_name(o.source)}};
    if (mbs > 1) args.emplace_back("micro_batch", o.mb == 0 ? "A" : "B");
    w.slice(s.gpu_offset + static_cast<int>(sp.gpu), 0, o.op->op.name, op_group_name(o.op->group),
            Time{Duration{start + sp.start}}, Duration{sp.dur}, std::move(args));
  }
  for (const auto& ls : s.rec.link_spans) {
    const auto& ci = s.prog.comms[ls.comm];
    const int tid = (ls.tx ? 1 : 2) + 2 * ci.mb;
    w.slice(s.gpu_offset + static_cast<int>(ls.gpu), tid, fmt::format("{} L{}", comm_kind_name(ci.decl.kind), layer0 + ci.layer),
            "network", Time{Duration{start + ls.start}}, Duration{ls.end - ls.start},
            {{"layer", std::to_string(layer0 + ci.layer)}});
  }
}

void add_comm(StepResult& r, const CommReport& c) {
  auto it = std::find_if(r.comms.begin(), r.comms.end(), [&](const CommReport& x) { return x.kind == c.kind; });
  if (it == r.comms.end()) {
    r.comms.push_back(c);
    return;
  }
  it->mean_span_s = (it->mean_span_s * it->count + c.mean_span_s * c.count) / (it->count + c.count);
  it->count += c.count;
  it->bytes += c.bytes;
  it->scale_out_bytes += c.scale_out_bytes;
}

// Folds the report `s` of pipeline stage number `stages_before` (GPUs from gpu_offset, `moe_s` MoE layers) into
// the report `r` of the stages before it (`moe_r` MoE layers). Stages have equal GPU counts.
void merge_stage(StepResult& r, const StepResult& s, int gpu_offset, int stages_before, int moe_r, int moe_s) {
  const double n = static_cast<double>(stages_before);
  if (s.slowest_gpu_busy_s > r.slowest_gpu_busy_s) {
    r.slowest_gpu = gpu_offset + s.slowest_gpu;
    r.slowest_gpu_busy_s = s.slowest_gpu_busy_s;
    r.slowest_gpu_expert_rows = s.slowest_gpu_expert_rows;
  }
  r.mean_gpu_busy_s = (r.mean_gpu_busy_s * n + s.mean_gpu_busy_s) / (n + 1);
  r.max_expert_rows = std::max(r.max_expert_rows, s.max_expert_rows);
  r.mean_expert_rows = (r.mean_expert_rows * n + s.mean_expert_rows) / (n + 1);
  if (moe_r + moe_s > 0) {  // per-MoE-layer averages
    r.expert_load_max_over_mean = (r.expert_load_max_over_mean * moe_r + s.expert_load_max_over_mean * moe_s) / (moe_r + moe_s);
    r.mean_distinct_experts = (r.mean_distinct_experts * moe_r + s.mean_distinct_experts * moe_s) / (moe_r + moe_s);
  }
  for (std::size_t g = 0; g < r.head_tail_seconds.size(); ++g) r.head_tail_seconds[g] += s.head_tail_seconds[g];
  for (const LayerTypeReport& lt : s.layer_types) {
    auto it = std::find_if(r.layer_types.begin(), r.layer_types.end(), [&](const LayerTypeReport& x) { return x.name == lt.name; });
    if (it == r.layer_types.end()) {
      r.layer_types.push_back(lt);
      continue;
    }
    const double wa = it->layers, wb = lt.layers, w = wa + wb;
    for (std::size_t g = 0; g < it->seconds_per_layer.size(); ++g)
      it->seconds_per_layer[g] = (it->seconds_per_layer[g] * wa + lt.seconds_per_layer[g] * wb) / w;
    for (std::size_t k = 0; k < it->ops.size() && k < lt.ops.size(); ++k) {
      it->ops[k].mean_s = (it->ops[k].mean_s * wa + lt.ops[k].mean_s * wb) / w;
      it->ops[k].max_s = std::max(it->ops[k].max_s, lt.ops[k].max_s);
    }
    it->layers += lt.layers;
  }
  for (const CommReport& c : s.comms) add_comm(r, c);
  r.events += s.events;
}

}  // namespace

struct StepSimulator::Impl {
  std::vector<std::unique_ptr<StageSim>> stages;
  // Between stage s and s + 1 (pp > 1): the activations each GPU sends to its peer of the next stage.
  std::vector<std::optional<step_detail::PairRoutes>> boundary_routes;
  std::vector<std::vector<double>> boundary_bytes;  // (2G)², rows/columns: stage s GPUs, then stage s + 1 GPUs
  std::vector<Duration> boundary_time;
  std::vector<CommReport> boundary;                 // the send as reported: bytes, scale-out bytes, time
  std::vector<std::int64_t> stage_start;  // of the last run, ps

  void setup_boundaries();
};

// Each GPU of a stage holds its attention group's tokens after the last layer (the all-gather of the EP mode
// restores them on every TP rank) and sends their hidden state and residual (BF16, 2 x hidden x 2 bytes per
// token) to the GPU of the same rank in the next stage, as vLLM and SGLang do; the transfers of a boundary run
// concurrently, timed by the analytic network rule (bottleneck link + route latency).
void StepSimulator::Impl::setup_boundaries() {
  const StageSim& s0 = *stages[0];
  const auto G = static_cast<std::size_t>(s0.setup.plan.gpus_per_stage());
  const double per_token = 2.0 * static_cast<double>(s0.setup.model.hidden) * 2;
  const std::size_t n = stages.size() - 1;
  boundary_routes.resize(n);
  boundary_bytes.resize(n);
  boundary_time.resize(n);
  boundary.resize(n);
  const auto domain_gpus = static_cast<std::size_t>(std::max(1, s0.setup.cluster.system.scale_up.domain_gpus));
  for (std::size_t b = 0; b < n; ++b) {
    if (!boundary_routes[b]) {
      std::vector<GpuId> ids = stages[b]->gpu_ids;
      ids.insert(ids.end(), stages[b + 1]->gpu_ids.begin(), stages[b + 1]->gpu_ids.end());
      boundary_routes[b].emplace(*s0.topo, ids);
    }
    std::vector<double>& m = boundary_bytes[b];
    m.assign(4 * G * G, 0.0);
    // Summed over the micro-batches (two with TBO): all of the stage's tokens move.
    for (const ForwardPass& f : stages[b]->mbs) {
      for (std::size_t g = 0; g < G; ++g)
        m[g * 2 * G + G + g] += static_cast<double>(f.tokens.group_tokens[g]) * per_token;
    }
    CommReport& c = boundary[b];
    c = CommReport{};
    c.kind = CommKind::kPipelineSend;
    c.count = 1;
    boundary_time[b] = boundary_routes[b]->time(m);
    c.mean_span_s = to_seconds(boundary_time[b]);
    for (std::size_t g = 0; g < G; ++g) {
      const double bytes = m[g * 2 * G + G + g];
      c.bytes += bytes;
      const auto src = static_cast<std::size_t>(stages[b]->gpu_offset) + g;
      if (src / domain_gpus != (src + G) / domain_gpus) c.scale_out_bytes += bytes;
    }
  }
}

StepSimulator::StepSimulator(StepSetup setup) : impl_(std::make_unique<Impl>()) {
  const int pp = setup.plan.pp;
  for (int s = 0; s < pp; ++s) {
    auto st = std::make_unique<StageSim>();
    st->setup = setup;
    st->setup.expansion.stage = s;
    st->setup_all();
    impl_->stages.push_back(std::move(st));
  }
  if (pp > 1) impl_->setup_boundaries();
}

StepSimulator::~StepSimulator() = default;

void StepSimulator::rebatch(const BatchShape& batch, Overlap overlap) {
  for (auto& st : impl_->stages) {
    st->setup.batch = batch;
    st->setup.overlap = overlap;
    st->setup_batch();
  }
  if (impl_->stages.size() > 1) impl_->setup_boundaries();
}

const StepSetup& StepSimulator::setup() const { return impl_->stages[0]->setup; }
int StepSimulator::stages() const { return static_cast<int>(impl_->stages.size()); }
const ForwardPass& StepSimulator::forward_pass(int mb, int stage) const {
  return impl_->stages.at(static_cast<std::size_t>(stage))->mbs.at(static_cast<std::size_t>(mb));
}

// Pipeline stages run one after another for the batch (the step's latency): stage s + 1 starts when the
// activations of stage s have arrived. Steady-state throughput with one such batch in flight per stage
// (the batch sizes of a pipelined server) is tokens / the slowest stage: StepResult::pipelined_tokens_per_second.
StepResult StepSimulator::run(std::uint64_t step) {
  Impl& p = *impl_;
  if (p.stages.size() == 1) {
    p.stages[0]->run(step);
    return p.stages[0]->report();
  }
  StepResult r;
  std::int64_t t = 0;
  Duration slowest{};
  int moe_before = 0;
  p.stage_start.assign(p.stages.size(), 0);
  for (std::size_t s = 0; s < p.stages.size(); ++s) {
    StageSim& st = *p.stages[s];
    st.run(step);
    StepResult sr = st.report();
    p.stage_start[s] = t;
    PipelineStageReport ps;
    ps.stage_time = sr.step_time;
    slowest = std::max(slowest, sr.step_time);
    t += sr.step_time.count();
    if (s == 0) {
      r = std::move(sr);
    } else {
      r.critical_gpu = st.gpu_offset + sr.critical_gpu;
      merge_stage(r, sr, st.gpu_offset, static_cast<int>(s), moe_before, st.mbs[0].moe_layers);
    }
    moe_before += st.mbs[0].moe_layers;
    if (s + 1 < p.stages.size()) {
      const CommReport& c = p.boundary[s];
      ps.send_time = p.boundary_time[s];
      ps.send_bytes = c.bytes;
      add_comm(r, c);
      t += ps.send_time.count();
    }
    r.pipeline.push_back(ps);
  }
  r.step_time = Duration{t};
  r.tokens_per_second = t > 0 ? static_cast<double>(r.tokens) / (static_cast<double>(t) * 1e-12) : 0;
  r.pipelined_tokens_per_second = slowest.count() > 0 ? static_cast<double>(r.tokens) / to_seconds(slowest) : 0;
  return r;
}

std::string StepSimulator::trace_json() const {
  const Impl& p = *impl_;
  TraceWriter w;
  for (std::size_t s = 0; s < p.stages.size(); ++s)
    stage_trace(*p.stages[s], p.stages.size() > 1 ? p.stage_start[s] : 0, w);
  return w.json();
}

StepResult simulate_step(const StepSetup& setup, std::uint64_t step) {
  StepSimulator sim(setup);
  return sim.run(step);
}

}  // namespace moesim
