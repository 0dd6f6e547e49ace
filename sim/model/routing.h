// Expert routing: which experts each token of a step selects, per MoE layer.
//
// A routing model gives every MoE layer a popularity vector p (the chance that
// one selection picks expert e; Σp = 1): uniform; Zipf(s) over a per-layer
// random ranking of the experts; Dirichlet(c·1)-perturbed (per layer); or the
// normalised per-layer expert-load histograms of a routing-trace file
// (routing_trace.h). Popularity is a property of the model and the seed (fixed
// across steps); each step then draws selections from it.
//
// Per token (exact generative model): a token picks top_k distinct experts by
// successive sampling from p without replacement (each pick in proportion to
// p over the experts not yet taken) — the law of top-k over router scores
// log p + Gumbel noise. Group-limited routing (DeepSeek: 8 groups, pick 4):
// once a token's picks span topk_groups groups, its further picks are made in
// proportion to p over the untaken experts of those groups only, so every
// token's experts lie in at most topk_groups groups. (Equivalently: draw from
// p and reject repeats and experts of a further group.) This keeps the limit,
// not DeepSeek's group scoring (sum of the top-2 biased scores), for which
// there are no logits here. The draw itself: routing_sampler.h.
//
// Aggregate (for large steps, where only per-expert counts matter): the
// counts of a layer are one multinomial split of N·k selections with
// probabilities π_e / k, where π_e = 1 − (1 − p_e)^λ is the inclusion
// probability of expert e under successive sampling in the "sample with
// replacement until k distinct" approximation, λ solved so that Σπ = k
// (π = k/E exactly for uniform). APPROXIMATION: the expected counts match
// per-token draws (exactly for uniform, to the λ approximation otherwise) but
// the variance of one expert's count is N·π(1 − π/k) instead of N·π(1 − π):
// ~3% higher for DeepSeek-R1 uniform; counts are capped at N; each conditional
// binomial with n·min(p, 1-p) >= 30 is drawn by its normal approximation. With a group
// limit and skewed p the marginals differ from the λ formula; there π_e is
// instead estimated once per layer from 16,384 per-token draws (a fixed
// relative error of about 1/sqrt(16384·π_e) per expert: 3% at π_e = 0.07).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/config/model_spec.h"
#include "sim/core/rng.h"
#include "sim/model/routing_sampler.h"

namespace moesim {

enum class RoutingKind { kUniform, kZipf, kDirichlet, kTrace, kFixed };

struct RoutingSpec {
  RoutingKind kind = RoutingKind::kUniform;
  double parameter = 0;  // Zipf exponent s, or Dirichlet concentration c per expert
  std::string trace_file;
  // kFixed: one popularity vector (any positive scale) for every layer, given in code (no CLI form; used
  // by `moesim validate` to mirror a measured router's skew).
  std::vector<double> fixed_popularity;
  std::string to_string() const;
};

// "uniform", "zipf:1.2", "dirichlet:0.5", "trace:file.json". ConfigError(where, "", ...) otherwise.
RoutingSpec parse_routing(std::string_view text, const std::string& where);

class RoutingModel {
 public:
  // Popularity of every MoE layer (in execution order, `moe_layers` of them;
  // the model's layer index of each is in `model_layers`, used to key trace
  // files and RNG stream names). Throws ConfigError for a bad trace file.
  RoutingModel(const ModelSpec& m, const RoutingSpec& spec, std::uint64_t seed, std::span<const int> model_layers);

  [[nodiscard]] int experts() const { return experts_; }
  [[nodiscard]] int top_k() const { return top_k_; }
  [[nodiscard]] int groups() const { return groups_; }
  [[nodiscard]] int topk_groups() const { return topk_groups_; }
  [[nodiscard]] int layers() const { return static_cast<int>(popularity_.size()); }
  [[nodiscard]] bool uniform() const { return spec_.kind == RoutingKind::kUniform; }
  [[nodiscard]] const RoutingSpec& spec() const { return spec_; }
  [[nodiscard]] std::span<const double> popularity(int moe_layer) const;
  [[nodiscard]] std::span<const double> inclusion(int moe_layer) const;  // π_e, Σ = k
  // The RNG stream of a layer in a step: Rng::stream(seed, "routing/layer<L>") advanced by the step index.
  [[nodiscard]] Rng stream(int moe_layer, std::uint64_t step) const;

  // Per token: writes top_k distinct experts for each of `tokens` tokens into
  // out (size tokens·top_k).
  void draw_tokens(int moe_layer, Rng& rng, std::int64_t tokens, std::span<std::uint16_t> out) const;
  // Aggregate: adds to counts (size experts) the selections of `tokens` tokens.
  void draw_counts(int moe_layer, Rng& rng, std::int64_t tokens, std::span<std::int64_t> counts) const;

 private:
  RoutingSpec spec_;
  int experts_ = 0, top_k_ = 0, groups_ = 1, topk_groups_ = 1;
  std::uint64_t seed_ = 0;
  std::vector<std::uint64_t> stream_seeds_;
  std::vector<std::vector<double>> popularity_;
  std::vector<std::vector<double>> inclusion_;
  std::vector<TokenSampler> samplers_;  // per layer
};

// π_e = 1 − (1 − p_e)^λ with Σπ = k (bisection on λ). Pure.
std::vector<double> inclusion_probabilities(std::span<const double> p, int k);

}  // namespace moesim
