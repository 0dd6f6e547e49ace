#include "sim/core/rng.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace moesim {

std::uint64_t fnv1a64(std::string_view s) {
  std::uint64_t h = 14695981039346656037ull;
  for (const char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::uint64_t stream_seed(std::uint64_t master_seed, std::string_view name) {
  std::uint64_t st = master_seed ^ fnv1a64(name);
  return splitmix64(st);
}

Rng::Rng(std::uint64_t seed) {
  std::uint64_t st = seed;
  for (auto& w : s_) w = splitmix64(st);
}

namespace {
__extension__ typedef unsigned __int128 U128;  // GCC/Clang built-in, for Lemire's multiply
constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

std::uint64_t Rng::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform01() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Rng::uniform(double a, double b) { return a + (b - a) * uniform01(); }

std::uint64_t Rng::uniform_int(std::uint64_t n) {
  if (n == 0) throw std::invalid_argument("uniform_int: n must be positive");
  U128 m = static_cast<U128>(next_u64()) * n;
  auto low = static_cast<std::uint64_t>(m);
  if (low < n) {
    const std::uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<U128>(next_u64()) * n;
      low = static_cast<std::uint64_t>(m);
    }
  }
  return static_cast<std::uint64_t>(m >> 64);
}

double Rng::exponential(double rate) {
  if (!(rate > 0)) throw std::invalid_argument("exponential: rate must be positive");
  // 1 - u in (0, 1]: log never sees 0.
  return -std::log(1.0 - uniform01()) / rate;
}

double Rng::normal(double mean, double sd) {
  const double u1 = 1.0 - uniform01();  // (0, 1]
  const double u2 = uniform01();
  return mean + sd * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double Rng::lognormal(double mu, double sigma) { return std::exp(normal(mu, sigma)); }

double Rng::gamma(double shape, double scale) {
  if (!(shape > 0) || !(scale > 0)) throw std::invalid_argument("gamma: shape and scale must be positive");
  if (shape < 1.0) {
    // Gamma(a) = Gamma(a + 1) * U^(1/a).
    const double u = 1.0 - uniform01();
    return gamma(shape + 1.0, scale) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x;
    double v;
    do {
      x = normal(0.0, 1.0);
      v = 1.0 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const double u = 1.0 - uniform01();
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v * scale;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v * scale;
  }
}

std::vector<double> Rng::dirichlet(std::span<const double> alpha) {
  std::vector<double> out(alpha.size());
  double sum = 0;
  for (std::size_t i = 0; i < alpha.size(); ++i) sum += (out[i] = gamma(alpha[i]));
  for (auto& x : out) x /= sum;
  return out;
}

double Rng::beta(double a, double b) {
  const double x = gamma(a);
  const double y = gamma(b);
  return x / (x + y);
}

std::uint64_t Rng::binomial(std::uint64_t n, double p) {
  if (!(p >= 0 && p <= 1)) throw std::invalid_argument("binomial: p must be in [0, 1]");
  std::uint64_t offset = 0;
  // Knuth 3.4.1 F: split on the median order statistic until n * p is small.
  while (n > 0 && p > 0 && p < 1 && static_cast<double>(n) * std::min(p, 1 - p) >= 30.0) {
    const std::uint64_t a = 1 + n / 2;
    const std::uint64_t b = n + 1 - a;
    const double y = beta(static_cast<double>(a), static_cast<double>(b));
    if (y >= p) {
      n = a - 1;
      p = p / y;
    } else {
      offset += a;
      n = b - 1;
      p = (p - y) / (1 - y);
    }
  }
  if (n == 0 || p <= 0) return offset;
  if (p >= 1) return offset + n;
  // Inversion (sequential search) with the smaller tail probability.
  const bool flip = p > 0.5;
  const double q = flip ? 1 - p : p;
  const double r = q / (1 - q);
  double pk = std::pow(1 - q, static_cast<double>(n));
  double u = uniform01();
  std::uint64_t k = 0;
  while (u > pk && k < n) {
    u -= pk;
    pk *= r * static_cast<double>(n - k) / static_cast<double>(k + 1);
    ++k;
  }
  return offset + (flip ? n - k : k);
}

std::vector<std::uint64_t> Rng::multinomial(std::uint64_t n, std::span<const double> p) {
  std::vector<std::uint64_t> out(p.size(), 0);
  double rest = 0;
  for (const double x : p) {
    if (!(x >= 0)) throw std::invalid_argument("multinomial: probabilities must be >= 0");
    rest += x;
  }
  if (p.empty() || !(rest > 0)) throw std::invalid_argument("multinomial: probabilities must not all be 0");
  for (std::size_t i = 0; i + 1 < p.size() && n > 0; ++i) {
    const double q = rest > 0 ? std::min(1.0, p[i] / rest) : 0.0;
    out[i] = binomial(n, q);
    n -= out[i];
    rest -= p[i];
  }
  out.back() += n;
  return out;
}

AliasTable::AliasTable(std::span<const double> weights) : prob_(weights.size()), alias_(weights.size()) {
  double sum = 0;
  for (const double w : weights) {
    if (!(w >= 0)) throw std::invalid_argument("AliasTable: weights must be >= 0");
    sum += w;
  }
  if (!(sum > 0)) throw std::invalid_argument("AliasTable: weights must not all be 0");
  const std::size_t n = weights.size();
  std::vector<double> scaled(n);
  std::vector<std::uint32_t> small;
  std::vector<std::uint32_t> large;
  for (std::size_t i = 0; i < n; ++i) {
    scaled[i] = weights[i] * static_cast<double>(n) / sum;
    (scaled[i] < 1.0 ? small : large).push_back(static_cast<std::uint32_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    const std::uint32_t s = small.back();
    small.pop_back();
    const std::uint32_t l = large.back();
    prob_[s] = scaled[s];
    alias_[s] = l;
    scaled[l] = (scaled[l] + scaled[s]) - 1.0;
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  for (const std::uint32_t i : large) prob_[i] = 1.0, alias_[i] = i;
  for (const std::uint32_t i : small) prob_[i] = 1.0, alias_[i] = i;  // rounding leftovers
}

std::size_t AliasTable::sample(Rng& rng) const {
  const std::size_t i = rng.uniform_int(prob_.size());
  return rng.uniform01() < prob_[i] ? i : alias_[i];
}

ZipfTable::ZipfTable(std::size_t n, double s) : cdf_(n) {
  if (n == 0) throw std::invalid_argument("ZipfTable: n must be positive");
  double sum = 0;
  for (std::size_t k = 0; k < n; ++k) cdf_[k] = (sum += std::pow(static_cast<double>(k + 1), -s));
  for (auto& c : cdf_) c /= sum;
  cdf_.back() = 1.0;
}

std::size_t ZipfTable::sample(Rng& rng) const {
  const double u = rng.uniform01();
  return static_cast<std::size_t>(std::upper_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin());
}

double ZipfTable::probability(std::size_t k) const { return k == 0 ? cdf_[0] : cdf_[k] - cdf_[k - 1]; }

}  // namespace moesim
