#include "sim/model/placement.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace moesim {

namespace {

std::vector<int> slots_per_rank(int total, int ranks) {
  std::vector<int> n(static_cast<std::size_t>(ranks), total / ranks);
  for (int r = 0; r < total % ranks; ++r) n[static_cast<std::size_t>(r)] += 1;
  return n;
}

void check(int experts, int ranks, int redundant) {
  if (experts < 1 || ranks < 1 || redundant < 0 || ranks > experts + redundant)
    throw std::invalid_argument("placement: need 1 <= ranks <= experts + redundant slots");
}

// Fills rank_begin / slot_rank from the slot counts and the replica index from slot_expert.
void finish(ExpertPlacement& p, const std::vector<int>& per_rank) {
  p.rank_begin.assign(1, 0);
  p.slot_rank.clear();
  for (int r = 0; r < p.ranks; ++r) {
    p.rank_begin.push_back(p.rank_begin.back() + per_rank[static_cast<std::size_t>(r)]);
    p.slot_rank.insert(p.slot_rank.end(), static_cast<std::size_t>(per_rank[static_cast<std::size_t>(r)]), r);
  }
  std::vector<int> count(static_cast<std::size_t>(p.experts), 0);
  for (const int e : p.slot_expert) ++count[static_cast<std::size_t>(e)];
  p.replica_begin.assign(1, 0);
  for (const int c : count) p.replica_begin.push_back(p.replica_begin.back() + c);
  p.replica_slots.assign(p.slot_expert.size(), 0);
  std::vector<int> fill(p.replica_begin.begin(), p.replica_begin.end() - 1);
  for (int s = 0; s < p.slots(); ++s) p.replica_slots[static_cast<std::size_t>(fill[static_cast<std::size_t>(p.slot_expert[static_cast<std::size_t>(s)])]++)] = s;
}

}  // namespace

ExpertPlacement contiguous_placement(int experts, int ranks, int redundant) {
  check(experts, ranks, redundant);
  ExpertPlacement p;
  p.experts = experts;
  p.ranks = ranks;
  for (int s = 0; s < experts + redundant; ++s) p.slot_expert.push_back(s % experts);
  finish(p, slots_per_rank(experts + redundant, ranks));
  return p;
}

ExpertPlacement eplb_placement(std::span<const double> load, int ranks, int redundant) {
  const int experts = static_cast<int>(load.size());
  check(experts, ranks, redundant);
  for (const double x : load) {
    if (!(x >= 0)) throw std::invalid_argument("placement: loads must be >= 0");
  }
  const auto E = static_cast<std::size_t>(experts);
  // Replicate: each redundant slot to the expert with the highest load per replica (ties: lower index).
  std::vector<int> reps(E, 1);
  for (int i = 0; i < redundant; ++i) {
    std::size_t best = 0;
    for (std::size_t e = 1; e < E; ++e) {
      if (load[e] / reps[e] > load[best] / reps[best]) best = e;
    }
    ++reps[best];
  }
  // Pack: heaviest replicas first, each to the least-loaded rank with a free slot.
  struct Replica {
    double load;
    int expert;
  };
  std::vector<Replica> all;
  for (std::size_t e = 0; e < E; ++e) {
    for (int i = 0; i < reps[e]; ++i) all.push_back({load[e] / reps[e], static_cast<int>(e)});
  }
  std::stable_sort(all.begin(), all.end(), [](const Replica& a, const Replica& b) { return a.load > b.load; });
  const std::vector<int> cap = slots_per_rank(experts + redundant, ranks);
  std::vector<double> rank_load(static_cast<std::size_t>(ranks), 0.0);
  std::vector<std::vector<int>> rank_experts(static_cast<std::size_t>(ranks));
  for (const Replica& r : all) {
    std::size_t best = static_cast<std::size_t>(ranks);
    for (std::size_t k = 0; k < rank_load.size(); ++k) {
      if (static_cast<int>(rank_experts[k].size()) >= cap[k]) continue;
      if (best == rank_load.size() || rank_load[k] < rank_load[best]) best = k;
    }
    rank_load[best] += r.load;
    rank_experts[best].push_back(r.expert);
  }
  ExpertPlacement p;
  p.experts = experts;
  p.ranks = ranks;
  for (auto& re : rank_experts) {
    std::sort(re.begin(), re.end());
    p.slot_expert.insert(p.slot_expert.end(), re.begin(), re.end());
  }
  finish(p, cap);
  return p;
}

std::vector<double> rank_loads(const ExpertPlacement& p, std::span<const double> load) {
  std::vector<double> out(static_cast<std::size_t>(p.ranks), 0.0);
  for (int s = 0; s < p.slots(); ++s) {
    const int e = p.slot_expert[static_cast<std::size_t>(s)];
    out[static_cast<std::size_t>(p.slot_rank[static_cast<std::size_t>(s)])] += load[static_cast<std::size_t>(e)] / p.replicas(e);
  }
  return out;
}

}  // namespace moesim
