#include "sim/hw/collectives.h"

#include <memory>

namespace moesim {
namespace {

struct PlanRun {
  CommPlan plan;
  Network::DoneCallback on_done;
  std::size_t step = 0;
  std::uint32_t round = 0;  // repetition of the current step
  std::size_t outstanding = 0;
};

void start_step(FlowNetwork& net, const std::shared_ptr<PlanRun>& run);

void step_done(FlowNetwork& net, const std::shared_ptr<PlanRun>& run, Time t) {
  if (++run->round >= run->plan.steps[run->step].repeat) {
    run->round = 0;
    ++run->step;
  }
  if (run->step >= run->plan.steps.size()) {
    if (run->on_done) run->on_done(t);
    return;
  }
  start_step(net, run);
}

void start_step(FlowNetwork& net, const std::shared_ptr<PlanRun>& run) {
  const CommStep& s = run->plan.steps[run->step];
  run->outstanding = s.transfers.size();
  if (run->outstanding == 0) {
    step_done(net, run, net.simulator().now());
    return;
  }
  for (const Transfer& t : s.transfers) {
    net.start(t.src, t.dst, t.bytes, [&net, run](Time done) {
      if (--run->outstanding == 0) step_done(net, run, done);
    });
  }
}

}  // namespace

void Network::run(CommPlan plan, DoneCallback on_done) {
  auto r = std::make_shared<PlanRun>();
  r->plan = std::move(plan);
  r->on_done = std::move(on_done);
  if (r->plan.steps.empty()) {
    Simulator& sim = flows_.simulator();
    sim.after(Duration::zero(), [r, &sim] {
      if (r->on_done) r->on_done(sim.now());
    });
    return;
  }
  start_step(flows_, r);
}

}  // namespace moesim
