#include "sim/serve/serving_sim.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <stdexcept>

#include "sim/core/simulator.h"
#include "sim/hw/collectives.h"
#include "sim/hw/topology.h"
#include "sim/model/plan.h"
#include "sim/serve/batcher.h"
#include "sim/serve/kv_cache.h"
#include "sim/serve/mtp.h"
#include "sim/serve/request.h"
#include "sim/serve/router.h"
#include "sim/serve/workload.h"

namespace moesim::serve {

namespace {

struct Rank {
  KvCache kv;
  std::vector<std::uint32_t> resident;  // admission order
  std::deque<std::uint32_t> waiting;
  int incoming = 0;  // decode: KV transfers in flight to this rank
  [[nodiscard]] long long load() const {
    return static_cast<long long>(resident.size() + waiting.size()) + incoming;
  }
};

struct Instance {
  int pool = 0;
  std::vector<GpuId> gpus;
  std::vector<Rank> ranks;
  std::shared_ptr<StepTimer> timer;   // shared by the pipeline lanes of one instance
  int lanes = 1;                      // pipeline stages of the plan: batches in flight on these GPUs
  std::deque<std::uint32_t> handoff;  // decode: requests waiting for a slot
  bool busy = false;
  std::vector<BatchPlan> plans;
  std::vector<RankBatch> batches;
  [[nodiscard]] long long load() const {
    long long n = static_cast<long long>(handoff.size());
    for (const Rank& r : ranks) n += r.load();
    return n;
  }
};

class Serving {
 public:
  Serving(const ScenarioSpec& sc, const StepTimerFactory& timers, const ServingOptions& opts)
      : sc_(sc),
        opts_(opts),
        sim_(sc.workload.seed),
        topo_(build_topology(sc.cluster)),
        net_(sim_, topo_),
        source_(sc.workload, sc.workload.seed),
        mtp_rng_(Rng::stream(sc.workload.seed, "serve/mtp")) {
    res_.metrics.keep_deliveries(opts.token_times);
    build(timers);
  }

  ServingResult run() {
    wall_start_ = std::chrono::steady_clock::now();
    if (sc_.workload.arrival == ArrivalKind::kClosedLoop) {
      const int n = source_.initial_concurrency();
      for (int i = 0; i < n; ++i) issue(kTimeZero);
    } else {
      schedule_next_open_arrival();
    }
    const RunStats rs = sim_.run();
    if (progress_printed_) std::fprintf(stderr, "\n");
    for (const Request& q : reqs_)
      if (q.phase != Phase::kDone)
        throw std::logic_error("serving run drained with request " + std::to_string(q.id) + " unfinished");
    res_.events = rs.events;
    res_.makespan = sim_.now();
    res_.requests_issued = source_.issued();
    finish_window();
    for (std::size_t i = 0; i < insts_.size(); ++i) {
      PoolStats& ps = res_.pools[static_cast<std::size_t>(insts_[i].pool)];
      for (const Rank& r : insts_[i].ranks) ps.peak_kv_blocks = std::max(ps.peak_kv_blocks, r.kv.peak_used_blocks());
      ps.step_evaluations = std::max(ps.step_evaluations, insts_[i].timer->evaluations());
    }
    return std::move(res_);
  }

 private:
  void build(const StepTimerFactory& timers) {
    int next_gpu = 0;
    decode_tokens_ = 1 + sc_.mtp.depth;
    for (std::size_t p = 0; p < sc_.pools.size(); ++p) {
      const PoolSpec& pool = sc_.pools[p];
      MemoryOptions mo{sc_.kv.dtype, sc_.kv.memory_fraction, sc_.kv.reserve_bytes};
      const MemoryPlan mp = plan_memory(sc_.model, sc_.precision_variant(), sc_.cluster.system.gpu, pool.plan, mo);
      PoolStats ps;
      ps.name = pool.name;
      ps.role = pool.role;
      ps.instances = pool.instances;
      ps.gpus = sc_.pool_gpus(pool);
      ps.ranks_per_instance = pool.plan.attention_dp();
      ps.block_tokens = sc_.kv.block_tokens;
      // With pipeline stages (pp > 1) an instance keeps pp batches in flight, as vLLM's virtual engines and
      // SGLang's pipeline micro-batches do: pp lanes, each with its own scheduler and 1/pp of the KV blocks
      // (a stage holds the cache of its layers for every batch in flight), stepping at the pipelined step
      // time (sim/serve/step_timers.cc).
      const int lanes = pool.plan.pp;
      ps.lanes = lanes;
      ps.kv_blocks_per_rank = static_cast<int>(mp.kv_tokens_per_gpu / sc_.kv.block_tokens) / lanes;
      ps.weight_bytes_per_gpu = mp.weight_bytes_per_gpu;
      res_.pools.push_back(ps);
      for (int k = 0; k < pool.instances; ++k) {
        std::vector<GpuId> gpus;
        for (int g = 0; g < pool.plan.gpus(); ++g) gpus.push_back(GpuId(static_cast<std::uint32_t>(next_gpu++)));
        std::shared_ptr<StepTimer> timer = timers(sc_, pool, gpus);
        for (int lane = 0; lane < lanes; ++lane) {
          Instance inst;
          inst.pool = static_cast<int>(p);
          inst.gpus = gpus;
          inst.lanes = lanes;
          inst.ranks.resize(static_cast<std::size_t>(ps.ranks_per_instance));
          for (Rank& r : inst.ranks) r.kv = KvCache(ps.kv_blocks_per_rank, sc_.kv.block_tokens);
          inst.timer = timer;
          inst.plans.resize(inst.ranks.size());
          inst.batches.resize(inst.ranks.size());
          const int idx = static_cast<int>(insts_.size());
          res_.instance_names.push_back(pool.name + "/" + std::to_string(k) + (lanes > 1 ? "." + std::to_string(lane) : ""));
          if (pool.role == PoolRole::kDecode) decode_insts_.push_back(idx);
          else entry_insts_.push_back(idx);
          insts_.push_back(std::move(inst));
        }
      }
    }
    if (sc_.workload.requests) reqs_.reserve(static_cast<std::size_t>(*sc_.workload.requests));
  }

  // Admission keeps 1% of a rank's blocks free (vLLM's default watermark).
  static int watermark(const Rank& r) { return r.kv.total_blocks() / 100; }

  const PoolSpec& pool_of(const Instance& i) const { return sc_.pools[static_cast<std::size_t>(i.pool)]; }

  // ---- arrivals ----
  void schedule_next_open_arrival() {
    auto d = source_.next(sim_.now());
    if (!d) return;
    sim_.at(d->arrival, [this, d = *d] {
      arrive(d);
      schedule_next_open_arrival();
    });
  }

  void issue(Time now) {
    auto d = source_.next(now);
    if (d) arrive(*d);
  }

  void arrive(const RequestDraw& d) {
    Request q;
    q.id = static_cast<std::uint32_t>(reqs_.size());
    q.input = d.input;
    q.output = d.output;
    q.arrival = sim_.now();
    q.measured = q.id >= sc_.workload.warmup_requests && q.arrival.time_since_epoch() >= sc_.workload.warmup_duration;
    if (q.measured && !window_started_) {
      window_started_ = true;
      res_.window_start = q.arrival;
    }
    last_arrival_ = q.arrival;
    res_.metrics.on_arrival(q.id, q.arrival, q.input, q.output, q.measured);
    reqs_.push_back(q);
    std::vector<long long> loads;
    loads.reserve(entry_insts_.size());
    for (int i : entry_insts_) loads.push_back(insts_[static_cast<std::size_t>(i)].load());
    const int inst = entry_insts_[static_cast<std::size_t>(pick_instance(sc_.router, loads, rr_entry_))];
    Instance& in = insts_[static_cast<std::size_t>(inst)];
    std::vector<long long> rl;
    for (const Rank& r : in.ranks) rl.push_back(r.load());
    const int rank = least_loaded(rl);
    Request& rq = reqs_.back();
    rq.instance = inst;
    rq.rank = rank;
    rq.phase = Phase::kWaiting;
    in.ranks[static_cast<std::size_t>(rank)].waiting.push_back(rq.id);
    kick(inst);
  }

  // ---- steps ----
  void kick(int inst) {
    if (!insts_[static_cast<std::size_t>(inst)].busy) start_step(inst);
  }

  void start_step(int idx) {
    Instance& in = insts_[static_cast<std::size_t>(idx)];
    const PoolSpec& pool = pool_of(in);
    BatchPolicy pol{pool.limits, sc_.kv.block_tokens, decode_tokens_, 0};
    bool any = false;
    int max_decode = 0;
    long long decode_total = 0;
    for (std::size_t r = 0; r < in.ranks.size(); ++r) {
      Rank& rk = in.ranks[r];
      resident_view_.clear();
      waiting_view_.clear();
      for (std::uint32_t id : rk.resident) {
        const Request& q = reqs_[id];
        resident_view_.push_back({id, q.computed, q.blocks, q.phase == Phase::kPrefill ? q.remaining_prefill() : 0});
      }
      for (std::uint32_t id : rk.waiting) waiting_view_.push_back({id, reqs_[id].prefill_target()});
      pol.watermark_blocks = watermark(rk);
      BatchPlan& plan = in.plans[r];
      plan = plan_next_batch(resident_view_, waiting_view_, rk.kv.free_blocks(), pol);
      // Admissions are the front of the waiting queue, in order.
      RankBatch b;
      b.tokens_per_decode_seq = decode_tokens_;
      for (const BatchEntry& e : plan.entries) {
        Request& q = reqs_[e.id];
        if (e.admitted) {
          if (rk.waiting.empty() || rk.waiting.front() != e.id) throw std::logic_error("batcher admitted out of order");
          rk.waiting.pop_front();
          rk.resident.push_back(e.id);
          q.phase = Phase::kPrefill;
          q.computed = 0;
        }
      }
      for (std::uint32_t id : plan.preempted) preempt(rk, id, in.pool);
      for (const BatchEntry& e : plan.entries) {
        Request& q = reqs_[e.id];
        if (!rk.kv.allocate(e.new_blocks)) throw std::logic_error("batcher planned more KV blocks than are free");
        q.blocks += e.new_blocks;
        if (e.prefill) {
          ++b.prefill_seqs;
          b.prefill_tokens += e.tokens;
          b.prefill_context += e.context;
          b.prefill_attention_pairs +=
              static_cast<double>(e.tokens) * (static_cast<double>(e.context) + (e.tokens + 1) / 2.0);
        } else {
          ++b.decode_seqs;
          b.decode_context += e.context;
        }
      }
      any |= !plan.empty();
      max_decode = std::max(max_decode, b.decode_seqs);
      decode_total += b.decode_seqs;
      in.batches[r] = b;
    }
    if (!any) {
      in.busy = false;
      return;
    }
    const StepTiming t = in.timer->time(in.batches);
    if (t.total <= Duration::zero()) throw std::logic_error("step timer returned a non-positive step time");
    PoolStats& ps = res_.pools[static_cast<std::size_t>(in.pool)];
    ++ps.steps;
    ps.busy += t.total / in.lanes;  // each lane's batch holds each stage's GPUs for about 1/lanes of its step
    ps.attention += t.attention;
    ps.experts += t.experts;
    ps.communication += t.communication;
    ps.other += t.other;
    ps.network_bytes += t.network_bytes;
    ps.scale_out_bytes += t.scale_out_bytes;
    ps.decode_seqs_per_rank_sum += static_cast<double>(decode_total) / static_cast<double>(in.ranks.size());
    ps.max_decode_seqs_per_rank = std::max(ps.max_decode_seqs_per_rank, max_decode);
    if (static_cast<int>(res_.step_samples.size()) < opts_.trace_steps) {
      std::int64_t pt = 0;
      for (const RankBatch& b : in.batches) pt += b.prefill_tokens;
      res_.step_samples.push_back({idx, sim_.now(), t.total, static_cast<int>(decode_total), pt});
    }
    in.busy = true;
    sim_.after(t.total, [this, idx] { end_step(idx); });
  }

  void preempt(Rank& rk, std::uint32_t id, int pool) {
    Request& q = reqs_[id];
    rk.kv.release(q.blocks);
    q.blocks = 0;
    q.computed = 0;
    q.phase = Phase::kWaiting;
    ++q.preemptions;
    ++res_.pools[static_cast<std::size_t>(pool)].preemptions;
    rk.resident.erase(std::find(rk.resident.begin(), rk.resident.end(), id));
    rk.waiting.push_front(id);
  }

  void deliver(Request& q, int n) {
    q.generated += n;
    output_total_ += n;
    res_.metrics.on_tokens(q.id, sim_.now(), n);
  }

  void end_step(int idx) {
    Instance& in = insts_[static_cast<std::size_t>(idx)];
    const PoolSpec& pool = pool_of(in);
    PoolStats& ps = res_.pools[static_cast<std::size_t>(in.pool)];
    bool freed = false;
    for (std::size_t r = 0; r < in.ranks.size(); ++r) {
      Rank& rk = in.ranks[r];
      bool leave = false;
      for (const BatchEntry& e : in.plans[r].entries) {
        Request& q = reqs_[e.id];
        q.computed += e.tokens;
        if (e.prefill) {
          prefill_total_ += e.tokens;
          ps.prefill_tokens += e.tokens;
          if (q.computed < q.prefill_target()) continue;
          deliver(q, 1);
          q.prefill_done = sim_.now();
          if (q.generated >= q.output) {
            finish(rk, q);
            leave = freed = true;
          } else if (pool.role == PoolRole::kPrefill) {
            q.phase = Phase::kWaitDecode;
            leave = true;
            handoffs_.push_back(q.id);
          } else {
            q.phase = Phase::kDecode;
          }
        } else {
          const int k = sc_.mtp.depth > 0 ? draw_accepted_tokens(sc_.mtp.acceptance, mtp_rng_) : 1;
          const int n = std::min(k, q.output - q.generated);
          deliver(q, n);
          ps.decode_tokens += n;
          q.computed = q.input + q.generated - 1;
          const int keep = blocks_for(q.computed, sc_.kv.block_tokens);
          if (q.blocks > keep) {
            rk.kv.release(q.blocks - keep);
            q.blocks = keep;
          }
          if (q.generated >= q.output) {
            finish(rk, q);
            leave = freed = true;
          }
        }
      }
      if (leave) {
        std::erase_if(rk.resident, [this](std::uint32_t id) {
          const Phase ph = reqs_[id].phase;
          return ph == Phase::kDone || ph == Phase::kWaitDecode;
        });
      }
    }
    res_.emissions.push_back({sim_.now(), output_total_, prefill_total_});
    progress();
    in.busy = false;
    // Hand over only now that they have left the prefill rank's batch.
    for (std::uint32_t id : handoffs_) handoff(reqs_[id]);
    handoffs_.clear();
    if (freed && pool.role == PoolRole::kDecode) start_transfers(idx);
    start_step(idx);
  }

  void finish(Rank& rk, Request& q) {
    rk.kv.release(q.blocks);
    q.blocks = 0;
    q.phase = Phase::kDone;
    q.finish = sim_.now();
    ++done_;
    res_.metrics.on_finish(q.id, q.finish, q.instance, q.preemptions, q.kv_transfer);
    if (sc_.workload.arrival == ArrivalKind::kClosedLoop) issue(sim_.now());
  }

  // ---- disaggregation ----
  void handoff(Request& q) {
    std::vector<long long> loads;
    for (int i : decode_insts_) loads.push_back(insts_[static_cast<std::size_t>(i)].load());
    const int d = decode_insts_[static_cast<std::size_t>(pick_instance(sc_.router, loads, rr_decode_))];
    insts_[static_cast<std::size_t>(d)].handoff.push_back(q.id);
    start_transfers(d);
  }

  void start_transfers(int d) {
    Instance& dec = insts_[static_cast<std::size_t>(d)];
    const PoolSpec& dpool = pool_of(dec);
    while (!dec.handoff.empty()) {
      Request& q = reqs_[dec.handoff.front()];
      const int need = blocks_for(q.computed, sc_.kv.block_tokens);
      const int need_step = blocks_for(q.computed + decode_tokens_, sc_.kv.block_tokens);
      int best = -1;
      for (std::size_t r = 0; r < dec.ranks.size(); ++r) {
        const Rank& rk = dec.ranks[r];
        if (static_cast<int>(rk.resident.size()) + rk.incoming >= dpool.limits.max_batch_size) continue;
        if (rk.kv.free_blocks() - watermark(rk) < need_step) continue;
        if (best < 0 || rk.load() < dec.ranks[static_cast<std::size_t>(best)].load()) best = static_cast<int>(r);
      }
      if (best < 0) return;
      dec.handoff.pop_front();
      Rank& rk = dec.ranks[static_cast<std::size_t>(best)];
      rk.kv.allocate(need);
      ++rk.incoming;
      q.phase = Phase::kTransfer;
      transfer(q, d, best, need);
    }
  }

  void transfer(Request& q, int d, int drank, int reserved) {
    const Instance& src = insts_[static_cast<std::size_t>(q.instance)];
    const Instance& dst = insts_[static_cast<std::size_t>(d)];
    const ParallelPlan& sp = pool_of(src).plan;
    const ParallelPlan& dp = pool_of(dst).plan;
    const int pairs = std::min(sp.tp, dp.tp);
    const double bytes = static_cast<double>(q.computed) * kv_bytes_per_token(sc_.model, sc_.kv.dtype, 1);
    res_.kv_transfer_bytes += bytes;
    ++res_.kv_transfers;
    auto left = std::make_shared<int>(pairs * sp.pp);
    const std::uint32_t id = q.id;
    const int layers = sc_.model.layers;
    // Each pipeline stage of the source sends the cache of its layers (its share of the bytes) to the
    // destination stage that holds the first of them (the same stage when both pools have the same pp).
    for (int s = 0; s < sp.pp; ++s) {
      const LayerRange lr = stage_layers(layers, sp.pp, s);
      int ds = 0;
      while (ds + 1 < dp.pp && stage_layers(layers, dp.pp, ds + 1).first <= lr.first) ++ds;
      const double part = bytes * lr.count / layers / pairs;
      for (int k = 0; k < pairs; ++k) {
        const GpuId a = src.gpus[static_cast<std::size_t>(s * sp.gpus_per_stage() + q.rank * sp.tp + k)];
        const GpuId b = dst.gpus[static_cast<std::size_t>(ds * dp.gpus_per_stage() + drank * dp.tp + k)];
        PoolStats& sender = res_.pools[static_cast<std::size_t>(src.pool)];
        sender.network_bytes += part;
        const int domain_gpus = sc_.cluster.system.scale_up.domain_gpus;
        if (static_cast<int>(a.value()) / domain_gpus != static_cast<int>(b.value()) / domain_gpus)
          sender.scale_out_bytes += part;
        net_.p2p(a, b, Bytes(part), [this, left, id, d, drank, reserved](Time) {
          if (--*left == 0) transfer_done(id, d, drank, reserved);
        });
      }
    }
  }

  void transfer_done(std::uint32_t id, int d, int drank, int reserved) {
    Request& q = reqs_[id];
    Instance& src = insts_[static_cast<std::size_t>(q.instance)];
    src.ranks[static_cast<std::size_t>(q.rank)].kv.release(q.blocks);
    const int src_idx = q.instance;
    Instance& dst = insts_[static_cast<std::size_t>(d)];
    Rank& rk = dst.ranks[static_cast<std::size_t>(drank)];
    --rk.incoming;
    rk.resident.push_back(id);
    q.blocks = reserved;
    q.instance = d;
    q.rank = drank;
    q.phase = Phase::kDecode;
    q.kv_transfer = sim_.now() - q.prefill_done;
    kick(d);
    kick(src_idx);
  }

  // ---- reporting ----
  void finish_window() {
    if (!window_started_) res_.window_start = kTimeZero;
    res_.window_end = last_arrival_ > res_.window_start ? last_arrival_ : res_.makespan;
  }

  void progress() {
    if (!opts_.progress || (++progress_tick_ & 255) != 0) return;
    const auto now = std::chrono::steady_clock::now();
    const double wall = std::chrono::duration<double>(now - wall_start_).count();
    if (wall < 2.0 || wall - last_print_ < 1.0) return;
    last_print_ = wall;
    progress_printed_ = true;
    std::fprintf(stderr, "\rmoesim run %s: simulated %.1f s, %lld of %lld requests done (%.0f s wall)   ",
                 opts_.label.c_str(), to_seconds(sim_.now()), done_, source_.issued(), wall);
    std::fflush(stderr);
  }

  const ScenarioSpec& sc_;
  ServingOptions opts_;
  Simulator sim_;
  Topology topo_;
  Network net_;
  RequestSource source_;
  Rng mtp_rng_;
  std::vector<Instance> insts_;
  std::vector<int> entry_insts_, decode_insts_;
  std::vector<Request> reqs_;
  std::vector<ResidentSeq> resident_view_;
  std::vector<WaitingSeq> waiting_view_;
  std::vector<std::uint32_t> handoffs_;
  ServingResult res_;
  int decode_tokens_ = 1;
  int rr_entry_ = 0, rr_decode_ = 0;
  bool window_started_ = false;
  Time last_arrival_{};
  std::int64_t output_total_ = 0, prefill_total_ = 0;
  long long done_ = 0;
  std::chrono::steady_clock::time_point wall_start_;
  unsigned progress_tick_ = 0;
  double last_print_ = 0;
  bool progress_printed_ = false;
};

}  // namespace

ServingResult run_serving(const ScenarioSpec& sc, const StepTimerFactory& timers, const ServingOptions& opts) {
  Serving s(sc, timers, opts);
  return s.run();
}

}  // namespace moesim::serve
