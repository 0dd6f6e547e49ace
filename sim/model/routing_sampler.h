// Exact per-token draw of a token's top-k experts under the routing model of
// routing.h, without allocation and with few rejections.
//
// The law (routing.h): successive sampling in proportion to the popularity p
// over the experts still allowed: not taken by this token yet and, with a
// group limit, once the token's picks span topk_groups groups, only experts of
// those groups. (Redrawing from p until an allowed expert comes up, as the
// earlier sampler did, has exactly this law.)
//
// The draw, per pick: the experts are split into "heavy" ones (the up to 4
// most popular with p >= 2/E) and "light" ones. A proposal picks the heavy
// part or the light part in proportion to their allowed mass; heavy: the
// untaken allowed heavy experts are scanned (exact, nothing to reject); light:
// one alias-table sample over the light experts of all groups (before the
// group limit binds) or, once it binds, of a chosen group (picked in
// proportion to its light mass) — rejected, and the whole proposal redrawn, if
// that light expert is already taken (at most the taken light mass, a few
// percent). After 8 rejections the pick is drawn directly: a group in
// proportion to its remaining allowed mass, then binary search on the group's
// cumulative popularity with the taken experts' intervals skipped. Each of
// these is exact for the law above, so their mixture is. Floating-point
// rounding can land a direct draw in a taken expert's interval (~1e-16 per
// pick); then, and when no allowed expert has mass left (a popularity with
// zeros), the allowed expert of largest p (lowest index among ties) of that
// group, else of all allowed groups, is picked.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sim/core/rng.h"

namespace moesim {

class TokenSampler {
 public:
  static constexpr int kMaxGroups = 64;
  static constexpr int kMaxTopK = 64;
  static constexpr int kMaxHeavy = 4;

  // p: popularity per expert (>= 0, some > 0; need not sum to 1); experts split into `groups` equal
  // consecutive groups; topk_groups < groups limits a token to that many groups. Throws
  // std::invalid_argument for inconsistent sizes or when the limit leaves fewer than top_k experts.
  TokenSampler(std::span<const double> p, int groups, int topk_groups, int top_k);

  // Writes top_k distinct experts (in pick order) to out[0 .. top_k).
  void draw(Rng& rng, std::uint16_t* out) const;

  [[nodiscard]] int experts() const { return static_cast<int>(p_.size()); }
  [[nodiscard]] int top_k() const { return top_k_; }

 private:
  struct State;
  struct Alias {
    std::vector<double> prob;          // per slot: keep the slot's own expert below this
    std::vector<std::uint16_t> alias;  // per slot: the expert otherwise
  };
  // Writes the alias table of weights w into slots [begin, begin + w.size()) of out.
  static void build_alias(std::span<const double> w, int begin, Alias& out);
  // One sample from slots [begin, begin + n) with one uniform u in [0, 1).
  [[nodiscard]] static int sample_alias(const Alias& a, int begin, int n, double u);

  [[nodiscard]] int propose(Rng& rng, const State& s) const;  // -1: rejected
  [[nodiscard]] int direct(Rng& rng, const State& s) const;
  [[nodiscard]] int fallback(int g, const State& s) const;

  std::vector<double> p_;
  std::vector<std::uint8_t> group_of_;  // per expert
  std::vector<double> start_;        // per expert: Σ p of the lower experts of its group
  std::vector<double> group_mass_;   // per group: Σ p
  std::vector<int> group_positive_;  // per group: experts with p > 0
  std::vector<std::uint16_t> heavy_;  // heavy experts, most popular first
  std::vector<double> heavy_p_;
  std::vector<double> heavy_end_;  // Σ heavy_p_[0 .. h]
  double heavy_mass_ = 0;
  std::vector<std::int8_t> heavy_index_;  // per expert: its index in heavy_, or -1
  Alias light_all_;                   // light experts of every group (heavy ones weigh 0)
  Alias light_group_;                 // per group, slots [g * group_size, (g + 1) * group_size)
  double light_mass_ = 0, inv_light_mass_ = 0;
  std::vector<double> light_group_mass_, inv_light_group_mass_;  // 0 for a group without light mass
  int groups_ = 1;
  int group_size_ = 0;
  int topk_groups_ = 1;
  int top_k_ = 0;
  bool limited_ = false;
};

}  // namespace moesim
