#include "sim/serve/step_grid.h"

#include <gtest/gtest.h>

namespace moesim::serve {
namespace {

TEST(StepGrid, BracketInterpolatesAndExtrapolates) {
  const std::vector<double> g = {0, 512, 1024, 2048};
  Bracket b = bracket(g, 768);
  EXPECT_EQ(b.lo, 1);
  EXPECT_EQ(b.hi, 2);
  EXPECT_DOUBLE_EQ(b.w, 0.5);
  b = bracket(g, 0);
  EXPECT_EQ(b.lo, 0);
  EXPECT_DOUBLE_EQ(b.w, 0);
  b = bracket(g, 4096);  // beyond the last point: the last interval, extrapolated
  EXPECT_EQ(b.lo, 2);
  EXPECT_DOUBLE_EQ(b.w, 3.0);
  b = bracket(g, 1024);
  EXPECT_EQ(b.lo, 1);
  EXPECT_DOUBLE_EQ(b.w, 1.0);
}

TEST(StepGrid, GridsCoverTheRangeWithBoundedRatios) {
  const std::vector<double> c = count_grid(1000);
  EXPECT_EQ(c.front(), 1);
  EXPECT_GE(c.back(), 1000);
  for (std::size_t i = 1; i < c.size(); ++i) EXPECT_LE(c[i] / c[i - 1], 2.0);
  for (std::size_t i = 2; i < c.size(); ++i) EXPECT_LE(c[i] / c[i - 1], 1.5);
  const std::vector<double> x = context_grid(3000);
  EXPECT_EQ(x, (std::vector<double>{0, 512, 1024, 2048, 4096}));
}

}  // namespace
}  // namespace moesim::serve
