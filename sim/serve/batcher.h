// The continuous-batching policy of one attention rank, as a pure function:
// which resident sequences run this step (decodes first, then chunked
// prefills), which waiting requests are admitted, and who is preempted when the
// KV cache runs out. No engine, no state.
//
// Policy (in the spirit of vLLM's v1 scheduler and TRT-LLM's max-utilisation
// policy):
//  1. every decoding sequence, oldest first, gets decode_tokens (1 + MTP draft
//     depth) tokens while the step's token budget lasts;
//  2. every sequence with prefill left, oldest first, gets a chunk of
//     min(remaining, chunk_size, budget left) tokens;
//  3. waiting requests are admitted first-come-first-served while the batch
//     holds fewer than max_batch_size sequences, budget is left, and the KV
//     blocks of their first chunk fit above the watermark; admission stops at
//     the first request that does not fit, and no request is admitted in a step
//     that preempted;
//  4. a sequence that needs blocks that are not free preempts the newest
//     resident sequence not yet scheduled in this step (possibly itself), which
//     releases all its blocks and will recompute (prefill) prompt + emitted
//     tokens when admitted again.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sim/config/scenario.h"

namespace moesim::serve {

struct ResidentSeq {
  std::uint32_t id = 0;
  int computed = 0;           // tokens in the cache
  int blocks = 0;             // blocks held
  int remaining_prefill = 0;  // > 0: prefill (first or recompute) in progress; 0: decoding
};

struct WaitingSeq {
  std::uint32_t id = 0;
  int prefill = 0;  // tokens to compute before the next token (prompt + tokens already emitted)
};

struct BatchPolicy {
  SchedulerLimits limits;
  int block_tokens = 64;
  int decode_tokens = 1;     // tokens per decode step per sequence: 1 + MTP depth
  int watermark_blocks = 0;  // admission keeps this many blocks free
};

struct BatchEntry {
  std::uint32_t id = 0;
  int tokens = 0;      // new tokens computed this step
  int context = 0;     // tokens already in the cache before this step
  int new_blocks = 0;  // blocks to allocate for this step
  bool prefill = false;
  bool admitted = false;  // came from the waiting queue this step
};

struct BatchPlan {
  std::vector<BatchEntry> entries;     // decodes, then continued prefills, then admissions
  std::vector<std::uint32_t> preempted;  // resident sequences to evict before the step
  int tokens = 0;                      // sum of entry tokens
  int new_blocks = 0;                  // sum of entry new_blocks
  [[nodiscard]] bool empty() const { return entries.empty(); }
};

// `resident` in admission order (oldest first), `waiting` in queue order.
// Guarantees: tokens <= max_tokens_per_step; resident - preempted + admitted
// <= max_batch_size (when it held before); new_blocks - blocks of the
// preempted <= free_blocks.
BatchPlan plan_next_batch(std::span<const ResidentSeq> resident, std::span<const WaitingSeq> waiting,
                          int free_blocks, const BatchPolicy& policy);

}  // namespace moesim::serve
