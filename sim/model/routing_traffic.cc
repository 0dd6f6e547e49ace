#include "sim/model/routing_traffic.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace moesim {

int MoeLayerTraffic::distinct_experts() const {
  int n = 0;
  for (const std::int64_t c : expert_tokens) n += c > 0 ? 1 : 0;
  return n;
}

std::vector<ExpertPlacement> make_placements(const ForwardPass& fp, const RoutingModel& routing, bool eplb) {
  std::vector<ExpertPlacement> out;
  if (!fp.model->moe) return out;
  const int E = fp.model->moe->routed_experts;
  const int ranks = fp.ep_mode ? fp.plan.ep : 1;
  const int redundant = fp.ep_mode ? fp.plan.redundant_experts : 0;
  for (int l = 0; l < fp.moe_layers; ++l) {
    if (eplb && fp.ep_mode) {
      out.push_back(eplb_placement(routing.inclusion(l), ranks, redundant));  // expected tokens, not selection odds
    } else {
      out.push_back(contiguous_placement(E, ranks, redundant));
    }
  }
  return out;
}

DedupRatios dedup_ratios(const RoutingModel& routing, const std::vector<ExpertPlacement>& placements) {
  constexpr std::int64_t kSample = 4096;
  const int k = routing.top_k();
  std::vector<std::uint16_t> choices(static_cast<std::size_t>(kSample * k));
  DedupRatios out;
  for (int l = 0; l < static_cast<int>(placements.size()); ++l) {
    const ExpertPlacement& p = placements[static_cast<std::size_t>(l)];
    Rng rng = routing.stream(l, kDedupSampleStep);
    routing.draw_tokens(l, rng, kSample, choices);
    std::vector<double> copies(static_cast<std::size_t>(p.ranks), 0.0), distinct(copies);
    std::vector<std::int64_t> mark(static_cast<std::size_t>(p.ranks), -1);
    std::vector<std::uint32_t> rr(static_cast<std::size_t>(p.experts), 0);
    for (std::int64_t t = 0; t < kSample; ++t) {
      for (int j = 0; j < k; ++j) {
        const int e = choices[static_cast<std::size_t>(t * k + j)];
        std::uint32_t& next = rr[static_cast<std::size_t>(e)];  // round robin over the replicas
        const int slot = p.replica_slot(e, static_cast<int>(next));
        next = next + 1 == static_cast<std::uint32_t>(p.replicas(e)) ? 0 : next + 1;
        const auto r = static_cast<std::size_t>(p.slot_rank[static_cast<std::size_t>(slot)]);
        copies[r] += 1;
        if (mark[r] != t) {
          mark[r] = t;
          distinct[r] += 1;
        }
      }
    }
    std::vector<double> ratio(static_cast<std::size_t>(p.ranks), 1.0);
    for (std::size_t r = 0; r < ratio.size(); ++r) ratio[r] = copies[r] > 0 ? distinct[r] / copies[r] : 1.0;
    out.push_back(std::move(ratio));
  }
  return out;
}

namespace {

std::int64_t routed_tokens(const ForwardPass& fp) {
  if (!fp.ep_mode) return fp.batch.tokens();  // TP-MoE: the batch is routed once, every GPU sees it
  std::int64_t n = 0;
  for (const auto t : fp.tokens.owned_tokens) n += t;
  return n;
}

}  // namespace

bool MoeRouter::needs_dedup_ratios(const ForwardPass& fp, const RoutingModel& routing, TrafficOptions opts) {
  return fp.ep_mode && fp.options.dedup && routed_tokens(fp) * routing.top_k() > opts.per_token_limit;
}

MoeRouter::MoeRouter(const ForwardPass& fp, const RoutingModel& routing, std::vector<ExpertPlacement> placements,
                     TrafficOptions opts, std::shared_ptr<const DedupRatios> dedup)
    : routing_(routing),
      placements_(std::move(placements)),
      ep_mode_(fp.ep_mode),
      dedup_(fp.options.dedup),
      gpus_(fp.tokens.gpus),
      moe_tp_(fp.ep_mode ? fp.plan.moe_tp() : fp.tokens.gpus),
      top_k_(routing.top_k()),
      dispatch_copy_(fp.dispatch_bytes_per_copy),
      combine_copy_(fp.combine_bytes_per_copy) {
  if (ep_mode_) {
    owned_ = fp.tokens.owned_tokens;
  } else {
    owned_.assign(static_cast<std::size_t>(gpus_), 0);
    owned_[0] = fp.batch.tokens();  // TP-MoE: the batch is routed once, every GPU sees it
  }
  routed_tokens_ = routed_tokens(fp);
  per_token_ = routed_tokens_ * top_k_ <= opts.per_token_limit;
  if (ep_mode_ && static_cast<int>(placements_.size()) != fp.moe_layers)
    throw std::invalid_argument("MoeRouter: one placement per MoE layer expected");
  // Distinct-token ratio per rank for the aggregate path (group-limited routing makes a token's experts
  // cluster on few ranks, which no closed form here captures).
  if (needs_dedup_ratios(fp, routing, opts)) {
    dedup_ratio_ = dedup ? std::move(dedup) : std::make_shared<const DedupRatios>(dedup_ratios(routing, placements_));
    if (static_cast<int>(dedup_ratio_->size()) != fp.moe_layers)
      throw std::invalid_argument("MoeRouter: one dedup ratio vector per MoE layer expected");
  }
}

void MoeRouter::size(MoeLayerTraffic& out, int moe_layer) const {
  const auto G = static_cast<std::size_t>(gpus_);
  out.gpus = gpus_;
  out.per_token = per_token_;
  out.gpu_slot_tokens.resize(G);
  out.gpu_rows.assign(G, 0);
  out.expert_tokens.assign(static_cast<std::size_t>(routing_.experts()), 0);
  out.dispatch.assign(G * G, 0.0);
  out.combine.assign(G * G, 0.0);
  for (std::size_t g = 0; g < G; ++g) {
    const std::size_t n = ep_mode_ ? static_cast<std::size_t>(placement(moe_layer).rank_slots(static_cast<int>(g) / moe_tp_))
                                   : static_cast<std::size_t>(routing_.experts());
    out.gpu_slot_tokens[g].assign(n, 0);
  }
}

void MoeRouter::route(int moe_layer, std::uint64_t step, MoeLayerTraffic& out) {
  size(out, moe_layer);
  if (per_token_) {
    route_tokens(moe_layer, step, out);
  } else {
    route_counts(moe_layer, step, out);
  }
  for (std::size_t g = 0; g < out.gpu_rows.size(); ++g) {
    std::int64_t s = 0;
    for (const auto t : out.gpu_slot_tokens[g]) s += t;
    out.gpu_rows[g] = s;
  }
}

void MoeRouter::route_tokens(int moe_layer, std::uint64_t step, MoeLayerTraffic& out) {
  Rng rng = routing_.stream(moe_layer, step);
  const auto k = static_cast<std::size_t>(top_k_);
  choices_.resize(static_cast<std::size_t>(routed_tokens_) * k);
  routing_.draw_tokens(moe_layer, rng, routed_tokens_, choices_);
  const auto G = static_cast<std::size_t>(gpus_);
  if (!ep_mode_) {
    for (const std::uint16_t e : choices_) out.expert_tokens[e] += 1;
    for (std::size_t g = 0; g < G; ++g) out.gpu_slot_tokens[g] = out.expert_tokens;
    return;
  }
  const ExpertPlacement& p = placement(moe_layer);
  slot_tokens_.assign(static_cast<std::size_t>(p.slots()), 0);
  rr_.assign(static_cast<std::size_t>(p.experts), 0);
  mark_.assign(G, 0);
  copies_.assign(G * G, 0);
  std::uint32_t stamp = 0;
  std::size_t t = 0;
  for (std::size_t s = 0; s < G; ++s) {
    for (std::int64_t i = 0; i < owned_[s]; ++i, ++t) {
      ++stamp;
      for (std::size_t j = 0; j < k; ++j) {
        const int e = choices_[t * k + j];
        out.expert_tokens[static_cast<std::size_t>(e)] += 1;
        // Round robin over the replicas (a wrapping counter: the same sequence as count % replicas, no division).
        std::uint32_t& next = rr_[static_cast<std::size_t>(e)];
        const int slot = p.replica_slot(e, static_cast<int>(next));
        next = next + 1 == static_cast<std::uint32_t>(p.replicas(e)) ? 0 : next + 1;
        slot_tokens_[static_cast<std::size_t>(slot)] += 1;
        const int rank = p.slot_rank[static_cast<std::size_t>(slot)];
        for (int x = 0; x < moe_tp_; ++x) {
          const auto d = static_cast<std::size_t>(rank * moe_tp_ + x);
          if (dedup_) {
            if (mark_[d] == stamp) continue;
            mark_[d] = stamp;
          }
          copies_[s * G + d] += 1;
        }
      }
    }
  }
  for (std::size_t s = 0; s < G; ++s) {
    for (std::size_t d = 0; d < G; ++d) {
      const double c = static_cast<double>(copies_[s * G + d]);
      out.dispatch[s * G + d] = c * dispatch_copy_;
      out.combine[d * G + s] = c * combine_copy_;
    }
  }
  for (std::size_t g = 0; g < G; ++g) {
    const int r = static_cast<int>(g) / moe_tp_;
    auto& v = out.gpu_slot_tokens[g];
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = slot_tokens_[static_cast<std::size_t>(p.rank_begin[static_cast<std::size_t>(r)]) + i];
  }
}

void MoeRouter::route_counts(int moe_layer, std::uint64_t step, MoeLayerTraffic& out) {
  Rng rng = routing_.stream(moe_layer, step);
  routing_.draw_counts(moe_layer, rng, routed_tokens_, out.expert_tokens);
  const auto G = static_cast<std::size_t>(gpus_);
  if (!ep_mode_) {
    for (std::size_t g = 0; g < G; ++g) out.gpu_slot_tokens[g] = out.expert_tokens;
    return;
  }
  const ExpertPlacement& p = placement(moe_layer);
  slot_tokens_.assign(static_cast<std::size_t>(p.slots()), 0);
  for (int e = 0; e < p.experts; ++e) {
    const std::int64_t c = out.expert_tokens[static_cast<std::size_t>(e)];
    const int n = p.replicas(e);
    for (int i = 0; i < n; ++i) slot_tokens_[static_cast<std::size_t>(p.replica_slot(e, i))] = c / n + (i < c % n ? 1 : 0);
  }
  rank_copies_.assign(static_cast<std::size_t>(p.ranks), 0);
  for (int s = 0; s < p.slots(); ++s)
    rank_copies_[static_cast<std::size_t>(p.slot_rank[static_cast<std::size_t>(s)])] += slot_tokens_[static_cast<std::size_t>(s)];
  const double total = static_cast<double>(routed_tokens_);
  for (std::size_t d = 0; d < G; ++d) {
    const auto r = d / static_cast<std::size_t>(moe_tp_);
    double copies = static_cast<double>(rank_copies_[r]);
    if (dedup_) copies *= (*dedup_ratio_)[static_cast<std::size_t>(moe_layer)][r];
    for (std::size_t s = 0; s < G; ++s) {
      const double c = copies * static_cast<double>(owned_[s]) / total;
      out.dispatch[s * G + d] = c * dispatch_copy_;
      out.combine[d * G + s] = c * combine_copy_;
    }
  }
  for (std::size_t g = 0; g < G; ++g) {
    const int r = static_cast<int>(g) / moe_tp_;
    auto& v = out.gpu_slot_tokens[g];
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = slot_tokens_[static_cast<std::size_t>(p.rank_begin[static_cast<std::size_t>(r)]) + i];
  }
}

std::vector<double> tp_collective_bytes(const CommDecl& c, const TokenLayout& tl, int group_size) {
  const auto G = static_cast<std::size_t>(tl.gpus);
  std::vector<double> m(G * G, 0.0);
  const bool gather = c.kind == CommKind::kAttnAllGather || c.kind == CommKind::kFfnAllGather;
  for (std::size_t i = 0; i < G; ++i) {
    const std::size_t base = i / static_cast<std::size_t>(group_size) * static_cast<std::size_t>(group_size);
    for (std::size_t j = base; j < base + static_cast<std::size_t>(group_size); ++j) {
      if (j == i) continue;
      const auto owner = gather ? i : j;
      m[i * G + j] = static_cast<double>(tl.owned_tokens[owner]) * c.bytes_per_token;
    }
  }
  return m;
}

}  // namespace moesim
