#include "sim/hw/maxmin.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "sim/core/rng.h"

namespace moesim {
namespace {

struct Case {
  std::vector<double> cap;
  std::vector<std::vector<std::uint32_t>> flows;
  std::vector<double> rate_cap;
  std::vector<double> solve() const {
    std::vector<std::uint32_t> off{0};
    std::vector<std::uint32_t> links;
    for (const auto& f : flows) {
      links.insert(links.end(), f.begin(), f.end());
      off.push_back(static_cast<std::uint32_t>(links.size()));
    }
    return max_min_rates(MaxMinProblem{cap, off, links, rate_cap});
  }
};

TEST(MaxMin, TwoFlowsOnOneLinkGetHalfEach) {
  // One 100 B/s link, two flows: 100 / 2 = 50 each.
  const auto r = Case{{100}, {{0}, {0}}, {}}.solve();
  EXPECT_DOUBLE_EQ(r[0], 50);
  EXPECT_DOUBLE_EQ(r[1], 50);
}

TEST(MaxMin, FlowLimitedElsewhereLeavesTheRestToTheOther) {
  // Link 0 (10 B/s) carries flow 0 only; link 1 (100 B/s) carries flows 0 and 1.
  // Flow 0 is held to 10 by link 0, so flow 1 gets 100 - 10 = 90 (not 50).
  const auto r = Case{{10, 100}, {{0, 1}, {1}}, {}}.solve();
  EXPECT_DOUBLE_EQ(r[0], 10);
  EXPECT_DOUBLE_EQ(r[1], 90);
}

TEST(MaxMin, ParkingLot) {
  // Links L0 (1) and L1 (2). Flow 0 crosses both, flow 1 only L0, flow 2 only L1.
  // L0 share 1/2 is the smallest (L1: 2/2 = 1): flows 0 and 1 get 0.5;
  // L1 then has 2 - 0.5 = 1.5 left for flow 2.
  const auto r = Case{{1, 2}, {{0, 1}, {0}, {1}}, {}}.solve();
  EXPECT_DOUBLE_EQ(r[0], 0.5);
  EXPECT_DOUBLE_EQ(r[1], 0.5);
  EXPECT_DOUBLE_EQ(r[2], 1.5);
}

TEST(MaxMin, RateCapsAreRespectedAndLeftoverShared) {
  // 100 B/s link, three flows, flow 0 capped at 20: the other two share 80 -> 40 each.
  const auto r = Case{{100}, {{0}, {0}, {0}}, {20, kNoRateCap, kNoRateCap}}.solve();
  EXPECT_DOUBLE_EQ(r[0], 20);
  EXPECT_DOUBLE_EQ(r[1], 40);
  EXPECT_DOUBLE_EQ(r[2], 40);
  // A cap above the fair share changes nothing: 100 / 2 = 50 < 70.
  const auto r2 = Case{{100}, {{0}, {0}}, {70, kNoRateCap}}.solve();
  EXPECT_DOUBLE_EQ(r2[0], 50);
  EXPECT_DOUBLE_EQ(r2[1], 50);
}

TEST(MaxMin, FlowWithoutLinksGetsItsCapOrInfinity) {
  const auto r = Case{{100}, {{}, {}, {0}}, {5, kNoRateCap, kNoRateCap}}.solve();
  EXPECT_DOUBLE_EQ(r[0], 5);
  EXPECT_EQ(r[1], kNoRateCap);
  EXPECT_DOUBLE_EQ(r[2], 100);
}

TEST(MaxMin, StarAllToAllUplinksAndDownlinks) {
  // 3 GPUs on one switch: uplink i = link i, downlink j = link 3 + j, capacity 90.
  // Flows 0->1, 0->2, 1->2: uplink 0 has 2 flows (45 each), downlink 2 has 2 flows
  // (45 each); 1->2 then meets uplink 1 alone but downlink 2 at 45: all get 45.
  const auto r = Case{{90, 90, 90, 90, 90, 90}, {{0, 4}, {0, 5}, {1, 5}}, {}}.solve();
  EXPECT_DOUBLE_EQ(r[0], 45);
  EXPECT_DOUBLE_EQ(r[1], 45);
  EXPECT_DOUBLE_EQ(r[2], 45);
}

// Random instances: the result must be feasible and every flow must have a
// bottleneck (a saturated link where no flow gets more) -- the definition of max-min.
void check_random_instances(std::size_t max_links, std::size_t max_flows, int trials, std::size_t min_links = 1) {
  Rng rng(77);
  for (int trial = 0; trial < trials; ++trial) {
    Case c;
    const std::size_t nl = min_links + rng.uniform_int(max_links - min_links + 1);
    const std::size_t nf = 1 + rng.uniform_int(max_flows);
    for (std::size_t l = 0; l < nl; ++l) c.cap.push_back(rng.uniform(1, 100));
    for (std::size_t f = 0; f < nf; ++f) {
      std::vector<std::uint32_t> links;
      const std::size_t k = 1 + rng.uniform_int(std::min<std::size_t>(4, nl));
      while (links.size() < k) {
        const auto l = static_cast<std::uint32_t>(rng.uniform_int(nl));
        if (std::find(links.begin(), links.end(), l) == links.end()) links.push_back(l);
      }
      c.flows.push_back(links);
      c.rate_cap.push_back(rng.uniform01() < 0.2 ? rng.uniform(0.5, 30) : kNoRateCap);
    }
    const auto r = c.solve();
    std::vector<double> used(nl, 0), maxr(nl, 0);
    for (std::size_t f = 0; f < nf; ++f) {
      EXPECT_LE(r[f], c.rate_cap[f] * (1 + 1e-12));
      for (const auto l : c.flows[f]) used[l] += r[f], maxr[l] = std::max(maxr[l], r[f]);
    }
    for (std::size_t l = 0; l < nl; ++l) EXPECT_LE(used[l], c.cap[l] * (1 + 1e-9)) << "trial " << trial;
    for (std::size_t f = 0; f < nf; ++f) {
      bool bottleneck = r[f] >= c.rate_cap[f] * (1 - 1e-9);
      for (const auto l : c.flows[f]) {
        bottleneck = bottleneck || (used[l] >= c.cap[l] * (1 - 1e-9) && r[f] >= maxr[l] * (1 - 1e-9));
      }
      EXPECT_TRUE(bottleneck) << "trial " << trial << " flow " << f;
    }
  }
}

// Few links: the solver scans for the bottleneck.
TEST(MaxMin, RandomInstancesAreFeasibleAndEveryFlowHasABottleneck) { check_random_instances(12, 30, 200); }
// More than 512 links: the solver uses its heap.
TEST(MaxMin, RandomLargeInstancesUseTheHeapPathAndStayMaxMin) { check_random_instances(800, 3000, 5, 600); }

}  // namespace
}  // namespace moesim
