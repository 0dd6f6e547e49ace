// Expert placement over EP ranks: which expert each slot of each rank holds.
//
// contiguous: slot s holds expert s (rank r holds a contiguous block); with
//   redundant slots, the extra slots replicate experts 0, 1, ... in order.
// EPLB (in the spirit of DeepSeek's eplb.py, without its node-level
//   hierarchy): given a load per expert (observed, or the routing model's
//   popularity), replicate: each redundant slot goes to the expert with the
//   highest load per replica; pack: replicas in decreasing load-per-replica
//   order go to the rank with the least load among those with a free slot
//   (ties: lower rank). A token of a replicated expert goes to one replica,
//   the replicas sharing the expert's tokens evenly.
// Slots per rank: ceil((E + R) / ep) for the first (E + R) % ep ranks (all of
// them when it divides), one fewer for the rest.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace moesim {

struct ExpertPlacement {
  int experts = 0;
  int ranks = 0;
  std::vector<int> slot_expert;         // per slot: the expert it holds
  std::vector<int> slot_rank;           // per slot: its rank
  std::vector<int> rank_begin;          // slots of rank r: [rank_begin[r], rank_begin[r+1])
  std::vector<int> replica_begin;       // replicas of expert e: replica_slots[replica_begin[e] .. replica_begin[e+1])
  std::vector<int> replica_slots;

  [[nodiscard]] int slots() const { return static_cast<int>(slot_expert.size()); }
  [[nodiscard]] int replicas(int e) const { return replica_begin[e + 1] - replica_begin[e]; }
  [[nodiscard]] int replica_slot(int e, int i) const { return replica_slots[replica_begin[e] + i]; }
  [[nodiscard]] int rank_slots(int r) const { return rank_begin[r + 1] - rank_begin[r]; }
};

// Throws std::invalid_argument when ranks > experts + redundant or an input is out of range.
ExpertPlacement contiguous_placement(int experts, int ranks, int redundant);
ExpertPlacement eplb_placement(std::span<const double> load, int ranks, int redundant);

// Expected load per rank (Σ over its slots of load[e] / replicas(e)).
std::vector<double> rank_loads(const ExpertPlacement& p, std::span<const double> load);

}  // namespace moesim
