#include "sim/hw/collectives.h"

#include <utility>

namespace moesim {

struct Network::PlanRun {
  CommPlan plan;
  DoneCallback on_done;
  std::size_t step = 0;
  std::uint32_t round = 0;  // repetition of the current step
  std::size_t outstanding = 0;
  std::size_t index = 0;  // in runs_
};

Network::Network(Simulator& sim, const Topology& topo) : flows_(sim, topo) {}

Network::~Network() = default;

void Network::step_done(PlanRun* run, Time t) {
  if (++run->round >= run->plan.steps[run->step].repeat) {
    run->round = 0;
    ++run->step;
  }
  if (run->step < run->plan.steps.size()) {
    start_step(run);
    return;
  }
  // Done: release the run (swap with the last), then call back.
  DoneCallback cb = std::move(run->on_done);
  const std::size_t i = run->index;
  runs_[i] = std::move(runs_.back());
  runs_[i]->index = i;
  runs_.pop_back();
  if (cb) cb(t);
}

void Network::start_step(PlanRun* run) {
  const CommStep& s = run->plan.steps[run->step];
  run->outstanding = s.transfers.size();
  if (run->outstanding == 0) {
    step_done(run, flows_.simulator().now());
    return;
  }
  flows_.reserve(s.transfers.size());
  for (const Transfer& t : s.transfers) {
    flows_.start(t.src, t.dst, t.bytes, [this, run](Time done) {
      if (--run->outstanding == 0) step_done(run, done);
    });
  }
}

void Network::run(CommPlan plan, DoneCallback on_done) {
  if (plan.steps.empty()) {
    Simulator& sim = flows_.simulator();
    sim.after(Duration::zero(), [cb = std::move(on_done), &sim] {
      if (cb) cb(sim.now());
    });
    return;
  }
  auto r = std::make_unique<PlanRun>();
  r->plan = std::move(plan);
  r->on_done = std::move(on_done);
  r->index = runs_.size();
  PlanRun* p = r.get();
  runs_.push_back(std::move(r));
  start_step(p);
}

}  // namespace moesim
