// Interpolation grids for step times. A step simulation costs milliseconds
// (a few ms to rebatch the timer's one StepSimulator to a new shape, and
// 4-15 ms per run: sim/step/README.md), far above the sub-millisecond per-step
// budget of a serving run; so the step timer runs the step simulator exactly at
// grid points of (sequences, context) or (prefill tokens, prefix) and
// interpolates linearly between them. Along the context axis the step time is linear
// between kinks of the roofline (attention cost is linear in cached tokens);
// along the batch axis the grid is geometric (ratio <= 1.5). The disagreement
// with direct step simulation is measured by tools/bench/serve_bench.cc.
#pragma once

#include <span>
#include <vector>

namespace moesim::serve {

struct Bracket {
  int lo = 0;
  int hi = 0;
  double w = 0;  // value = (1 - w) * f(grid[lo]) + w * f(grid[hi]); w outside [0, 1] extrapolates
};

// The grid interval holding x (x below the first point or above the last one
// extrapolates from the first or last interval). grid: increasing, >= 2 points.
Bracket bracket(std::span<const double> grid, double x);

// Total sequences of an instance's decode batch: 1, 2, 3, 4, 6, 8, 12, 16, ... up to >= max.
std::vector<double> count_grid(double max);
// Cached tokens per sequence: 0, 512, 1K, 2K, ... up to >= max.
std::vector<double> context_grid(double max);

}  // namespace moesim::serve
