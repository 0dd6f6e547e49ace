// A DeepSeek-V3-style router applied to synthetic logits, to turn a router
// configuration (logit spread, per-expert selection bias) into expert
// popularity. Pure functions.
//
// Per token: logits iid N(0, sigma^2); score_e = sigmoid(logit_e); the
// selection uses score_e + bias_e: the experts are split into `groups`
// contiguous groups, each group scored by the sum of its two largest biased
// scores, the `topk_groups` best groups kept, then the top_k experts by biased
// score among them (DeepSeek-V3's noaux_tc rule; ties go to the lower index).
// This is what validate/kernels/ep_layer.cu's router does on its random inputs:
// x ~ U(-1,1)^7168 and W ~ U(-0.035,0.035) give logits of spread
// sqrt(7168 / 3 * 0.035^2 / 3) = 0.988, nearly independent across experts.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sim/core/rng.h"

namespace moesim {

struct SyntheticRouter {
  int top_k = 8;
  int groups = 8;
  int topk_groups = 4;
  double logit_sigma = 1.0;
  std::vector<double> selection_bias;  // one per expert; its size is the expert count
};

// Fraction of `tokens` tokens that select each expert (the inclusion probability; sums to top_k).
std::vector<double> router_inclusion(const SyntheticRouter& r, std::int64_t tokens, Rng& rng);

// The popularity p (sum 1) whose successive-sampling inclusion under the approximation of
// inclusion_probabilities() (routing.h) is pi: p_e = 1 - (1 - pi_e)^mu with mu chosen so that sum p = 1.
// pi_e must lie in [0, 1) and sum to k.
std::vector<double> popularity_for_inclusion(std::span<const double> pi);

}  // namespace moesim
