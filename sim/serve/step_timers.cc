#include "sim/serve/step_timers.h"

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>

#include "sim/serve/step_grid.h"
#include "sim/step/step.h"

namespace moesim::serve {

namespace {

class FixedStepTimer final : public StepTimer {
 public:
  explicit FixedStepTimer(Duration d) : d_(d) {}
  StepTiming time(std::span<const RankBatch>) override {
    StepTiming t;
    t.total = d_;
    t.other = d_;
    return t;
  }

 private:
  Duration d_;
};

// Step times as doubles (seconds) for interpolation.
struct Parts {
  double total = 0, attention = 0, experts = 0, communication = 0, other = 0;
  double network_bytes = 0, scale_out_bytes = 0;
  Parts operator*(double w) const {
    return {total * w, attention * w, experts * w, communication * w, other * w, network_bytes * w,
            scale_out_bytes * w};
  }
  Parts operator+(const Parts& o) const {
    return {total + o.total,         attention + o.attention, experts + o.experts,
            communication + o.communication, other + o.other, network_bytes + o.network_bytes,
            scale_out_bytes + o.scale_out_bytes};
  }
  Parts operator-(const Parts& o) const { return *this + o * -1.0; }
};

// The MoE step simulator at grid points, interpolated in between (step_grid.h).
class MoeStepTimer final : public StepTimer {
 public:
  MoeStepTimer(const ScenarioSpec& sc, const PoolSpec& pool, StepFidelity fidelity, CostModelKind cost)
      : sc_(sc), pool_(pool) {
    if (cost == CostModelKind::kCalibrated) base_.cost = make_cost_model(sc.cluster.system.gpu, cost);
    base_.model = sc.model;
    base_.precision = sc.precision;
    base_.cluster = sc.cluster;
    base_.plan = pool.plan;
    base_.expansion.kv_dtype = sc.kv.dtype;
    base_.expansion.dispatcher = sc.staged_dispatch ? Dispatcher::kStaged : Dispatcher::kFused;
    base_.routing = parse_routing(sc.routing, sc.file);
    base_.eplb = sc.eplb;
    base_.mode = fidelity == StepFidelity::kFast ? StepMode::kFast : StepMode::kDetailed;
    base_.network = NetworkMode::kFluid;
    base_.memory = MemoryOptions{sc.kv.dtype, sc.kv.memory_fraction, sc.kv.reserve_bytes};
    base_.seed = sc.workload.seed;
    dp_ = pool.plan.attention_dp();
    tokens_per_decode_ = 1 + sc.mtp.depth;
    const double max_seqs = static_cast<double>(pool.limits.max_batch_size) * dp_;
    seq_grid_ = count_grid(max_seqs);
    tok_grid_ = count_grid(static_cast<double>(pool.limits.max_tokens_per_step) * dp_);
    double longest = 0;
    if (sc.workload.arrival == ArrivalKind::kTrace) {
      for (const TraceEntry& e : sc.workload.trace) longest = std::max<double>(longest, e.input + e.output);
    } else {
      longest = sc.workload.input.max + sc.workload.output.max;
    }
    ctx_grid_ = context_grid(longest);
    // Prefill grid points are batches of equal chunks of this length (the attention of a
    // chunk grows with its square, so the chunk length is fixed by the workload, not the grid).
    double mean_input = sc.workload.input.mean;
    if (sc.workload.arrival == ArrivalKind::kTrace) {
      double sum = 0;
      for (const TraceEntry& e : sc.workload.trace) sum += e.input;
      mean_input = sum / static_cast<double>(sc.workload.trace.size());
    }
    chunk_len_ = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::min<double>(pool.limits.chunk_size, mean_input)));
  }

  [[nodiscard]] long long evaluations() const override { return static_cast<long long>(memo_.size()); }

  StepTiming time(std::span<const RankBatch> ranks) override {
    double seqs = 0, ctx = 0, ptok = 0, prefix_weighted = 0;
    for (const RankBatch& r : ranks) {
      seqs += r.decode_seqs;
      ctx += static_cast<double>(r.decode_context);
      ptok += static_cast<double>(r.prefill_tokens);
      prefix_weighted += static_cast<double>(r.prefill_context);
    }
    Parts p;
    if (ptok == 0) {
      p = decode(seqs, ctx / seqs);
    } else {
      const double prefix = prefix_weighted / std::max(1.0, static_cast<double>(count_chunks(ranks)));
      p = prefill(ptok + seqs * tokens_per_decode_, prefix);
      if (seqs > 0) p = p + decode(seqs, ctx / seqs) - decode(seqs, 0);
    }
    StepTiming t;
    t.total = duration_from_seconds_ceil(std::max(p.total, 1e-9));
    auto d = [](double s) { return duration_from_seconds_ceil(std::max(s, 0.0)); };
    t.attention = d(p.attention);
    t.experts = d(p.experts);
    t.communication = d(p.communication);
    t.other = d(p.other);
    t.network_bytes = std::max(p.network_bytes, 0.0);
    t.scale_out_bytes = std::max(p.scale_out_bytes, 0.0);
    return t;
  }

 private:
  static int count_chunks(std::span<const RankBatch> ranks) {
    int n = 0;
    for (const RankBatch& r : ranks) n += r.prefill_seqs;
    return n;
  }

  Parts decode(double seqs, double ctx) {
    const Bracket a = bracket(seq_grid_, seqs), b = bracket(ctx_grid_, ctx);
    auto f = [&](int i, int j) { return point(0, i, j); };
    return (f(a.lo, b.lo) * (1 - b.w) + f(a.lo, b.hi) * b.w) * (1 - a.w) +
           (f(a.hi, b.lo) * (1 - b.w) + f(a.hi, b.hi) * b.w) * a.w;
  }

  Parts prefill(double tokens, double prefix) {
    const Bracket a = bracket(tok_grid_, tokens), b = bracket(ctx_grid_, prefix);
    auto f = [&](int i, int j) { return point(1, i, j); };
    return (f(a.lo, b.lo) * (1 - b.w) + f(a.lo, b.hi) * b.w) * (1 - a.w) +
           (f(a.hi, b.lo) * (1 - b.w) + f(a.hi, b.hi) * b.w) * a.w;
  }

  // The step simulator at a grid point (kind 0: decode, 1: prefill), memoised.
  const Parts& point(int kind, int i, int j) {
    const auto key = std::make_tuple(kind, i, j);
    auto it = memo_.find(key);
    if (it != memo_.end()) return it->second;
    BatchShape shape;
    const auto n = static_cast<std::int64_t>(kind == 0 ? seq_grid_[static_cast<std::size_t>(i)]
                                                       : tok_grid_[static_cast<std::size_t>(i)]);
    const auto c = static_cast<std::int64_t>(ctx_grid_[static_cast<std::size_t>(j)]);
    if (kind == 0) {
      shape.phase = moesim::Phase::kDecode;
      shape.seqs.assign(static_cast<std::size_t>(n), SequenceShape{tokens_per_decode_, c});
    } else {
      // Chunks of chunk_len_ tokens (the last one shorter), dealt round-robin to the attention ranks.
      shape.phase = moesim::Phase::kPrefill;
      for (std::int64_t left = n; left > 0; left -= chunk_len_) shape.seqs.push_back({std::min(left, chunk_len_), c});
    }
    const Overlap overlap = sc_.two_batch_overlap && shape.seqs.size() >= 2 ? Overlap::kTbo : Overlap::kNone;
    // One step simulator for every grid point: rebatch() keeps the batch-independent setup (routing model,
    // placements, dedup ratios, routes) and gives the same results as a new simulator per point.
    if (!sim_) {
      StepSetup setup = base_;
      setup.batch = shape;
      setup.overlap = overlap;
      sim_ = std::make_unique<StepSimulator>(std::move(setup));
    } else {
      sim_->rebatch(shape, overlap);
    }
    Parts sum;
    constexpr int kDraws = 2;  // routing draws averaged per grid point
    for (int r = 0; r < kDraws; ++r) sum = sum + to_parts(sim_->run(static_cast<std::uint64_t>(r)));
    return memo_.emplace(key, sum * (1.0 / kDraws)).first->second;
  }

  Parts to_parts(const StepResult& r) const {
    Parts p;
    double mtp_layer = 0;
    auto add = [&](OpGroup g, double s) {
      switch (g) {
        case OpGroup::kAttention: p.attention += s; break;
        case OpGroup::kExperts:
        case OpGroup::kSharedExpert:
        case OpGroup::kDenseFfn: p.experts += s; break;
        case OpGroup::kDispatch:
        case OpGroup::kCombine: p.communication += s; break;
        default: p.other += s; break;
      }
    };
    for (const LayerTypeReport& lt : r.layer_types) {
      for (int g = 0; g < kOpGroupCount; ++g) {
        const double s = lt.seconds_per_layer[static_cast<std::size_t>(g)] * lt.layers;
        add(static_cast<OpGroup>(g), s);
        if (lt.name == "mtp") mtp_layer += s;
      }
    }
    for (int g = 0; g < kOpGroupCount; ++g) add(static_cast<OpGroup>(g), r.head_tail_seconds[static_cast<std::size_t>(g)]);
    p.total = to_seconds(r.step_time);
    if (!r.pipeline.empty()) {
      // Pipeline stages: the serving loop keeps one batch in flight per stage (pp lanes per instance,
      // sim/serve/serving_sim.cc). A lane's batch comes back after its pass through the stages and the
      // sends, or once every lane has had its turn on the slowest stage, whichever is later.
      double slowest = 0, sends = 0;
      for (const PipelineStageReport& ps : r.pipeline) {
        slowest = std::max(slowest, to_seconds(ps.stage_time));
        sends += to_seconds(ps.send_time);
      }
      p.communication += sends;
      p.total = std::max(p.total, static_cast<double>(r.pipeline.size()) * slowest);
    }
    for (const CommReport& c : r.comms) {
      p.network_bytes += c.bytes;
      p.scale_out_bytes += c.scale_out_bytes;
    }
    // The expansion runs the MTP module once; drafting d tokens runs it d times in sequence.
    if (sc_.mtp.depth > 1) {
      const double extra = mtp_layer * (sc_.mtp.depth - 1);
      p.total += extra;
      p.other += extra;
    }
    return p;
  }

  const ScenarioSpec& sc_;
  const PoolSpec& pool_;
  StepSetup base_;
  int dp_ = 1;
  int tokens_per_decode_ = 1;
  std::int64_t chunk_len_ = 1;
  std::vector<double> seq_grid_, tok_grid_, ctx_grid_;
  std::map<std::tuple<int, int, int>, Parts> memo_;
  std::unique_ptr<StepSimulator> sim_;  // made at the first grid point, rebatched for the others
};

}  // namespace

StepTimerFactory fixed_step_timers(Duration step) {
  return [step](const ScenarioSpec&, const PoolSpec&, std::span<const GpuId>) {
    return std::make_unique<FixedStepTimer>(step);
  };
}

StepTimerFactory moe_step_timers(StepFidelity fidelity, CostModelKind cost) {
  // Instances of one pool share a timer's grid: the factory hands each instance
  // a view of one timer per pool.
  struct Shared final : StepTimer {
    std::shared_ptr<StepTimer> inner;
    StepTiming time(std::span<const RankBatch> r) override { return inner->time(r); }
    [[nodiscard]] long long evaluations() const override { return inner->evaluations(); }
  };
  auto pools = std::make_shared<std::map<const PoolSpec*, std::shared_ptr<StepTimer>>>();
  return [fidelity, cost, pools](const ScenarioSpec& sc, const PoolSpec& pool,
                           std::span<const GpuId>) -> std::unique_ptr<StepTimer> {
    auto& t = (*pools)[&pool];
    if (!t) t = std::make_shared<MoeStepTimer>(sc, pool, fidelity, cost);
    auto s = std::make_unique<Shared>();
    s->inner = t;
    return s;
  };
}

}  // namespace moesim::serve
