// The synthetic DeepSeek router (sim/model/router_mc.h): inclusion frequencies
// against cases whose answer is known by hand, and the popularity inverse.
#include "sim/model/router_mc.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

#include "sim/model/routing.h"

namespace moesim {
namespace {

SyntheticRouter router(int groups, int topk_groups) {
  SyntheticRouter r;
  r.top_k = 8;
  r.groups = groups;
  r.topk_groups = topk_groups;
  r.logit_sigma = 1.0;
  r.selection_bias.assign(256, 0.0);
  return r;
}

TEST(RouterMc, UnbiasedRouterIsUniform) {
  // 8 of 256: pi = 8/256 = 0.03125 per expert; over N = 20,000 tokens the sd of one frequency is
  // sqrt(0.03125 * 0.96875 / 20000) = 0.00123; 5 sd = 0.0062. The frequencies sum to k = 8 exactly.
  Rng rng(7);
  const auto pi = router_inclusion(router(8, 4), 20000, rng);
  EXPECT_NEAR(std::accumulate(pi.begin(), pi.end(), 0.0), 8.0, 1e-9);
  for (const double x : pi) EXPECT_NEAR(x, 0.03125, 0.0062);
}

TEST(RouterMc, LargeBiasAlwaysWins) {
  // Experts 0..7 (all in group 0) get +10: their biased score (> 10) beats any other (< 1), group 0 has the best
  // group score, so every token picks exactly experts 0..7.
  SyntheticRouter r = router(8, 4);
  for (int e = 0; e < 8; ++e) r.selection_bias[e] = 10;
  Rng rng(1);
  const auto pi = router_inclusion(r, 1000, rng);
  for (int e = 0; e < 256; ++e) EXPECT_DOUBLE_EQ(pi[e], e < 8 ? 1.0 : 0.0) << e;
}

TEST(RouterMc, GroupLimitCapsTheGroups) {
  // One +10 expert in each of groups 0..4 (experts 0, 32, 64, 96, 128): those 5 groups score > 10, the others < 2,
  // but only topk_groups = 4 groups may be used: every token takes exactly 4 of the 5 hot experts
  // (sum of their frequencies 4.0) and fills its other 4 picks from the chosen groups.
  SyntheticRouter r = router(8, 4);
  for (int g = 0; g < 5; ++g) r.selection_bias[g * 32] = 10;
  Rng rng(3);
  const auto pi = router_inclusion(r, 4000, rng);
  double hot = 0, outside = 0;
  for (int g = 0; g < 5; ++g) hot += pi[g * 32];
  for (int e = 5 * 32; e < 256; ++e) outside += pi[e];
  EXPECT_DOUBLE_EQ(hot, 4.0);
  EXPECT_DOUBLE_EQ(outside, 0.0);
  // Without the group limit (1 group), all 5 hot experts are taken by every token.
  SyntheticRouter flat = router(1, 1);
  flat.selection_bias = r.selection_bias;
  const auto pf = router_inclusion(flat, 1000, rng);
  double hot_flat = 0;
  for (int g = 0; g < 5; ++g) hot_flat += pf[g * 32];
  EXPECT_DOUBLE_EQ(hot_flat, 5.0);
}

TEST(RouterMc, PopularityInvertsTheInclusionApproximation) {
  // A skewed inclusion vector (8 hot experts at 0.13, the rest sharing the remaining 8 - 1.04 = 6.96) is mapped to a
  // popularity whose inclusion_probabilities() (routing.h) gives it back.
  std::vector<double> pi(256, 6.96 / 248);
  for (int e = 0; e < 8; ++e) pi[e] = 0.13;
  const auto p = popularity_for_inclusion(pi);
  EXPECT_NEAR(std::accumulate(p.begin(), p.end(), 0.0), 1.0, 1e-12);
  EXPECT_GT(p[0] / p[100], 0.13 / pi[100]);  // successive sampling flattens: the popularity is more skewed
  const auto back = inclusion_probabilities(p, 8);
  for (int e = 0; e < 256; ++e) EXPECT_NEAR(back[e], pi[e], 1e-9 * pi[e] + 1e-12) << e;
}

TEST(RouterMc, RejectsInconsistentRouters) {
  Rng rng(0);
  SyntheticRouter r = router(7, 4);  // 256 experts do not split into 7 groups
  EXPECT_THROW(router_inclusion(r, 10, rng), std::invalid_argument);
  EXPECT_THROW(popularity_for_inclusion(std::vector<double>{0.5, 1.0}), std::invalid_argument);
}

}  // namespace
}  // namespace moesim
