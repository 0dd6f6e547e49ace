#include "sim/model/routing_sampler.h"

#include <algorithm>
#include <array>
#include <numeric>
#include <stdexcept>

namespace moesim {

namespace {
constexpr int kProposals = 8;  // rejected proposals before a pick is drawn directly
}  // namespace

// One token's picks so far.
struct TokenSampler::State {
  const std::uint16_t* picks = nullptr;  // in pick order
  int n = 0;
  std::uint64_t allowed = 0;  // groups allowed for the next pick
  std::uint64_t chosen = 0;   // groups holding a pick
  bool closed = false;        // the group limit binds: only chosen groups are allowed
  int nchosen = 0;
  // Written before read (left uninitialised: zeroing them per token would cost more than a pick).
  std::array<std::uint8_t, kMaxGroups> chosen_list;
  std::array<double, kMaxGroups> chosen_end;  // Σ light_group_mass_ over chosen_list[0 .. m]
  double chosen_light = 0;                    // over all chosen groups
  std::array<double, kMaxHeavy> heavy;        // mass of each heavy expert, 0 once taken or disallowed
  std::array<double, kMaxHeavy> heavy_end;    // Σ heavy[0 .. h]
  double heavy_mass = 0;

  [[nodiscard]] bool is_taken(int e) const {
    return std::find(picks, picks + n, static_cast<std::uint16_t>(e)) != picks + n;
  }
};

void TokenSampler::build_alias(std::span<const double> w, int begin, Alias& out) {
  const std::size_t n = w.size();
  const auto at = [&](std::size_t i) { return static_cast<std::size_t>(begin) + i; };
  const auto id = [&](std::size_t i) { return static_cast<std::uint16_t>(at(i)); };
  const double sum = std::accumulate(w.begin(), w.end(), 0.0);
  if (!(sum > 0)) {  // never sampled (a group without light mass)
    for (std::size_t i = 0; i < n; ++i) out.prob[at(i)] = 1.0, out.alias[at(i)] = id(i);
    return;
  }
  const auto heaviest = static_cast<std::size_t>(std::max_element(w.begin(), w.end()) - w.begin());
  std::vector<double> scaled(n);
  std::vector<std::size_t> small, large;
  for (std::size_t i = 0; i < n; ++i) {
    scaled[i] = w[i] * static_cast<double>(n) / sum;
    (scaled[i] < 1.0 ? small : large).push_back(i);
  }
  while (!small.empty() && !large.empty()) {
    const std::size_t s = small.back();
    small.pop_back();
    const std::size_t l = large.back();
    out.prob[at(s)] = scaled[s];
    out.alias[at(s)] = id(l);
    scaled[l] = (scaled[l] + scaled[s]) - 1.0;
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  for (const std::size_t i : large) out.prob[at(i)] = 1.0, out.alias[at(i)] = id(i);
  for (const std::size_t i : small) {  // rounding leftovers; an expert of weight 0 is never sampled
    out.prob[at(i)] = w[i] > 0 ? 1.0 : 0.0;
    out.alias[at(i)] = id(w[i] > 0 ? i : heaviest);
  }
}

int TokenSampler::sample_alias(const Alias& a, int begin, int n, double u) {
  const double x = u * n;
  const int i = std::min(static_cast<int>(x), n - 1);
  const auto slot = static_cast<std::size_t>(begin + i);
  const int self = begin + i;
  const int other = a.alias[slot];
  const int keep = x - i < a.prob[slot] ? 1 : 0;  // arithmetic select: the coin is unpredictable
  return other + keep * (self - other);
}

TokenSampler::TokenSampler(std::span<const double> p, int groups, int topk_groups, int top_k)
    : p_(p.begin(), p.end()), start_(p.size(), 0.0), groups_(groups), topk_groups_(topk_groups), top_k_(top_k) {
  const auto E = static_cast<int>(p.size());
  if (groups < 1 || groups > kMaxGroups || E < 1 || E > 65536 || E % groups != 0 || top_k < 1 || top_k > kMaxTopK)
    throw std::invalid_argument("TokenSampler: need 1..64 groups dividing 1..65536 experts and top_k in 1..64");
  group_size_ = E / groups;
  limited_ = topk_groups >= 1 && topk_groups < groups;
  if (!limited_) topk_groups_ = groups;
  if (topk_groups_ * group_size_ < top_k)
    throw std::invalid_argument("TokenSampler: the group limit leaves fewer than top_k experts");
  const auto G = static_cast<std::size_t>(groups);
  const auto n = static_cast<std::size_t>(E);
  group_mass_.assign(G, 0.0);
  group_positive_.assign(G, 0);
  double total = 0;
  for (std::size_t g = 0; g < G; ++g) {
    double s = 0;
    for (std::size_t j = g * static_cast<std::size_t>(group_size_); j < (g + 1) * static_cast<std::size_t>(group_size_); ++j) {
      const double x = p_[j];
      if (!(x >= 0) || !(x < 1e300)) throw std::invalid_argument("TokenSampler: popularity must be finite and >= 0");
      start_[j] = s;
      s += x;
      group_positive_[g] += x > 0 ? 1 : 0;
    }
    group_mass_[g] = s;
    total += s;
  }
  if (!(total > 0)) throw std::invalid_argument("TokenSampler: popularity must not be all 0");

  // Heavy experts: the most popular, with p >= 2/E of the total (ties: lower index first).
  std::vector<std::uint16_t> order(n);
  std::iota(order.begin(), order.end(), std::uint16_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::uint16_t a, std::uint16_t b) { return p_[a] > p_[b]; });
  heavy_index_.assign(n, -1);
  group_of_.resize(n);
  for (std::size_t e = 0; e < n; ++e) group_of_[e] = static_cast<std::uint8_t>(e / static_cast<std::size_t>(group_size_));
  for (std::size_t i = 0; i < n && heavy_.size() < static_cast<std::size_t>(kMaxHeavy); ++i) {
    if (!(p_[order[i]] >= 2.0 * total / E)) break;
    heavy_index_[order[i]] = static_cast<std::int8_t>(heavy_.size());
    heavy_.push_back(order[i]);
    heavy_p_.push_back(p_[order[i]]);
    heavy_mass_ += p_[order[i]];
    heavy_end_.push_back(heavy_mass_);
  }
  std::vector<double> light(p_);
  for (const auto e : heavy_) light[e] = 0;
  light_all_.prob.assign(n, 0.0);
  light_all_.alias.assign(n, 0);
  light_group_ = light_all_;
  light_mass_ = std::accumulate(light.begin(), light.end(), 0.0);
  inv_light_mass_ = light_mass_ > 0 ? 1.0 / light_mass_ : 0.0;
  build_alias(light, 0, light_all_);
  light_group_mass_.assign(G, 0.0);
  inv_light_group_mass_.assign(G, 0.0);
  for (std::size_t g = 0; g < G; ++g) {
    const auto w = std::span<const double>(light).subspan(g * static_cast<std::size_t>(group_size_),
                                                          static_cast<std::size_t>(group_size_));
    build_alias(w, static_cast<int>(g) * group_size_, light_group_);
    light_group_mass_[g] = std::accumulate(w.begin(), w.end(), 0.0);
    inv_light_group_mass_[g] = light_group_mass_[g] > 0 ? 1.0 / light_group_mass_[g] : 0.0;
  }
}

inline int TokenSampler::propose(Rng& rng, const State& s) const {
  // Branch-light: the heavy/light choice is the only data-dependent branch (mispredictions cost more than the
  // arithmetic here).
  const double light = s.closed ? s.chosen_light : light_mass_;
  double u = rng.uniform01() * (s.heavy_mass + light);
  const auto H = heavy_.size();
  if (u < s.heavy_mass) {
    std::size_t h = 0;
    for (std::size_t i = 0; i < H; ++i) h += s.heavy_end[i] <= u ? 1 : 0;
    if (h >= H || !(s.heavy[h] > 0)) return -1;  // rounding past the end or into a taken expert: redraw
    return heavy_[h];
  }
  u -= s.heavy_mass;
  int c;
  if (!s.closed) {
    c = sample_alias(light_all_, 0, experts(), u * inv_light_mass_);
  } else {
    int j = 0;
    for (int m = 0; m + 1 < s.nchosen; ++m) j += s.chosen_end[static_cast<std::size_t>(m)] <= u ? 1 : 0;
    if (j > 0) u -= s.chosen_end[static_cast<std::size_t>(j - 1)];
    const auto g = s.chosen_list[static_cast<std::size_t>(j)];
    c = sample_alias(light_group_, g * group_size_, group_size_, u * inv_light_group_mass_[g]);
    if (!(inv_light_group_mass_[g] > 0)) return -1;  // rounding into a group without light mass
  }
  return s.is_taken(c) ? -1 : c;
}

int TokenSampler::fallback(int g, const State& s) const {
  auto best_in = [&](int h) {
    int best = -1;
    for (int j = h * group_size_; j < (h + 1) * group_size_; ++j) {
      if (s.is_taken(j)) continue;
      if (best < 0 || p_[static_cast<std::size_t>(j)] > p_[static_cast<std::size_t>(best)]) best = j;
    }
    return best;
  };
  if (g >= 0) {
    const int e = best_in(g);
    if (e >= 0 && p_[static_cast<std::size_t>(e)] > 0) return e;
  }
  int best = -1;
  for (int h = 0; h < groups_; ++h) {
    if (!(s.allowed >> h & 1u)) continue;
    const int e = best_in(h);
    if (e >= 0 && (best < 0 || p_[static_cast<std::size_t>(e)] > p_[static_cast<std::size_t>(best)])) best = e;
  }
  return best;  // exists: the constructor checked that the allowed groups hold at least top_k experts
}

int TokenSampler::direct(Rng& rng, const State& s) const {
  // Remaining mass per group, and the picks in ascending order.
  std::array<double, kMaxGroups> rem{};
  std::array<int, kMaxGroups> left{};
  std::copy(group_mass_.begin(), group_mass_.end(), rem.begin());
  std::copy(group_positive_.begin(), group_positive_.end(), left.begin());
  std::array<std::uint16_t, kMaxTopK> taken{};
  std::copy(s.picks, s.picks + s.n, taken.begin());
  std::sort(taken.begin(), taken.begin() + s.n);
  for (int j = 0; j < s.n; ++j) {
    const int t = taken[static_cast<std::size_t>(j)];
    const auto g = static_cast<std::size_t>(t / group_size_);
    const double pt = p_[static_cast<std::size_t>(t)];
    if (pt > 0) rem[g] = --left[g] == 0 ? 0.0 : std::max(0.0, rem[g] - pt);
  }
  double total = 0;
  for (int h = 0; h < groups_; ++h) total += (s.allowed >> h & 1u) ? rem[static_cast<std::size_t>(h)] : 0.0;
  if (!(total > 0)) return fallback(-1, s);
  double u = rng.uniform01() * total;
  int g = -1;
  for (int h = 0; h < groups_; ++h) {
    if (!(s.allowed >> h & 1u) || !(rem[static_cast<std::size_t>(h)] > 0)) continue;
    g = h;  // the group u falls in, or the last one with mass if rounding carries u past the end
    if (u < rem[static_cast<std::size_t>(h)]) break;
    u -= rem[static_cast<std::size_t>(h)];
  }
  const int b = g * group_size_;
  const int end = b + group_size_;
  double x = u;  // from the group's untaken mass to its full cumulative table
  for (int j = 0; j < s.n; ++j) {
    const int t = taken[static_cast<std::size_t>(j)];
    if (t < b) continue;
    if (t >= end || start_[static_cast<std::size_t>(t)] > x) break;
    x += p_[static_cast<std::size_t>(t)];
  }
  const double* base = start_.data() + b;  // the last expert of the group whose interval starts at or below x
  for (int m = group_size_; m > 1;) {
    const int half = m / 2;
    base = base[half] <= x ? base + half : base;
    m -= half;
  }
  const auto e = static_cast<int>(base - start_.data());
  if (!(p_[static_cast<std::size_t>(e)] > 0) || s.is_taken(e)) return fallback(g, s);
  return e;
}

void TokenSampler::draw(Rng& rng, std::uint16_t* out) const {
  State s;
  s.picks = out;
  s.allowed = groups_ == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << groups_) - 1;
  const auto H = heavy_.size();
  std::copy(heavy_p_.begin(), heavy_p_.end(), s.heavy.begin());
  std::copy(heavy_end_.begin(), heavy_end_.end(), s.heavy_end.begin());
  s.heavy_mass = heavy_mass_;
  for (; s.n < top_k_; ++s.n) {
    int e = -1;
    for (int r = 0; r < kProposals && e < 0; ++r) e = propose(rng, s);
    if (e < 0) e = direct(rng, s);
    out[s.n] = static_cast<std::uint16_t>(e);
    const int h = heavy_index_[static_cast<std::size_t>(e)];
    if (h >= 0) {
      const double x = s.heavy[static_cast<std::size_t>(h)];
      s.heavy[static_cast<std::size_t>(h)] = 0;
      for (auto i = static_cast<std::size_t>(h); i < H; ++i) s.heavy_end[i] -= x;
      s.heavy_mass = std::max(0.0, s.heavy_end[H - 1]);
    }
    const int g = group_of_[static_cast<std::size_t>(e)];
    if (s.chosen >> g & 1u) continue;
    s.chosen |= std::uint64_t{1} << g;
    s.chosen_light += light_group_mass_[static_cast<std::size_t>(g)];
    s.chosen_end[static_cast<std::size_t>(s.nchosen)] = s.chosen_light;
    s.chosen_list[static_cast<std::size_t>(s.nchosen++)] = static_cast<std::uint8_t>(g);
    if (limited_ && s.nchosen == topk_groups_) {  // the limit binds from the next pick on
      s.closed = true;
      s.allowed = s.chosen;
      double mass = 0;
      for (std::size_t i = 0; i < H; ++i) {
        if (!(s.chosen >> group_of_[heavy_[i]] & 1u)) s.heavy[i] = 0;
        s.heavy_end[i] = mass += s.heavy[i];
      }
      s.heavy_mass = mass;
    }
  }
}

}  // namespace moesim
