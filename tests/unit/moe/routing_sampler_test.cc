// The per-token sampler against the exact law it implements (routing.h): every
// pick in proportion to p over the untaken experts of the allowed groups.
// Small cases are enumerated exactly and compared with 200,000 draws.
#include "sim/model/routing_sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <stdexcept>
#include <vector>

namespace moesim {
namespace {

struct Case {
  std::vector<double> p;
  int groups, topk_groups, top_k;
};

// Exact probability of every ordered pick sequence (the law, enumerated).
void enumerate(const Case& c, std::vector<int>& seq, double prob, std::map<std::vector<int>, double>& out) {
  if (static_cast<int>(seq.size()) == c.top_k) {
    out[seq] += prob;
    return;
  }
  const int E = static_cast<int>(c.p.size());
  const int gs = E / c.groups;
  std::vector<bool> chosen(static_cast<std::size_t>(c.groups), false);
  int nchosen = 0;
  for (const int e : seq) {
    if (!chosen[static_cast<std::size_t>(e / gs)]) ++nchosen;
    chosen[static_cast<std::size_t>(e / gs)] = true;
  }
  const bool closed = c.topk_groups < c.groups && nchosen == c.topk_groups;
  auto allowed = [&](int e) {
    return std::find(seq.begin(), seq.end(), e) == seq.end() && (!closed || chosen[static_cast<std::size_t>(e / gs)]);
  };
  double mass = 0;
  for (int e = 0; e < E; ++e) mass += allowed(e) ? c.p[static_cast<std::size_t>(e)] : 0.0;
  for (int e = 0; e < E; ++e) {
    if (!allowed(e) || !(c.p[static_cast<std::size_t>(e)] > 0)) continue;
    seq.push_back(e);
    enumerate(c, seq, prob * c.p[static_cast<std::size_t>(e)] / mass, out);
    seq.pop_back();
  }
}

// Per pick position and expert: exact probability vs the frequency in n draws, within 5 sd (+ 1 count).
void expect_law(const Case& c, std::uint64_t seed, int n = 200000) {
  std::map<std::vector<int>, double> law;
  std::vector<int> seq;
  enumerate(c, seq, 1.0, law);
  const auto E = c.p.size();
  const auto k = static_cast<std::size_t>(c.top_k);
  std::vector<double> exact(k * E, 0.0), seen(k * E, 0.0);
  for (const auto& [s, q] : law) {
    for (std::size_t j = 0; j < k; ++j) exact[j * E + static_cast<std::size_t>(s[j])] += q;
  }
  const TokenSampler sampler(c.p, c.groups, c.topk_groups, c.top_k);
  Rng rng(seed);
  std::vector<std::uint16_t> out(k);
  std::map<std::vector<int>, double> seqs;
  for (int t = 0; t < n; ++t) {
    sampler.draw(rng, out.data());
    std::vector<int> s(out.begin(), out.end());
    for (std::size_t j = 0; j < k; ++j) seen[j * E + out[j]] += 1;
    seqs[s] += 1;
  }
  for (std::size_t j = 0; j < k; ++j) {
    for (std::size_t e = 0; e < E; ++e) {
      const double q = exact[j * E + e];
      const double sd = std::sqrt(n * q * (1 - q));
      EXPECT_NEAR(seen[j * E + e], n * q, 5 * sd + 1) << "pick " << j << ", expert " << e;
    }
  }
  // Whole sequences where they are few enough to count: and nothing outside the law's support.
  for (const auto& [s, count] : seqs) {
    ASSERT_TRUE(law.count(s)) << "a sequence the law never produces";
    if (law.size() <= 400) {
      const double q = law.at(s);
      EXPECT_NEAR(count, n * q, 5 * std::sqrt(n * q * (1 - q)) + 1);
    }
  }
}

TEST(TokenSampler, GroupLimitedSkewedMatchesTheLaw) {
  // 4 groups of 2, at most 2 groups per token, 3 picks; experts 0 and 4 are "heavy" (p >= 2/E).
  expect_law({{0.30, 0.02, 0.15, 0.05, 0.26, 0.08, 0.04, 0.10}, 4, 2, 3}, 1);
}

TEST(TokenSampler, ManyHeavyExpertsAndAZeroMatchLaw) {
  // 12 experts in 4 groups of 3, at most 2 groups, 4 picks; three heavy experts (p >= 2/E), one without mass.
  expect_law({{0.20, 0.01, 0.02, 0.18, 0.03, 0.0, 0.17, 0.04, 0.05, 0.16, 0.06, 0.08}, 4, 2, 4}, 2);
}

TEST(TokenSampler, UngroupedNearlyExhaustiveMatchesTheLaw) {
  // 7 of 8 uniform experts: late picks reject most proposals, so the direct draw (after 8 rejections) runs often.
  expect_law({std::vector<double>(8, 0.125), 1, 1, 7}, 3, 100000);
}

TEST(TokenSampler, UniformGroupLimitedMatchesTheLaw) {
  // DeepSeek's shape scaled down: 16 experts in 8 groups of 2, 4 groups per token, 5 picks.
  expect_law({std::vector<double>(16, 1.0 / 16), 8, 4, 5}, 4);
}

TEST(TokenSampler, ForcedZeroMassPicksStayDistinctAndInTheGroup) {
  // One group allowed per token; group 0 has mass on expert 0 only: a token that starts there must take its two
  // massless experts (the lowest index first among equals), never an expert of another group.
  const std::vector<double> p = {1.0, 0.0, 0.0, 0.5, 0.25, 0.25};
  const TokenSampler s(p, 2, 1, 3);
  Rng rng(5);
  std::uint16_t out[3];
  int forced = 0;
  for (int t = 0; t < 2000; ++t) {
    s.draw(rng, out);
    const int g = out[0] / 3;
    for (const auto e : out) EXPECT_EQ(e / 3, g);
    EXPECT_NE(out[0], out[1]);
    EXPECT_NE(out[1], out[2]);
    EXPECT_NE(out[0], out[2]);
    if (out[0] == 0) {
      ++forced;
      EXPECT_EQ(out[1], 1);
      EXPECT_EQ(out[2], 2);
    }
  }
  EXPECT_NEAR(forced, 2000 * 0.5, 5 * std::sqrt(2000 * 0.25));
}

TEST(TokenSampler, SameSeedSameDraws) {
  const std::vector<double> p = {0.4, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.1};
  const TokenSampler s(p, 4, 2, 3);
  Rng a(9), b(9);
  std::vector<std::uint16_t> x(300), y(300);
  for (int t = 0; t < 100; ++t) {
    s.draw(a, x.data() + 3 * t);
    s.draw(b, y.data() + 3 * t);
  }
  EXPECT_EQ(x, y);
}

TEST(TokenSampler, RejectsInconsistentShapes) {
  using P = std::vector<double>;
  EXPECT_THROW(TokenSampler(P{0.5, 0.5, 0.0}, 2, 1, 1), std::invalid_argument);         // 3 experts in 2 groups
  EXPECT_THROW(TokenSampler(P{0.25, 0.25, 0.25, 0.25}, 2, 1, 3), std::invalid_argument);  // 1 group of 2 < 3 picks
  EXPECT_THROW(TokenSampler(P{0.0, 0.0}, 1, 1, 1), std::invalid_argument);               // no mass
  EXPECT_THROW(TokenSampler(P{0.5, -0.1}, 1, 1, 1), std::invalid_argument);
}

}  // namespace
}  // namespace moesim
