#include "sim/obs/metrics.h"

#include <gtest/gtest.h>

#include "sim/serve/mtp.h"
#include "sim/serve/router.h"
#include "sim/config/scenario.h"

namespace moesim {
namespace {

Time at_ms(double ms) { return Time(duration_from_seconds_ceil(ms * 1e-3)); }

TEST(Percentiles, LinearBetweenOrderStatistics) {
  std::vector<double> v = {4, 1, 3, 2, 5};
  const obs::Distribution d = obs::summarize(v);
  EXPECT_EQ(d.count, 5u);
  EXPECT_DOUBLE_EQ(d.mean, 3);
  EXPECT_DOUBLE_EQ(d.p50, 3);
  EXPECT_DOUBLE_EQ(d.p90, 4.6);   // rank 3.6 -> 4 + 0.6
  EXPECT_DOUBLE_EQ(d.p99, 4.96);  // rank 3.96
  EXPECT_DOUBLE_EQ(d.max, 5);
  std::vector<double> none;
  EXPECT_EQ(obs::summarize(none).p99, 0);
}

TEST(Percentiles, CountsEqualTheExpandedSample) {
  const std::vector<std::pair<double, std::int64_t>> counts = {{1, 3}, {2, 1}, {7, 2}, {9, 4}};
  std::vector<double> expanded;
  for (const auto& [v, c] : counts)
    for (int i = 0; i < c; ++i) expanded.push_back(v);
  const obs::Distribution a = obs::summarize_counts(counts);
  const obs::Distribution b = obs::summarize(expanded);
  EXPECT_EQ(a.count, b.count);
  EXPECT_DOUBLE_EQ(a.mean, b.mean);
  EXPECT_DOUBLE_EQ(a.p50, b.p50);
  EXPECT_DOUBLE_EQ(a.p90, b.p90);
  EXPECT_DOUBLE_EQ(a.p99, b.p99);
  EXPECT_DOUBLE_EQ(a.max, b.max);
}

TEST(MetricsCollector, TtftTpotItl) {
  obs::MetricsCollector m;
  m.on_arrival(0, at_ms(0), 100, 4, true);
  m.on_tokens(0, at_ms(50), 1);
  m.on_tokens(0, at_ms(60), 2);  // a speculative step delivering 2 tokens: one gap
  m.on_tokens(0, at_ms(80), 1);
  m.on_finish(0, at_ms(80), 0, 0, Duration::zero());
  const obs::RequestRecord& r = m.records()[0];
  EXPECT_EQ(r.output, 4);
  EXPECT_EQ(r.requested, 4);
  EXPECT_NEAR(r.ttft_s(), 0.050, 1e-12);
  EXPECT_NEAR(r.tpot_s(), 0.030 / 3, 1e-12);
  EXPECT_NEAR(r.e2e_s(), 0.080, 1e-12);
  const auto h = m.itl_histogram();
  ASSERT_EQ(h.size(), 2u);
  EXPECT_NEAR(h[0].first * 1e-12, 0.010, 1e-12);
  EXPECT_EQ(h[0].second, 1);
  EXPECT_NEAR(h[1].first * 1e-12, 0.020, 1e-12);
  EXPECT_EQ(m.itl_count(), 2);
  EXPECT_EQ(m.tokens_emitted(), 4);
}

TEST(Mtp, DefaultAcceptanceReproducesPublishedMeans) {
  // published-measurements.md F2: mean accepted lengths 1.92 / 2.58 / 2.82 for MTP1/2/3.
  EXPECT_NEAR(serve::mean_accepted_tokens(default_mtp_acceptance(1)), 1.92, 1e-12);
  EXPECT_NEAR(serve::mean_accepted_tokens(default_mtp_acceptance(2)), 2.58, 1e-12);
  EXPECT_NEAR(serve::mean_accepted_tokens(default_mtp_acceptance(3)), 2.82, 1e-12);
  const auto p = default_mtp_acceptance(3);
  EXPECT_NEAR(p[1], 0.66 / 0.92, 1e-12);
  EXPECT_NEAR(p[2], 0.24 / 0.66, 1e-12);
}

TEST(Mtp, DrawsMatchTheMean) {
  const auto p = default_mtp_acceptance(3);
  Rng rng(7);
  double sum = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const int k = serve::draw_accepted_tokens(p, rng);
    ASSERT_GE(k, 1);
    ASSERT_LE(k, 4);
    sum += k;
  }
  EXPECT_NEAR(sum / n, 2.82, 0.01);
}

TEST(Router, RoundRobinAndLeastLoaded) {
  std::vector<long long> loads = {3, 1, 1, 5};
  int cursor = 0;
  EXPECT_EQ(serve::pick_instance(RouterPolicy::kLeastLoaded, loads, cursor), 1);
  EXPECT_EQ(serve::pick_instance(RouterPolicy::kRoundRobin, loads, cursor), 0);
  EXPECT_EQ(serve::pick_instance(RouterPolicy::kRoundRobin, loads, cursor), 1);
  EXPECT_EQ(serve::pick_instance(RouterPolicy::kRoundRobin, loads, cursor), 2);
  EXPECT_EQ(serve::pick_instance(RouterPolicy::kRoundRobin, loads, cursor), 3);
  EXPECT_EQ(serve::pick_instance(RouterPolicy::kRoundRobin, loads, cursor), 0);
}

}  // namespace
}  // namespace moesim
