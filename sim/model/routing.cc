#include "sim/model/routing.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numeric>
#include <stdexcept>

#include "sim/config/error.h"
#include "sim/model/routing_trace.h"

namespace moesim {

std::string RoutingSpec::to_string() const {
  switch (kind) {
    case RoutingKind::kUniform: return "uniform";
    case RoutingKind::kZipf: return fmt::format("zipf:{}", parameter);
    case RoutingKind::kDirichlet: return fmt::format("dirichlet:{}", parameter);
    case RoutingKind::kTrace: return "trace:" + trace_file;
    case RoutingKind::kFixed: return "fixed";
  }
  return "?";
}

RoutingSpec parse_routing(std::string_view text, const std::string& where) {
  RoutingSpec s;
  auto fail = [&]() -> void {
    throw ConfigError(where, "",
                      fmt::format("expected uniform, zipf:<s> (s > 0), dirichlet:<c> (c > 0) or trace:<file.json>, "
                                  "got \"{}\"",
                                  text));
  };
  auto number = [&](std::string_view v) {
    double x = 0;
    const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (ec != std::errc() || ptr != v.data() + v.size() || !(x > 0) || !std::isfinite(x)) fail();
    return x;
  };
  if (text == "uniform") return s;
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) fail();
  const std::string_view key = text.substr(0, colon);
  const std::string_view val = text.substr(colon + 1);
  if (key == "zipf") {
    s.kind = RoutingKind::kZipf;
    s.parameter = number(val);
  } else if (key == "dirichlet") {
    s.kind = RoutingKind::kDirichlet;
    s.parameter = number(val);
  } else if (key == "trace") {
    if (val.empty()) fail();
    s.kind = RoutingKind::kTrace;
    s.trace_file = std::string(val);
  } else {
    fail();
  }
  return s;
}

std::vector<double> inclusion_probabilities(std::span<const double> p, int k) {
  const std::size_t n = p.size();
  std::vector<double> pi(n, 0.0);
  std::size_t positive = 0;
  for (const double x : p) positive += x > 0 ? 1 : 0;
  if (static_cast<std::size_t>(k) >= positive) {  // every expert with any mass is always picked
    for (std::size_t e = 0; e < n; ++e) pi[e] = p[e] > 0 ? 1.0 : 0.0;
    return pi;
  }
  auto total = [&](double lambda) {
    double s = 0;
    for (const double x : p) s += x > 0 ? 1 - std::pow(1 - std::min(x, 1.0 - 1e-15), lambda) : 0;
    return s;
  };
  double lo = static_cast<double>(k), hi = static_cast<double>(k);
  while (total(hi) < k) hi *= 2;
  for (int it = 0; it < 100; ++it) {
    const double mid = 0.5 * (lo + hi);
    (total(mid) < k ? lo : hi) = mid;
  }
  double sum = 0;
  for (std::size_t e = 0; e < n; ++e) {
    pi[e] = p[e] > 0 ? 1 - std::pow(1 - std::min(p[e], 1.0 - 1e-15), hi) : 0;
    sum += pi[e];
  }
  for (double& x : pi) x *= k / sum;  // remove the bisection residue
  return pi;
}

RoutingModel::RoutingModel(const ModelSpec& m, const RoutingSpec& spec, std::uint64_t seed,
                           std::span<const int> model_layers)
    : spec_(spec), seed_(seed) {
  if (!m.moe) return;
  experts_ = m.moe->routed_experts;
  top_k_ = m.moe->top_k;
  groups_ = std::max(1, m.moe->groups);
  topk_groups_ = std::max(1, m.moe->topk_groups);
  if (experts_ % groups_ != 0) groups_ = topk_groups_ = 1;
  const auto E = static_cast<std::size_t>(experts_);

  RoutingTrace trace;
  if (spec.kind == RoutingKind::kTrace) trace = load_routing_trace(spec.trace_file, m);

  for (const int layer : model_layers) {
    stream_seeds_.push_back(stream_seed(seed, fmt::format("routing/layer{}", layer)));
    std::vector<double> p(E, 1.0 / static_cast<double>(E));
    switch (spec.kind) {
      case RoutingKind::kUniform: break;
      case RoutingKind::kZipf: {
        // Rank r has weight 1/(r+1)^s; which expert holds which rank is a per-layer permutation.
        Rng rng = Rng::stream(seed, fmt::format("routing/popularity/layer{}", layer));
        std::vector<std::uint32_t> perm(E);
        std::iota(perm.begin(), perm.end(), 0u);
        for (std::size_t i = E - 1; i > 0; --i) std::swap(perm[i], perm[rng.uniform_int(i + 1)]);
        double sum = 0;
        for (std::size_t r = 0; r < E; ++r) sum += 1.0 / std::pow(static_cast<double>(r + 1), spec.parameter);
        for (std::size_t r = 0; r < E; ++r)
          p[perm[r]] = 1.0 / std::pow(static_cast<double>(r + 1), spec.parameter) / sum;
        break;
      }
      case RoutingKind::kDirichlet: {
        Rng rng = Rng::stream(seed, fmt::format("routing/popularity/layer{}", layer));
        const std::vector<double> alpha(E, spec.parameter);
        p = rng.dirichlet(alpha);
        break;
      }
      case RoutingKind::kFixed: {
        if (spec.fixed_popularity.size() != E) throw std::invalid_argument("fixed routing popularity: wrong size");
        const double sum = std::accumulate(spec.fixed_popularity.begin(), spec.fixed_popularity.end(), 0.0);
        for (std::size_t e = 0; e < E; ++e) p[e] = spec.fixed_popularity[e] / sum;
        break;
      }
      case RoutingKind::kTrace: {
        const auto& load = trace.layers.at(layer);
        const double sum = std::accumulate(load.begin(), load.end(), 0.0);
        for (std::size_t e = 0; e < E; ++e) p[e] = load[e] / sum;
        break;
      }
    }
    samplers_.emplace_back(p, groups_, topk_groups_, top_k_);
    popularity_.push_back(std::move(p));
    if (spec.kind != RoutingKind::kUniform && topk_groups_ < groups_) {
      // The group limit changes the marginals of skewed routing: estimate them from per-token draws.
      const int l = static_cast<int>(popularity_.size()) - 1;
      constexpr std::int64_t kSample = 16384;
      std::vector<std::uint16_t> out(static_cast<std::size_t>(kSample * top_k_));
      Rng rng = Rng::stream(seed, fmt::format("routing/inclusion/layer{}", layer));
      draw_tokens(l, rng, kSample, out);
      std::vector<double> pi(E, 0.0);
      for (const auto e : out) pi[e] += 1.0 / kSample;
      inclusion_.push_back(std::move(pi));
    } else if (popularity_.size() > 1 && popularity_.back() == popularity_[popularity_.size() - 2]) {
      inclusion_.push_back(inclusion_.back());  // same popularity as the previous layer (uniform): same result
    } else {
      inclusion_.push_back(inclusion_probabilities(popularity_.back(), top_k_));
    }
  }
}

std::span<const double> RoutingModel::popularity(int moe_layer) const {
  return popularity_.at(static_cast<std::size_t>(moe_layer));
}
std::span<const double> RoutingModel::inclusion(int moe_layer) const {
  return inclusion_.at(static_cast<std::size_t>(moe_layer));
}

Rng RoutingModel::stream(int moe_layer, std::uint64_t step) const {
  std::uint64_t s = stream_seeds_.at(static_cast<std::size_t>(moe_layer)) ^ (step * 0x9E3779B97F4A7C15ull);
  return Rng(splitmix64(s));
}

void RoutingModel::draw_tokens(int moe_layer, Rng& rng, std::int64_t tokens, std::span<std::uint16_t> out) const {
  const TokenSampler& s = samplers_.at(static_cast<std::size_t>(moe_layer));
  for (std::int64_t t = 0; t < tokens; ++t) s.draw(rng, out.data() + t * top_k_);
}

namespace {

// Binomial(n, p): exact (Rng::binomial's inversion) while n·min(p, 1-p) < 30; beyond, where Rng::binomial
// would split on beta draws (a chain of gamma draws), the normal approximation round(np + z·sqrt(np(1-p)))
// clamped to [0, n] (skewness (1-2p)/sqrt(np(1-p)) < 0.19 there).
std::uint64_t binomial_fast(Rng& rng, std::uint64_t n, double p) {
  const double mean = static_cast<double>(n) * p;
  const double var = mean * (1 - p);
  if (static_cast<double>(n) * std::min(p, 1 - p) < 30) return rng.binomial(n, p);
  const double x = std::round(mean + std::sqrt(var) * rng.normal(0, 1));
  return static_cast<std::uint64_t>(std::clamp(x, 0.0, static_cast<double>(n)));
}

}  // namespace

void RoutingModel::draw_counts(int moe_layer, Rng& rng, std::int64_t tokens, std::span<std::int64_t> counts) const {
  if (tokens <= 0) return;
  const auto pi = inclusion(moe_layer);
  const auto n = static_cast<std::uint64_t>(tokens) * static_cast<std::uint64_t>(top_k_);
  // Conditional binomials (Rng::multinomial's method, without allocating), capped at one per token.
  double rest = static_cast<double>(top_k_);
  std::uint64_t left = n;
  std::int64_t overflow = 0;
  for (std::size_t e = 0; e < pi.size() && left > 0; ++e) {
    std::uint64_t c;
    if (e + 1 == pi.size()) {
      c = left;
    } else {
      const double q = rest > 0 ? std::min(1.0, pi[e] / rest) : 0.0;
      c = q > 0 ? binomial_fast(rng, left, q) : 0;
    }
    left -= c;
    rest -= pi[e];
    auto ci = static_cast<std::int64_t>(c);
    if (ci > tokens) {
      overflow += ci - tokens;
      ci = tokens;
    }
    counts[e] += ci;
  }
  // Selections above the cap go to the experts with room, lowest index first (rare: only for π near 1).
  for (std::size_t e = 0; e < pi.size() && overflow > 0; ++e) {
    const std::int64_t room = tokens - counts[e];
    const std::int64_t add = std::min(room, overflow);
    if (add > 0) {
      counts[e] += add;
      overflow -= add;
    }
  }
}

}  // namespace moesim
