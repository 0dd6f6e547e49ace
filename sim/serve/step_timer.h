// How long one forward step of an instance takes, given what each of its
// attention ranks computes. The serving loop calls this once per step; the
// production implementation (sim/serve/moe_step_timer.*) runs the MoE step
// simulator (op expansion, routing draws, cost model, network model); tests use
// the fixed-time timers below.
#pragma once

#include <cstdint>
#include <span>

#include "sim/core/time.h"

namespace moesim::serve {

// What one attention rank (a data-parallel attention replica of tp GPUs) runs in a step.
struct RankBatch {
  int decode_seqs = 0;               // sequences decoding
  std::int64_t decode_context = 0;   // sum over decoding sequences of cached tokens
  int tokens_per_decode_seq = 1;     // 1 + MTP draft depth (verification of d+1 tokens)
  int prefill_seqs = 0;              // prefill chunks
  std::int64_t prefill_tokens = 0;   // new tokens over the chunks
  std::int64_t prefill_context = 0;  // sum over chunks of the cached prefix before the chunk
  // Attention work of the chunks: sum over chunks of t * (prefix + (t + 1) / 2) query-key pairs.
  double prefill_attention_pairs = 0;

  [[nodiscard]] std::int64_t tokens() const {
    return static_cast<std::int64_t>(decode_seqs) * tokens_per_decode_seq + prefill_tokens;
  }
  [[nodiscard]] bool empty() const { return decode_seqs == 0 && prefill_seqs == 0; }
};

// The time of a step and where it went (the parts are for attribution; they
// need not add up to total when the step overlaps computation and communication).
struct StepTiming {
  Duration total{};
  Duration attention{};
  Duration experts{};      // routed + shared experts and dense FFN
  Duration communication{};  // all-to-all / all-reduce time on the critical path
  Duration other{};        // projections, norms, router, LM head, MTP drafts
  double network_bytes = 0;    // moved between GPUs by the step's collectives (whole instance)
  double scale_out_bytes = 0;  // of those, between scale-up domains (NICs / InfiniBand)
};

class StepTimer {
 public:
  virtual ~StepTimer() = default;
  // ranks.size() == the instance's attention ranks; some may be empty (they still step in lockstep).
  virtual StepTiming time(std::span<const RankBatch> ranks) = 0;
  // Step-simulator evaluations this timer has made so far (0 for test timers).
  [[nodiscard]] virtual long long evaluations() const { return 0; }
};

// Test timer: every step takes `fixed` plus `per_token` x the largest rank's tokens.
class LinearStepTimer final : public StepTimer {
 public:
  LinearStepTimer(Duration fixed, Duration per_token) : fixed_(fixed), per_token_(per_token) {}
  StepTiming time(std::span<const RankBatch> ranks) override {
    std::int64_t most = 0;
    for (const RankBatch& r : ranks) most = r.tokens() > most ? r.tokens() : most;
    StepTiming t;
    t.total = fixed_ + per_token_ * most;
    t.other = t.total;
    return t;
  }

 private:
  Duration fixed_;
  Duration per_token_;
};

}  // namespace moesim::serve
