// Throughput-interactivity frontiers: a deployment swept over load gives points
// (tokens/s per user, tokens/s per GPU); planners compare systems at the same
// interactivity, so the frontier is read at a target tokens/s per user.
// Pure functions.
#pragma once

#include <optional>
#include <vector>

namespace moesim::obs {

struct FrontierPoint {
  double concurrency = 0;
  double tokens_per_s_per_user = 0;  // interactivity (1 / TPOT)
  double tokens_per_s_per_gpu = 0;   // throughput
};

// The Pareto-optimal subset (no other point has both more interactivity and
// more throughput), sorted by increasing interactivity.
std::vector<FrontierPoint> pareto_frontier(std::vector<FrontierPoint> points);

// Throughput at `user_tps` on the frontier: the best throughput among points
// that reach at least that interactivity, interpolated linearly in log-log space
// between the two frontier points that bracket it. nullopt when no point reaches
// `user_tps`.
std::optional<double> throughput_at_interactivity(const std::vector<FrontierPoint>& frontier, double user_tps);

}  // namespace moesim::obs
