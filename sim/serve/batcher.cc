#include "sim/serve/batcher.h"

#include <algorithm>

#include "sim/serve/kv_cache.h"

namespace moesim::serve {

BatchPlan plan_next_batch(std::span<const ResidentSeq> resident, std::span<const WaitingSeq> waiting,
                          int free_blocks, const BatchPolicy& policy) {
  BatchPlan plan;
  const std::size_t n = resident.size();
  std::vector<char> done(n, 0);  // scheduled or preempted
  int budget = policy.limits.max_tokens_per_step;
  int free = free_blocks;
  int victims_from = static_cast<int>(n) - 1;  // the newest resident not yet scheduled or preempted
  int resident_count = static_cast<int>(n);

  // Frees blocks by preempting from the back until `need` fit; false when `self` was preempted.
  auto make_room = [&](std::size_t self, int need) {
    while (need > free) {
      while (victims_from >= 0 && done[static_cast<std::size_t>(victims_from)]) --victims_from;
      if (victims_from < 0) return false;  // cannot happen while self is unscheduled
      const std::size_t v = static_cast<std::size_t>(victims_from);
      done[v] = 1;
      plan.preempted.push_back(resident[v].id);
      free += resident[v].blocks;
      --resident_count;
      if (v == self) return false;
    }
    return true;
  };
  auto schedule = [&](std::size_t i, int tokens, bool prefill) {
    const ResidentSeq& s = resident[i];
    const int need = blocks_for(s.computed + tokens, policy.block_tokens) - s.blocks;
    if (!make_room(i, need)) return;
    done[i] = 1;
    free -= std::max(need, 0);
    budget -= tokens;
    plan.entries.push_back({s.id, tokens, s.computed, std::max(need, 0), prefill, false});
  };

  for (std::size_t i = 0; i < n; ++i) {  // 1. decodes
    if (done[i] || resident[i].remaining_prefill > 0) continue;
    if (budget < policy.decode_tokens) break;
    schedule(i, policy.decode_tokens, false);
  }
  for (std::size_t i = 0; i < n; ++i) {  // 2. continued prefills
    if (done[i] || resident[i].remaining_prefill <= 0) continue;
    if (budget <= 0) break;
    schedule(i, std::min({resident[i].remaining_prefill, policy.limits.chunk_size, budget}), true);
  }
  if (plan.preempted.empty()) {  // 3. admissions
    for (const WaitingSeq& w : waiting) {
      if (resident_count >= policy.limits.max_batch_size || budget <= 0) break;
      const int tokens = std::min({w.prefill, policy.limits.chunk_size, budget});
      const int need = blocks_for(tokens, policy.block_tokens);
      if (need > free - policy.watermark_blocks) break;
      free -= need;
      budget -= tokens;
      ++resident_count;
      plan.entries.push_back({w.id, tokens, 0, need, true, true});
    }
  }
  for (const BatchEntry& e : plan.entries) {
    plan.tokens += e.tokens;
    plan.new_blocks += e.new_blocks;
  }
  return plan;
}

}  // namespace moesim::serve
