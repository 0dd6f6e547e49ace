#include "sim/hw/flow_net.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace moesim {
FlowNetwork::FlowNetwork(Simulator& sim, const Topology& topo) : FlowNetwork(sim, topo, Options{}) {}

FlowNetwork::FlowNetwork(Simulator& sim, const Topology& topo, Options options)
    : sim_(sim),
      topo_(topo),
      capacity_(topo.link_count()),
      links_(topo.link_count()),
      touched_mark_(topo.link_count(), 0),
      touched_max_(topo.link_count(), 0.0),
      link_local_(topo.link_count(), -1),
      set_max_(topo.link_count(), 0.0),
      options_(options) {
  for (std::size_t l = 0; l < topo.link_count(); ++l) {
    capacity_[l] = topo.link(LinkId(static_cast<std::uint32_t>(l))).bandwidth.value();
  }
}

void FlowNetwork::reserve(std::size_t more) {
  const std::size_t want = flows_.size() - free_.size() + more;
  if (want <= flows_.capacity()) return;
  flows_.reserve(want);
  on_done_.reserve(want);
  in_set_.reserve(want);
  links_.reserve_flows(want);
}

std::uint32_t FlowNetwork::alloc_slot() {
  if (!free_.empty()) {
    const std::uint32_t s = free_.back();
    free_.pop_back();
    return s;
  }
  flows_.emplace_back();
  on_done_.emplace_back();
  in_set_.push_back(0);
  return static_cast<std::uint32_t>(flows_.size() - 1);
}

FlowId FlowNetwork::start(NodeId src, NodeId dst, Bytes size, DoneCallback on_done, double rate_cap) {
  if (!(size.value() >= 0)) throw std::invalid_argument("FlowNetwork::start: negative size");
  if (!(rate_cap > 0)) throw std::invalid_argument("FlowNetwork::start: rate cap must be positive");
  const std::span<const LinkId> route = topo_.route(src, dst);
  if (route.size() > kMaxHops) throw std::logic_error("FlowNetwork: route longer than kMaxHops");
  const Duration lat = topo_.latency(route);
  ++stats_.started;
  if (route.empty() || size.value() == 0) {
    // Nothing to share: done after the latency.
    sim_.after(lat,
               [this, cb = std::move(on_done)] {
                 ++stats_.finished;
                 if (cb) cb(sim_.now());
               },
               {kEventFlowComplete, 0});
    return FlowId(0xffffffffu);
  }
  const std::uint32_t slot = alloc_slot();
  Flow& f = flows_[slot];
  f.route = route;
  f.remaining = size.value();
  f.rate = 0;
  f.cap = rate_cap;
  f.state = State::kLatency;
  on_done_[slot] = std::move(on_done);
  sim_.after(lat, [this, slot] { activate(slot); }, {kEventFlowActivate, slot});
  return FlowId(slot);
}

double FlowNetwork::rate(FlowId id) const {
  if (id.value() >= flows_.size()) return 0;
  const Flow& f = flows_[id.value()];
  return f.state == State::kActive ? f.rate : 0.0;
}

void FlowNetwork::activate(std::uint32_t slot) {
  Flow& f = flows_[slot];
  f.state = State::kActive;
  f.t_last = sim_.now().time_since_epoch().count();
  f.rate = 0;
  f.active_index = static_cast<std::uint32_t>(active_.size());
  active_.push_back(slot);
  links_.add(slot, f.route, 0.0);
  if (!solve_pending_) {
    solve_pending_ = true;
    sim_.after(Duration::zero(), [this] { solve_event(); }, {kEventRateSolve, 0});
  }
}

void FlowNetwork::solve_event() {
  solve_pending_ = false;
  solve();
  schedule_next();
}

void FlowNetwork::advance(Flow& f, std::int64_t now) const {
  if (now > f.t_last) {
    f.remaining = std::max(0.0, f.remaining - f.rate * static_cast<double>(now - f.t_last) * 1e-12);
    f.t_last = now;
  }
}

bool FlowNetwork::set_rate(std::uint32_t slot, double r, std::int64_t now) {
  Flow& f = flows_[slot];
  // A new rate within rounding of the old one (a flow re-solved to the same
  // value) is not a change: its finish time would move by far less than 1 ps.
  if (r == f.rate || std::fabs(r - f.rate) <= kRateNoise * f.rate) return false;
  ++stats_.rate_changes;
  advance(f, now);
  links_.set_rate(slot, f.route, f.rate, r);
  f.rate = r;
  f.t_last = now;
  return true;
}

void FlowNetwork::predict_changed(std::int64_t now) {
  for (const std::uint32_t s : changed_) {
    flows_[s].changed = false;
    predict(s, now);
  }
  changed_.clear();
}

void FlowNetwork::predict(std::uint32_t slot, std::int64_t now) {
  Flow& f = flows_[slot];
  if (!(f.rate > 0)) {  // starved: no finish until rates change
    due_.erase(slot);
    return;
  }
  const std::int64_t finish =
      f.rate == kNoRateCap ? now : now + duration_from_seconds_ceil(f.remaining / f.rate).count();
  due_.set(slot, finish);
}

void FlowNetwork::solve() {
  ++stats_.solves;
  const std::size_t nf = active_.size();
  offsets_.resize(nf + 1);
  flat_links_.clear();
  caps_.resize(nf);
  rates_.resize(nf);
  bool any_cap = false;
  offsets_[0] = 0;
  for (std::size_t i = 0; i < nf; ++i) {
    const Flow& f = flows_[active_[i]];
    for (const LinkId l : f.route) flat_links_.push_back(l.value());
    offsets_[i + 1] = static_cast<std::uint32_t>(flat_links_.size());
    caps_[i] = f.cap;
    any_cap = any_cap || f.cap < kNoRateCap;
  }
  solver_.solve(MaxMinProblem{capacity_, offsets_, flat_links_,
                              any_cap ? std::span<const double>(caps_) : std::span<const double>()},
                rates_);
  const std::int64_t now = sim_.now().time_since_epoch().count();
  for (std::size_t i = 0; i < nf; ++i) {
    const std::uint32_t slot = active_[i];
    Flow& f = flows_[slot];
    if (set_rate(slot, rates_[i], now)) predict(slot, now);
  }
  links_.recompute();  // no drift in the sums after a full solve
}

bool FlowNetwork::has_bottleneck(const Flow& f) {
  if (f.cap < kNoRateCap && f.rate >= f.cap * (1 - kRelTol)) return true;
  for (const LinkId lid : f.route) {
    const std::uint32_t l = lid.value();
    if (saturated(l) && f.rate >= links_.max_rate(l) * (1 - kRelTol)) return true;
  }
  return false;
}

void FlowNetwork::check_link(std::uint32_t l, double threshold) {
  // Only a flow at the link's largest rate can have had its bottleneck here; the
  // others had one elsewhere, checked when that link changes.
  const std::span<const double> r = links_.rates(l);
  const std::span<const std::uint32_t> e = links_.entries(l);
  for (std::size_t i = 0; i < r.size(); ++i) {
    if (r[i] < threshold) continue;
    const std::uint32_t s = LinkFlowIndex::flow_of(e[i]);
    if (!in_set_[s] && !has_bottleneck(flows_[s])) add_to_set(s);
  }
}

void FlowNetwork::remove_from_links(std::uint32_t slot) {
  Flow& f = flows_[slot];
  for (const LinkId lid : f.route) {
    const std::uint32_t l = lid.value();
    if (!touched_mark_[l]) {
      touched_mark_[l] = 1;
      touched_.push_back(l);
      touched_max_[l] = saturated(l) ? links_.max_rate(l) : kNoRateCap;
    }
  }
  links_.remove(slot, f.route, f.rate);
  // Leave the active list (swap with the last).
  const std::uint32_t ai = f.active_index;
  const std::uint32_t last = active_.back();
  active_[ai] = last;
  flows_[last].active_index = ai;
  active_.pop_back();
}

void FlowNetwork::completion_event() {
  next_event_time_ = -1;
  const std::int64_t now = sim_.now().time_since_epoch().count();
  std::vector<DoneCallback> done;
  while (!due_.empty() && due_.top_key() <= now) {
    const std::uint32_t slot = due_.top();
    due_.erase(slot);
    Flow& f = flows_[slot];
    remove_from_links(slot);
    f.state = State::kFree;
    f.remaining = 0;
    done.push_back(std::move(on_done_[slot]));
    on_done_[slot] = nullptr;
    free_.push_back(slot);
    ++stats_.finished;
  }
  if (!touched_.empty()) {
    if (!solve_pending_) {  // else the solve already scheduled for this instant covers it
      for (const std::uint32_t l : touched_) {
        if (touched_max_[l] < kNoRateCap) check_link(l, touched_max_[l] * (1 - kRelTol));
      }
      if (set_.empty()) {
        ++stats_.completions_kept_rates;
      } else if (options_.local_repair) {
        repair();
      } else {
        clear_set();
        solve();
      }
    }
    for (const std::uint32_t l : touched_) touched_mark_[l] = 0;
    touched_.clear();
  }
  schedule_next();
  const Time t = sim_.now();
  for (auto& cb : done) {
    if (cb) cb(t);
  }
}

void FlowNetwork::add_faster(std::uint32_t l, double rate) {
  if (links_.max_rate(l) <= rate) return;  // none faster
  const std::span<const double> r = links_.rates(l);
  const std::span<const std::uint32_t> e = links_.entries(l);
  for (std::size_t i = 0; i < r.size(); ++i) {
    if (r[i] > rate && !in_set_[LinkFlowIndex::flow_of(e[i])]) add_to_set(LinkFlowIndex::flow_of(e[i]));
  }
}

void FlowNetwork::add_to_set(std::uint32_t slot) {
  __builtin_prefetch(&flows_[slot]);  // read soon, when the sub-problem is built
  in_set_[slot] = 1;
  set_.push_back(slot);
}

void FlowNetwork::clear_set() {
  for (const std::uint32_t s : set_) in_set_[s] = 0;
  set_.clear();
}

void FlowNetwork::repair() {
  const std::int64_t now = sim_.now().time_since_epoch().count();
  // A flow that lost its bottleneck rises, unless a saturated link where faster
  // flows run holds it: then they must give way. They join the set at once
  // (the check after the first solve would add them anyway).
  const std::size_t initial = set_.size();
  for (std::size_t i = 0; i < initial; ++i) {
    const Flow& f = flows_[set_[i]];
    for (const LinkId lid : f.route) {
      const std::uint32_t l = lid.value();
      if (saturated(l) && f.rate < links_.max_rate(l) * (1 - kRelTol)) add_faster(l, f.rate);
    }
  }
  while (true) {
    if (set_.size() * 2 > active_.size()) {  // a repair this large costs more than a full solve
      clear_set();
      predict_changed(now);
      solve();
      return;
    }
    // Sub-problem: the set's flows on the capacity the other flows leave.
    sub_links_.clear();
    sub_capacity_.clear();
    sub_old_max_.clear();
    sub_count_.clear();
    for (const std::uint32_t s : set_) {
      const Flow& f = flows_[s];
      for (const LinkId lid : f.route) {
        const std::uint32_t l = lid.value();
        if (link_local_[l] < 0) {
          link_local_[l] = static_cast<std::int32_t>(sub_links_.size());
          sub_links_.push_back(l);
          sub_capacity_.push_back(capacity_[l] - links_.used(l));
          // A link that was not saturated was nobody's bottleneck: nothing to recheck there (kNoRateCap).
          sub_old_max_.push_back(saturated(l) ? links_.max_rate(l) : kNoRateCap);
          sub_count_.push_back(0);
        }
        const auto k = static_cast<std::size_t>(link_local_[l]);
        sub_capacity_[k] += f.rate;
        ++sub_count_[k];
      }
    }
    // A link that only one of the set's flows crosses is that flow's rate cap: it
    // constrains it alone, exactly as a cap does, and the solver gets fewer links.
    solver_capacity_.clear();
    solver_links_.clear();
    for (std::size_t k = 0; k < sub_links_.size(); ++k) {
      sub_capacity_[k] = std::max(0.0, sub_capacity_[k]);
      if (sub_count_[k] > 1) {
        sub_count_[k] = static_cast<std::uint32_t>(solver_capacity_.size());  // now: index in the solver's problem
        solver_capacity_.push_back(sub_capacity_[k]);
        solver_links_.push_back(sub_links_[k]);
      } else {
        sub_count_[k] = kSingleFlowLink;
      }
    }
    offsets_.assign(1, 0);
    flat_links_.clear();
    caps_.resize(set_.size());
    cap_link_.resize(set_.size());
    bool any_cap = false;
    for (std::size_t i = 0; i < set_.size(); ++i) {
      const Flow& f = flows_[set_[i]];
      double cap = f.cap;
      cap_link_[i] = kNoLink;  // the flow's own cap
      for (const LinkId lid : f.route) {
        const auto k = static_cast<std::size_t>(link_local_[lid.value()]);
        if (sub_count_[k] == kSingleFlowLink) {
          if (sub_capacity_[k] < cap) {
            cap = sub_capacity_[k];
            cap_link_[i] = lid.value();
          }
        } else {
          flat_links_.push_back(sub_count_[k]);
        }
      }
      offsets_.push_back(static_cast<std::uint32_t>(flat_links_.size()));
      caps_[i] = cap;
      any_cap = any_cap || cap < kNoRateCap;
    }
    ++stats_.repair_rounds;
    stats_.repair_flows += set_.size();
    rates_.resize(set_.size());
    solver_.solve(MaxMinProblem{solver_capacity_, offsets_, flat_links_,
                                any_cap ? std::span<const double>(caps_) : std::span<const double>()},
                  rates_);
    const std::span<const std::uint32_t> fixed_by = solver_.fixed_by();
    for (const std::uint32_t l : sub_links_) link_local_[l] = -1;
    for (std::size_t i = 0; i < set_.size(); ++i) {
      const std::uint32_t s = set_[i];
      Flow& f = flows_[s];
      if (set_rate(s, rates_[i], now) && !f.changed) {  // its finish is predicted once, when the repair is done
        f.changed = true;
        changed_.push_back(s);
      }
      for (const LinkId lid : f.route) set_max_[lid.value()] = std::max(set_max_[lid.value()], f.rate);
    }
    // Bottleneck check. A link keeps serving as the bottleneck of the other
    // flows on it if it is still saturated and no set flow now exceeds its
    // previous largest rate; on a link that fails this test only the flows at
    // its previous largest rate can have lost their bottleneck. The set's own
    // flows are checked one by one.
    const std::size_t before = set_.size();
    auto expand_for = [&](std::uint32_t s) {
      // f needs capacity that faster flows on its links hold: they join the set, and f too.
      if (!in_set_[s]) add_to_set(s);
      for (const LinkId lid : flows_[s].route) add_faster(lid.value(), flows_[s].rate);
    };
    for (std::size_t k = 0; k < sub_links_.size(); ++k) {
      const std::uint32_t l = sub_links_[k];
      const double old_max = sub_old_max_[k];
      const bool keeps = old_max == kNoRateCap || (saturated(l) && set_max_[l] <= old_max * (1 + kRelTol));
      set_max_[l] = 0;
      if (keeps) continue;
      const std::span<const double> r = links_.rates(l);
      const std::span<const std::uint32_t> e = links_.entries(l);
      const double threshold = old_max * (1 - kRelTol);
      for (std::size_t i = 0; i < r.size(); ++i) {
        if (r[i] < threshold) continue;
        const std::uint32_t s = LinkFlowIndex::flow_of(e[i]);
        if (!in_set_[s] && !has_bottleneck(flows_[s])) expand_for(s);
      }
    }
    for (std::size_t i = 0; i < before; ++i) {
      const std::uint32_t s = set_[i];
      // First the constraint that fixed the flow in the solve, then all of its links.
      const std::uint32_t b = fixed_by[i] == MaxMinSolver::kFixedByCap ? cap_link_[i] : solver_links_[fixed_by[i]];
      const Flow& f = flows_[s];
      const bool held =
          b == kNoLink ? f.rate >= f.cap * (1 - kRelTol) : saturated(b) && f.rate >= links_.max_rate(b) * (1 - kRelTol);
      if (!held && !has_bottleneck(f)) expand_for(s);
    }
    if (set_.size() == before) {
      ++stats_.repairs;
      clear_set();
      predict_changed(now);
      return;
    }
  }
}

void FlowNetwork::schedule_next() {
  if (due_.empty()) {
    if (next_event_time_ >= 0) sim_.cancel(next_event_);
    next_event_time_ = -1;
    return;
  }
  const std::int64_t t = due_.top_key();
  if (t == next_event_time_) return;
  if (next_event_time_ >= 0) sim_.cancel(next_event_);
  next_event_time_ = t;
  next_event_ = sim_.at(Time{Duration{t}}, [this] { completion_event(); }, {kEventFlowComplete, due_.top()});
}

}  // namespace moesim
