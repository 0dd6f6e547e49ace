#include "sim/obs/frontier.h"

#include <gtest/gtest.h>

#include <cmath>

namespace moesim::obs {
namespace {

TEST(ParetoFrontier, DropsDominatedPointsAndSortsByInteractivity) {
  // (user tps, gpu tps): (10, 1000), (20, 800), (15, 700) is dominated by (20, 800), (40, 300).
  const auto f = pareto_frontier({{1, 10, 1000}, {2, 20, 800}, {3, 15, 700}, {4, 40, 300}});
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f[0].tokens_per_s_per_user, 10);
  EXPECT_EQ(f[1].tokens_per_s_per_user, 20);
  EXPECT_EQ(f[2].tokens_per_s_per_user, 40);
}

TEST(ThroughputAtInteractivity, InterpolatesInLogLogSpace) {
  const auto f = pareto_frontier({{1, 10, 1000}, {2, 40, 250}});
  // Between (10, 1000) and (40, 250): log-log line with slope -1, so at 20 tok/s/user: 1000 * 10/20 = 500.
  ASSERT_TRUE(throughput_at_interactivity(f, 20));
  EXPECT_NEAR(*throughput_at_interactivity(f, 20), 500.0, 1e-9);
  // Below the lowest interactivity: the highest-throughput point qualifies.
  EXPECT_DOUBLE_EQ(*throughput_at_interactivity(f, 5), 1000.0);
  // At a measured point exactly.
  EXPECT_NEAR(*throughput_at_interactivity(f, 40), 250.0, 1e-9);
  // Beyond what any point reaches: no answer rather than an extrapolation.
  EXPECT_FALSE(throughput_at_interactivity(f, 41));
}

}  // namespace
}  // namespace moesim::obs
