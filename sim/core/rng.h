// Deterministic random numbers: named streams derived from a master seed, a
// xoshiro256** generator seeded through SplitMix64, and our own
// distributions (no std:: distributions, whose output differs between
// standard libraries; no std::hash, which differs between implementations).
//
// Reproducibility: integer draws (next_u64, uniform_int, categorical/alias,
// Zipf by table, multinomial) and uniform doubles are bit-identical on every
// IEEE-754 platform. Draws that call std::log/exp/sqrt/cos (exponential,
// normal, lognormal, gamma, Dirichlet, binomial) are identical wherever the
// C library's log/exp/cos agree to the last bit (glibc and musl do for the
// arguments these produce in practice; this is a documented limit, not a
// guarantee).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace moesim {

// 64-bit FNV-1a of the bytes of s (fixed, documented hash for stream names).
[[nodiscard]] std::uint64_t fnv1a64(std::string_view s);
// One SplitMix64 step: advances state and returns the next output.
std::uint64_t splitmix64(std::uint64_t& state);
// Seed of the stream `name` under `master_seed`.
[[nodiscard]] std::uint64_t stream_seed(std::uint64_t master_seed, std::string_view name);

// xoshiro256** with the distributions the simulator needs. A value type: copy
// it to fork an identical sequence.
class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  // The named stream of a master seed: Rng::stream(42, "routing/layer7").
  static Rng stream(std::uint64_t master_seed, std::string_view name) { return Rng(stream_seed(master_seed, name)); }

  std::uint64_t next_u64();
  // Uniform in [0, 1) with 53 random bits.
  double uniform01();
  // Uniform in [a, b).
  double uniform(double a, double b);
  // Uniform integer in [0, n), unbiased (Lemire's method). n must be > 0.
  std::uint64_t uniform_int(std::uint64_t n);
  // Exponential with the given rate (mean 1/rate). rate > 0.
  double exponential(double rate);
  // Normal(mean, sd) by the Box-Muller transform (one value per call, no cached pair).
  double normal(double mean, double sd);
  // exp(Normal(mu, sigma)).
  double lognormal(double mu, double sigma);
  // Gamma(shape, scale) by Marsaglia-Tsang (with the shape < 1 boost). shape, scale > 0.
  double gamma(double shape, double scale = 1.0);
  // Dirichlet(alpha) through normalised gammas. Every alpha > 0.
  std::vector<double> dirichlet(std::span<const double> alpha);
  // Binomial(n, p): inversion for small n*p, else Knuth's beta splitting (TAOCP 3.4.1 F); exact.
  std::uint64_t binomial(std::uint64_t n, double p);
  // Splits n items over categories with probabilities p (normalised here) by
  // conditional binomials; the counts sum to n.
  std::vector<std::uint64_t> multinomial(std::uint64_t n, std::span<const double> p);

 private:
  double beta(double a, double b);
  std::uint64_t s_[4];
};

// Walker/Vose alias table: O(1) categorical draws from fixed weights.
class AliasTable {
 public:
  // weights >= 0, at least one > 0.
  explicit AliasTable(std::span<const double> weights);
  [[nodiscard]] std::size_t size() const { return prob_.size(); }
  std::size_t sample(Rng& rng) const;

 private:
  std::vector<double> prob_;
  std::vector<std::uint32_t> alias_;
};

// Zipf over ranks 0..n-1 with P(k) proportional to 1/(k+1)^s, by inverse CDF
// table (binary search), exact and platform-independent up to std::pow.
class ZipfTable {
 public:
  ZipfTable(std::size_t n, double s);
  std::size_t sample(Rng& rng) const;
  [[nodiscard]] double probability(std::size_t k) const;

 private:
  std::vector<double> cdf_;
};

}  // namespace moesim
