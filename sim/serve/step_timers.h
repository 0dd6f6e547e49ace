// The step timers `moesim run` uses: the MoE step simulator (sim/step) behind
// the StepTimer interface, on its fast path (analytic all-to-all, per-layer
// aggregates) by default or its detailed path (fluid network, per-GPU
// programs); and a fixed step time for tests.
#pragma once

#include "sim/cost/calibrated.h"
#include "sim/serve/serving_sim.h"

namespace moesim::serve {

enum class StepFidelity { kFast, kDetailed };

// cost: roofline, or the calibrated model of the system's GPU (hardware/calibration/, extrapolated for
// GPUs that have none of their own); ConfigError when the GPU has no calibration to use.
StepTimerFactory moe_step_timers(StepFidelity fidelity, CostModelKind cost = CostModelKind::kRoofline);

// Every step takes `step` (tests and what-if runs).
StepTimerFactory fixed_step_timers(Duration step);

}  // namespace moesim::serve
