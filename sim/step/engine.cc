// The event-driven run of a step: per-GPU compute streams on the Simulator,
// collectives on the network (fluid flows or the analytic rule).
#include <algorithm>
#include <optional>

#include "sim/core/simulator.h"
#include "sim/hw/flow_net.h"
#include "sim/step/step_run.h"

namespace moesim::step_detail {

void RunRecord::reset(int gpus, int types, std::size_t comms, bool trace) {
  finish.assign(static_cast<std::size_t>(gpus), 0);
  stall.assign(static_cast<std::size_t>(gpus) * static_cast<std::size_t>(types + 1) * kOpGroupCount, 0.0);
  comm_first_send.assign(comms, -1);
  comm_last_arrival.assign(comms, 0);
  events = 0;
  op_spans.clear();
  link_spans.clear();
  (void)trace;
}

namespace {

constexpr std::uint32_t kEventCompute = 0x200;
constexpr std::uint32_t kEventArrive = 0x201;
constexpr std::uint32_t kEventResume = 0x202;

class Engine {
 public:
  Engine(const RunInputs& in, RunRecord& rec) : in_(in), rec_(rec), prog_(*in.prog), G_(static_cast<std::size_t>(prog_.gpus)) {
    if (in.network == NetworkMode::kFluid) flows_.emplace(sim_, *in.topo);
    pc_.assign(G_, 0);
    waiting_.assign(G_, -1);
    block_start_.assign(G_, 0);
    const std::size_t C = prog_.comms.size();
    pending_.assign(C * G_, 0);
    if (in.network == NetworkMode::kAnalytic) senders_left_.assign(C * G_, 0);
    contend_ = in.network == NetworkMode::kAnalytic && !in.link_busy.empty();
    if (contend_) {
      links_.reset(in.links, C);
      sources_left_.assign(C, 0);
      applied_.assign(C * G_, 0);
    }
    if (in.trace) {
      tx_.assign(C * G_, {-1, -1});
      rx_.assign(C * G_, {-1, -1});
    }
    for (std::size_t c = 0; c < C; ++c) {
      const std::vector<double>& m = *prog_.comms[c].matrix;
      // Senders per destination, branch-free (per-token matrices are sparse in no predictable pattern).
      int* count = &pending_[c * G_];
      for (std::size_t s = 0; s < G_; ++s) {
        const double* row = &m[s * G_];
        for (std::size_t d = 0; d < G_; ++d) count[d] += row[d] > 0 ? 1 : 0;
        count[s] -= row[s] > 0 ? 1 : 0;  // the diagonal is not sent
      }
      if (!senders_left_.empty()) std::copy(count, count + G_, &senders_left_[c * G_]);
      if (contend_) {
        for (std::size_t s = 0; s < G_; ++s) {
          bool any = false;
          for (std::size_t d = 0; d < G_ && !any; ++d) any = d != s && m[s * G_ + d] > 0;
          sources_left_[c] += any ? 1 : 0;
        }
      }
      if (!senders_left_.empty()) {
        for (std::size_t d = 0; d < G_; ++d) pending_[c * G_ + d] = pending_[c * G_ + d] > 0 ? 1 : 0;
      }
    }
  }

  void run() {
    for (std::size_t g = 0; g < G_; ++g) advance(g);
    const RunStats st = sim_.run();
    rec_.events = st.events;
    for (std::size_t g = 0; g < G_; ++g) {
      if (pc_[g] != prog_.streams[g].instrs.size())
        throw std::logic_error("step engine: GPU " + std::to_string(g) + " never finished (a collective was not delivered)");
    }
    if (in_.trace) flush_link_spans();
  }

 private:
  std::int64_t now() const { return sim_.now().time_since_epoch().count(); }

  void advance(std::size_t g) {
    const GpuStream& s = prog_.streams[g];
    while (pc_[g] < s.instrs.size()) {
      const FlatInstr& in = s.instrs[pc_[g]];
      if (in.type == Instr::Type::kCompute) {
        Duration dur{};
        std::int64_t t = now();
        for (std::uint32_t i = in.a; i < in.b; ++i) {
          const Duration c = s.ops[i].cost;
          if (in_.trace && c.count() > 0) rec_.op_spans.push_back({static_cast<std::uint32_t>(g), i, t, c.count()});
          t += c.count();
          dur += c;
        }
        ++pc_[g];
        if (dur.count() > 0) {
          sim_.after(dur, [this, g] { advance(g); }, {kEventCompute, g});
          return;
        }
      } else if (in.type == Instr::Type::kSend) {
        send(in.a, g);
        ++pc_[g];
      } else {
        if (pending_[in.a * G_ + g] > 0) {
          waiting_[g] = static_cast<std::int64_t>(in.a);
          block_start_[g] = now();
          return;
        }
        ++pc_[g];
      }
    }
    rec_.finish[g] = now();
  }

  void send(std::size_t c, std::size_t s) {
    const std::vector<double>& m = *prog_.comms[c].matrix;
    const std::int64_t t = now();
    if (rec_.comm_first_send[c] < 0) rec_.comm_first_send[c] = t;
    if (in_.trace) tx_[c * G_ + s].first = t;
    if (contend_) {
      bool any = false;
      for (std::size_t d = 0; d < G_ && !any; ++d) any = d != s && m[s * G_ + d] > 0;
      if (any && --sources_left_[c] == 0) links_.reserve(c, prog_.comms[c].mb, t, in_.link_busy[c]);  // S_c
    }
    if (!flows_ && !in_.trace) {  // analytic: the last sender to d schedules d's arrival
      // Two passes without data-dependent branches in the first (the matrix is sparse at random): count the
      // sends down, then schedule where a count reached zero now (rare, so that branch predicts well).
      int* left = &senders_left_[c * G_];
      const double* row = &m[s * G_];
      for (std::size_t d = 0; d < G_; ++d) left[d] -= row[d] > 0 ? 1 : 0;
      left[s] += row[s] > 0 ? 1 : 0;  // the diagonal is not sent
      for (std::size_t d = 0; d < G_; ++d) {
        const bool last = (left[d] == 0) & (row[d] > 0) & (d != s);
        if (last) sim_.after(in_.analytic[c], [this, c, d] { arrive(c, d); }, {kEventArrive, c * G_ + d});
      }
      return;
    }
    for (std::size_t d = 0; d < G_; ++d) {
      const double b = m[s * G_ + d];
      if (d == s || !(b > 0)) continue;
      if (in_.trace && rx_[c * G_ + d].first < 0) rx_[c * G_ + d].first = t;
      if (flows_) {
        flows_->start(in_.gpus[s], in_.gpus[d], Bytes(b), [this, c, s, d](Time) {
          if (in_.trace) tx_[c * G_ + s].second = std::max(tx_[c * G_ + s].second, now());
          arrive(c, d);
        });
      } else if (--senders_left_[c * G_ + d] == 0) {
        sim_.after(in_.analytic[c], [this, c, d] { arrive(c, d); }, {kEventArrive, c * G_ + d});
      }
    }
  }

  void arrive(std::size_t c, std::size_t d) {
    const std::int64_t t = now();
    if (contend_) {  // sharing links with the other micro-batch: delay events due before now (mb_links.h)
      const std::vector<DelayEvent>& ev = links_.events(c);
      std::uint32_t& k = applied_[c * G_ + d];
      while (k < ev.size() && ev[k].threshold < t) {
        const std::int64_t later = ev[k++].delay;
        if (later > 0) {
          sim_.after(Duration{later}, [this, c, d] { arrive(c, d); }, {kEventArrive, c * G_ + d});
          return;
        }
      }
    }
    rec_.comm_last_arrival[c] = std::max(rec_.comm_last_arrival[c], t);
    if (in_.trace) rx_[c * G_ + d].second = t;
    if (--pending_[c * G_ + d] > 0) return;
    if (waiting_[d] == static_cast<std::int64_t>(c)) {
      const CommInstance& ci = prog_.comms[c];
      rec_.stall_at(static_cast<int>(d), ci.layer >= 0 ? ci.type : prog_.types, ci.decl.group, prog_.types) +=
          static_cast<double>(t - block_start_[d]) * 1e-12;
      waiting_[d] = -1;
      ++pc_[d];
      // Resume through an event: this may run inside a FlowNetwork completion callback, which must not
      // start flows re-entrantly.
      sim_.after(Duration{0}, [this, d] { advance(d); }, {kEventResume, d});
    }
  }

  void flush_link_spans() {
    for (std::size_t c = 0; c < prog_.comms.size(); ++c) {
      const std::vector<double>& m = *prog_.comms[c].matrix;
      for (std::size_t g = 0; g < G_; ++g) {
        auto tx = tx_[c * G_ + g];
        if (tx.first >= 0 && tx.second < 0) {  // analytic: the source is done when its last destination has its data
          for (std::size_t d = 0; d < G_; ++d) {
            if (d != g && m[g * G_ + d] > 0) tx.second = std::max(tx.second, rx_[c * G_ + d].second);
          }
        }
        if (tx.first >= 0 && tx.second > tx.first)
          rec_.link_spans.push_back({static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(g), true, tx.first, tx.second});
        const auto rx = rx_[c * G_ + g];
        if (rx.first >= 0 && rx.second > rx.first)
          rec_.link_spans.push_back({static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(g), false, rx.first, rx.second});
      }
    }
  }

  const RunInputs& in_;
  RunRecord& rec_;
  const Program& prog_;
  std::size_t G_;
  Simulator sim_;
  std::optional<FlowNetwork> flows_;
  std::vector<std::size_t> pc_;
  std::vector<std::int64_t> waiting_;
  std::vector<std::int64_t> block_start_;
  std::vector<int> pending_;
  std::vector<int> senders_left_;
  // Analytic rule with two micro-batches: their collectives share links (sim/step/mb_links.h).
  bool contend_ = false;
  MicroBatchLinks links_;
  std::vector<int> sources_left_;       // per comm: sources that have not sent yet
  std::vector<std::uint32_t> applied_;  // per comm x destination: delay events already applied to its delivery
  std::vector<std::pair<std::int64_t, std::int64_t>> tx_, rx_;
};

}  // namespace

void run_detailed(const RunInputs& in, RunRecord& rec) {
  Engine e(in, rec);
  e.run();
}

}  // namespace moesim::step_detail
