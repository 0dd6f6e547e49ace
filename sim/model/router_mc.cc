#include "sim/model/router_mc.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace moesim {

std::vector<double> router_inclusion(const SyntheticRouter& r, std::int64_t tokens, Rng& rng) {
  const int E = static_cast<int>(r.selection_bias.size());
  if (E == 0 || r.groups < 1 || E % r.groups != 0 || r.topk_groups < 1 || r.topk_groups > r.groups ||
      r.top_k < 1 || r.top_k > E / r.groups * r.topk_groups || tokens < 1)
    throw std::invalid_argument("router_inclusion: inconsistent router");
  const int per_group = E / r.groups;
  std::vector<double> count(static_cast<std::size_t>(E), 0.0), sel(static_cast<std::size_t>(E));
  std::vector<double> group_score(static_cast<std::size_t>(r.groups));
  std::vector<int> group_order(static_cast<std::size_t>(r.groups)), cand;
  cand.reserve(static_cast<std::size_t>(E));
  auto by_score = [&](const std::vector<double>& v) {
    return [&v](int a, int b) { return v[a] > v[b] || (v[a] == v[b] && a < b); };
  };
  for (std::int64_t t = 0; t < tokens; ++t) {
    for (int e = 0; e < E; ++e) sel[e] = 1.0 / (1.0 + std::exp(-rng.normal(0.0, r.logit_sigma))) + r.selection_bias[e];
    for (int g = 0; g < r.groups; ++g) {
      double a = -1e300, b = -1e300;  // two largest of the group
      for (int e = g * per_group; e < (g + 1) * per_group; ++e) {
        if (sel[e] > a) b = a, a = sel[e];
        else if (sel[e] > b) b = sel[e];
      }
      group_score[g] = a + (per_group > 1 ? b : 0.0);
    }
    std::iota(group_order.begin(), group_order.end(), 0);
    std::partial_sort(group_order.begin(), group_order.begin() + r.topk_groups, group_order.end(),
                      by_score(group_score));
    cand.clear();
    for (int i = 0; i < r.topk_groups; ++i)
      for (int e = group_order[i] * per_group; e < (group_order[i] + 1) * per_group; ++e) cand.push_back(e);
    std::partial_sort(cand.begin(), cand.begin() + r.top_k, cand.end(), by_score(sel));
    for (int i = 0; i < r.top_k; ++i) count[cand[i]] += 1;
  }
  for (double& c : count) c /= static_cast<double>(tokens);
  return count;
}

std::vector<double> popularity_for_inclusion(std::span<const double> pi) {
  for (const double x : pi)
    if (!(x >= 0 && x < 1)) throw std::invalid_argument("popularity_for_inclusion: pi outside [0, 1)");
  auto total = [&](double mu) {
    double s = 0;
    for (const double x : pi) s += 1 - std::pow(1 - x, mu);
    return s;
  };
  double lo = 0, hi = 1;
  while (total(hi) < 1) hi *= 2;
  for (int it = 0; it < 200; ++it) {
    const double mid = 0.5 * (lo + hi);
    (total(mid) < 1 ? lo : hi) = mid;
  }
  std::vector<double> p(pi.size());
  double sum = 0;
  for (std::size_t e = 0; e < pi.size(); ++e) sum += p[e] = 1 - std::pow(1 - pi[e], hi);
  for (double& x : p) x /= sum;
  return p;
}

}  // namespace moesim
