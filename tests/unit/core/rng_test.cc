#include "sim/core/rng.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

namespace moesim {
namespace {

// Reference values computed with an independent Python implementation of
// FNV-1a, SplitMix64 and xoshiro256** (the published algorithms).
TEST(Rng, HashAndGeneratorMatchReferenceImplementations) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  std::uint64_t st = 0;
  EXPECT_EQ(splitmix64(st), 0xe220a8397b1dcdafull);
  Rng r(42);
  EXPECT_EQ(r.next_u64(), 0x15780b2e0c2ec716ull);
  EXPECT_EQ(r.next_u64(), 0x6104d9866d113a7eull);
  EXPECT_EQ(r.next_u64(), 0xae17533239e499a1ull);
  // Stream seed = splitmix64(42 ^ fnv1a64("workload")).
  EXPECT_EQ(stream_seed(42, "workload"), 0x417d882b2031893dull);
}

TEST(Rng, NamedStreamsAreReproducibleAndDistinct) {
  Rng a = Rng::stream(7, "routing/layer7");
  Rng b = Rng::stream(7, "routing/layer7");
  Rng c = Rng::stream(7, "routing/layer8");
  Rng d = Rng::stream(8, "routing/layer7");
  const std::uint64_t va = a.next_u64();
  EXPECT_EQ(va, b.next_u64());
  EXPECT_NE(va, c.next_u64());
  EXPECT_NE(va, d.next_u64());
}

TEST(Rng, UniformIntIsInRangeAndCoversIt) {
  Rng r(1);
  std::vector<int> hits(6, 0);
  for (int i = 0; i < 60000; ++i) ++hits[r.uniform_int(6)];
  // Expected 10,000 each; binomial sd = sqrt(60000 * 1/6 * 5/6) = 91: allow 5 sd.
  for (const int h : hits) EXPECT_NEAR(h, 10000, 460);
}

TEST(Rng, ContinuousDistributionsHaveTheRightMoments) {
  Rng r(2024);
  const int n = 200000;
  double se = 0, sn = 0, sn2 = 0, sl = 0, sg = 0, su = 0;
  for (int i = 0; i < n; ++i) {
    se += r.exponential(4.0);      // mean 1/4
    const double x = r.normal(3.0, 2.0);
    sn += x;
    sn2 += x * x;                  // E[x^2] = 2^2 + 3^2 = 13
    sl += r.lognormal(0.0, 0.5);   // mean exp(0.5^2/2) = 1.1331
    sg += r.gamma(2.5, 2.0);       // mean 2.5 * 2 = 5
    su += r.uniform(-1.0, 3.0);    // mean 1
  }
  EXPECT_NEAR(se / n, 0.25, 0.004);
  EXPECT_NEAR(sn / n, 3.0, 0.02);
  EXPECT_NEAR(sn2 / n, 13.0, 0.15);
  EXPECT_NEAR(sl / n, std::exp(0.125), 0.01);
  EXPECT_NEAR(sg / n, 5.0, 0.05);
  EXPECT_NEAR(su / n, 1.0, 0.01);
  // Small-shape gamma (boost path): mean 0.3.
  double sg2 = 0;
  for (int i = 0; i < n; ++i) sg2 += r.gamma(0.3);
  EXPECT_NEAR(sg2 / n, 0.3, 0.01);
}

TEST(Rng, DirichletSumsToOneWithMeansAlphaOverSum) {
  Rng r(5);
  const std::vector<double> alpha{1.0, 2.0, 7.0};  // means 0.1, 0.2, 0.7
  std::vector<double> mean(3, 0);
  for (int i = 0; i < 20000; ++i) {
    const auto x = r.dirichlet(alpha);
    EXPECT_NEAR(x[0] + x[1] + x[2], 1.0, 1e-12);
    for (int k = 0; k < 3; ++k) mean[k] += x[k] / 20000;
  }
  EXPECT_NEAR(mean[0], 0.1, 0.005);
  EXPECT_NEAR(mean[1], 0.2, 0.005);
  EXPECT_NEAR(mean[2], 0.7, 0.005);
}

TEST(Rng, BinomialMeanAndVarianceBothPaths) {
  Rng r(9);
  // Small n*p: inversion. Bin(20, 0.3): mean 6, var 4.2.
  // Large n*p: beta splitting. Bin(100000, 0.37): mean 37000, var 23310 (sd 152.7).
  for (const auto& [n, p] : {std::pair<std::uint64_t, double>{20, 0.3}, {100000, 0.37}, {1000, 0.9}}) {
    const int trials = 20000;
    double s = 0, s2 = 0;
    for (int i = 0; i < trials; ++i) {
      const auto k = r.binomial(n, p);
      ASSERT_LE(k, n);
      s += static_cast<double>(k);
      s2 += static_cast<double>(k) * static_cast<double>(k);
    }
    const double mean = s / trials;
    const double var = s2 / trials - mean * mean;
    const double nd = static_cast<double>(n);
    EXPECT_NEAR(mean, nd * p, 4 * std::sqrt(nd * p * (1 - p) / trials) + 1e-9) << n << " " << p;
    EXPECT_NEAR(var / (nd * p * (1 - p)), 1.0, 0.05) << n << " " << p;
  }
  EXPECT_EQ(r.binomial(10, 0.0), 0u);
  EXPECT_EQ(r.binomial(10, 1.0), 10u);
}

TEST(Rng, MultinomialSplitsExactlyN) {
  Rng r(11);
  const std::vector<double> p{0.5, 0.25, 0.125, 0.125};
  std::vector<double> tot(4, 0);
  for (int i = 0; i < 2000; ++i) {
    const auto c = r.multinomial(4096, p);
    EXPECT_EQ(std::accumulate(c.begin(), c.end(), std::uint64_t{0}), 4096u);
    for (int k = 0; k < 4; ++k) tot[k] += static_cast<double>(c[k]) / 2000;
  }
  // Means 2048, 1024, 512, 512.
  EXPECT_NEAR(tot[0], 2048, 3);
  EXPECT_NEAR(tot[1], 1024, 3);
  EXPECT_NEAR(tot[3], 512, 3);
  // Unnormalised weights are normalised: {2, 0, 2} never puts anything in the middle.
  const auto c = r.multinomial(100, std::vector<double>{2, 0, 2});
  EXPECT_EQ(c[1], 0u);
  EXPECT_EQ(c[0] + c[2], 100u);
}

TEST(AliasTable, DrawsMatchWeights) {
  Rng r(3);
  const std::vector<double> w{1, 0, 3, 6};  // 0.1, 0, 0.3, 0.6
  AliasTable t(w);
  std::vector<int> hits(4, 0);
  for (int i = 0; i < 100000; ++i) ++hits[t.sample(r)];
  EXPECT_EQ(hits[1], 0);
  EXPECT_NEAR(hits[0], 10000, 500);
  EXPECT_NEAR(hits[2], 30000, 750);
  EXPECT_NEAR(hits[3], 60000, 800);
  EXPECT_THROW(AliasTable(std::vector<double>{0, 0}), std::invalid_argument);
}

TEST(ZipfTable, ProbabilitiesFollowPowerLaw) {
  // n = 4, s = 1: weights 1, 1/2, 1/3, 1/4, sum 25/12 -> P(0) = 12/25 = 0.48, P(3) = 3/25 = 0.12.
  ZipfTable z(4, 1.0);
  EXPECT_NEAR(z.probability(0), 0.48, 1e-12);
  EXPECT_NEAR(z.probability(3), 0.12, 1e-12);
  Rng r(4);
  int zeros = 0;
  for (int i = 0; i < 50000; ++i) {
    const auto k = z.sample(r);
    ASSERT_LT(k, 4u);
    zeros += k == 0;
  }
  EXPECT_NEAR(zeros, 24000, 600);
}

}  // namespace
}  // namespace moesim
