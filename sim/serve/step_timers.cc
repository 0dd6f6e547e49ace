#include "sim/serve/step_timers.h"

#include <stdexcept>

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

}  // namespace

StepTimerFactory fixed_step_timers(Duration step) {
  return [step](const ScenarioSpec&, const PoolSpec&, std::span<const GpuId>) {
    return std::make_unique<FixedStepTimer>(step);
  };
}

StepTimerFactory moe_step_timers(StepFidelity) {
  return [](const ScenarioSpec&, const PoolSpec&, std::span<const GpuId>) -> std::unique_ptr<StepTimer> {
    throw std::runtime_error("the MoE step simulator (sim/step) is not integrated yet: use --step-time");
  };
}

}  // namespace moesim::serve
