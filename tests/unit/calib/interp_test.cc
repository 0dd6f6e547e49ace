// Log-space interpolation (sim/calib/interp.h), by hand.
#include "sim/calib/interp.h"

#include <gtest/gtest.h>

#include <vector>

namespace moesim::calib {
namespace {

TEST(Interp, KnownPointsAreReproducedExactly) {
  const std::vector<double> xs = {1, 8, 64, 4096}, ys = {3.25, 1.7, 1.0625, 1.01};
  for (std::size_t i = 0; i < xs.size(); ++i) {
    EXPECT_EQ(*interp_loglog(xs, ys, xs[i]), ys[i]);
    EXPECT_EQ(*interp_logx(xs, ys, xs[i]), ys[i]);
  }
}

TEST(Interp, MidpointsByHand) {
  const std::vector<double> xs = {1, 4}, ys = {1, 16};
  // x = 2 is halfway in ln x: y = 1^0.5 * 16^0.5 = 4 (log-log), (1 + 16) / 2 = 8.5 (log-x).
  EXPECT_NEAR(*interp_loglog(xs, ys, 2), 4.0, 1e-12);
  EXPECT_NEAR(*interp_logx(xs, ys, 2), 8.5, 1e-12);
  // x = 1.5: t = ln 1.5 / ln 4 = 0.29248; y = 16^t = 2.25 (a straight line of slope 2 in log-log).
  EXPECT_NEAR(*interp_loglog(xs, ys, 1.5), 2.25, 1e-12);
}

TEST(Interp, NoValueOutsideTheMeasuredRange) {
  const std::vector<double> xs = {16, 256}, ys = {2, 3};
  EXPECT_FALSE(interp_loglog(xs, ys, 15.99).has_value());
  EXPECT_FALSE(interp_loglog(xs, ys, 257).has_value());
  const std::vector<double> one = {5}, v = {7};
  EXPECT_EQ(*interp_loglog(one, v, 5), 7);
  EXPECT_FALSE(interp_loglog(one, v, 6).has_value());
}

}  // namespace
}  // namespace moesim::calib
