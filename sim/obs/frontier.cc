#include "sim/obs/frontier.h"

#include <algorithm>
#include <cmath>

namespace moesim::obs {

std::vector<FrontierPoint> pareto_frontier(std::vector<FrontierPoint> points) {
  // Highest interactivity first; keep a point only if it beats the throughput of every point seen so far.
  std::sort(points.begin(), points.end(), [](const FrontierPoint& a, const FrontierPoint& b) {
    if (a.tokens_per_s_per_user != b.tokens_per_s_per_user) return a.tokens_per_s_per_user > b.tokens_per_s_per_user;
    return a.tokens_per_s_per_gpu > b.tokens_per_s_per_gpu;
  });
  std::vector<FrontierPoint> out;
  double best = -1;
  for (const FrontierPoint& p : points) {
    if (p.tokens_per_s_per_gpu > best) {
      out.push_back(p);
      best = p.tokens_per_s_per_gpu;
    }
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::optional<double> throughput_at_interactivity(const std::vector<FrontierPoint>& frontier, double user_tps) {
  // frontier: increasing interactivity, decreasing throughput.
  if (frontier.empty() || !(user_tps > 0)) return std::nullopt;
  if (frontier.back().tokens_per_s_per_user < user_tps) return std::nullopt;
  if (frontier.front().tokens_per_s_per_user >= user_tps) return frontier.front().tokens_per_s_per_gpu;
  for (std::size_t i = 1; i < frontier.size(); ++i) {
    const FrontierPoint& lo = frontier[i - 1];
    const FrontierPoint& hi = frontier[i];
    if (hi.tokens_per_s_per_user < user_tps) continue;
    const double t = (std::log(user_tps) - std::log(lo.tokens_per_s_per_user)) /
                     (std::log(hi.tokens_per_s_per_user) - std::log(lo.tokens_per_s_per_user));
    return std::exp(std::log(lo.tokens_per_s_per_gpu) +
                    t * (std::log(hi.tokens_per_s_per_gpu) - std::log(lo.tokens_per_s_per_gpu)));
  }
  return std::nullopt;
}

}  // namespace moesim::obs
