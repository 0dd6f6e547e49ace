#include "sim/hw/link_flow_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <vector>

#include "sim/core/rng.h"

namespace moesim {
namespace {

TEST(LinkFlowIndex, MaxFollowsTheLargestRateAsFlowsSlowDownAndLeave) {
  LinkFlowIndex idx(2);
  const std::vector<LinkId> r01{LinkId(0), LinkId(1)};
  const std::vector<LinkId> r0{LinkId(0)};
  idx.add(0, r01, 5.0);
  idx.add(1, r0, 3.0);
  EXPECT_EQ(idx.max_rate(0), 5.0);
  EXPECT_EQ(idx.max_rate(1), 5.0);
  EXPECT_EQ(idx.used(0), 8.0);
  idx.set_rate(0, r01, 5.0, 1.0);  // the largest flow slows down: link 0's maximum is now flow 1's
  EXPECT_EQ(idx.max_rate(0), 3.0);
  EXPECT_EQ(idx.max_rate(1), 1.0);
  EXPECT_EQ(idx.used(0), 4.0);
  idx.remove(1, r0, 3.0);
  EXPECT_EQ(idx.max_rate(0), 1.0);
  idx.remove(0, r01, 1.0);
  EXPECT_EQ(idx.max_rate(0), 0.0);
  EXPECT_EQ(idx.used(0), 0.0);
  EXPECT_TRUE(idx.entries(0).empty());
}

// Random adds, removals and rate changes against a plain model: every link's
// entries and rates match the model's, the maximum is exact and the sum within rounding.
TEST(LinkFlowIndex, MatchesAPlainModelUnderRandomOperations) {
  constexpr std::uint32_t kLinks = 6;
  LinkFlowIndex idx(kLinks);
  Rng rng(11);
  struct F {
    std::vector<LinkId> route;
    double rate;
  };
  std::map<std::uint32_t, F> live;
  std::uint32_t next = 0;
  std::vector<std::uint32_t> free_ids;
  for (int step = 0; step < 6000; ++step) {
    const double u = rng.uniform01();
    if (live.empty() || u < 0.35) {
      F f;
      const std::size_t hops = 1 + rng.uniform_int(3);
      for (std::uint32_t l = 0; l < kLinks && f.route.size() < hops; ++l) {
        if (rng.uniform01() < 0.5) f.route.emplace_back(l);
      }
      if (f.route.empty()) f.route.emplace_back(static_cast<std::uint32_t>(rng.uniform_int(kLinks)));
      // Few distinct values, so equal rates (ties at the maximum) are common.
      f.rate = static_cast<double>(rng.uniform_int(8));
      std::uint32_t id = next;
      if (!free_ids.empty() && rng.uniform01() < 0.7) {
        id = free_ids.back();
        free_ids.pop_back();
      } else {
        ++next;
      }
      idx.add(id, f.route, f.rate);
      live[id] = f;
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng.uniform_int(live.size())));
      if (u < 0.55) {
        idx.remove(it->first, it->second.route, it->second.rate);
        free_ids.push_back(it->first);
        live.erase(it);
      } else {
        const double r = static_cast<double>(rng.uniform_int(8)) + (rng.uniform01() < 0.2 ? 0.5 : 0.0);
        idx.set_rate(it->first, it->second.route, it->second.rate, r);
        it->second.rate = r;
      }
    }
    if (step % 7 == 0 || step > 5990) {
      for (std::uint32_t l = 0; l < kLinks; ++l) {
        std::vector<std::pair<std::uint32_t, double>> want, got;
        double sum = 0, mx = 0;
        for (const auto& [id, f] : live) {
          if (std::find(f.route.begin(), f.route.end(), LinkId(l)) == f.route.end()) continue;
          want.emplace_back(id, f.rate);
          sum += f.rate;
          mx = std::max(mx, f.rate);
        }
        for (std::size_t i = 0; i < idx.entries(l).size(); ++i) {
          got.emplace_back(LinkFlowIndex::flow_of(idx.entries(l)[i]), idx.rates(l)[i]);
        }
        std::sort(want.begin(), want.end());
        std::sort(got.begin(), got.end());
        ASSERT_EQ(got, want) << "link " << l << " step " << step;
        ASSERT_EQ(idx.max_rate(l), mx) << "link " << l << " step " << step;
        ASSERT_NEAR(idx.used(l), sum, 1e-9) << "link " << l << " step " << step;
      }
    }
  }
  idx.recompute();
  for (std::uint32_t l = 0; l < kLinks; ++l) {
    double sum = 0;
    for (const double r : idx.rates(l)) sum += r;
    EXPECT_EQ(idx.used(l), sum);
  }
}

}  // namespace
}  // namespace moesim
