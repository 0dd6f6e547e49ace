// From a routing draw and an expert placement to what each GPU computes and
// sends in one MoE layer: tokens per local expert slot (the grouped-GEMM
// shapes) and the dispatch / combine byte matrices.
//
// EP mode: GPU g of the stage is in EP rank g / moe_tp; a token owned by GPU s
// that selects expert e goes to one replica of e (round robin over the
// replicas, per expert) and to every GPU of that replica's rank. Dispatch
// sends dispatch_bytes_per_copy from s to each destination GPU, combine
// returns combine_bytes_per_copy. With dedup (DeepEP normal kernels) a token
// counts once per destination GPU however many of its experts live there;
// without (DeepEP low-latency), once per selected expert. Local copies are on
// the diagonal, which the network ignores.
//
// Per-token path (tokens·k <= per_token_limit): exact. Aggregate path: the
// per-expert counts are drawn directly (RoutingModel::draw_counts); each
// replica gets an even share; the tokens a rank receives are split over the
// sources in proportion to their owned tokens; with dedup the copies a rank
// receives are scaled by its distinct-token ratio (distinct tokens / token
// copies), estimated once per layer from 4,096 per-token draws (step index
// kDedupSampleStep of the layer's stream).
//
// TP-MoE mode: every GPU runs every expert hit by the batch (slot = expert);
// no all-to-all.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "sim/model/ops.h"
#include "sim/model/placement.h"
#include "sim/model/routing.h"

namespace moesim {

struct MoeLayerTraffic {
  // Per GPU: tokens of each local slot (the rank's slots, in placement order; TP mode: every expert).
  std::vector<std::vector<std::int64_t>> gpu_slot_tokens;
  std::vector<std::int64_t> gpu_rows;  // Σ of gpu_slot_tokens[g]
  std::vector<std::int64_t> expert_tokens;  // per expert, over the whole batch
  int gpus = 0;
  std::vector<double> dispatch;  // gpus × gpus, row = source
  std::vector<double> combine;   // gpus × gpus, row = source (expert GPU -> token owner)
  bool per_token = false;
  [[nodiscard]] int distinct_experts() const;
  [[nodiscard]] double dispatch_at(int s, int d) const { return dispatch[static_cast<std::size_t>(s * gpus + d)]; }
  [[nodiscard]] double combine_at(int s, int d) const { return combine[static_cast<std::size_t>(s * gpus + d)]; }
};

inline constexpr std::uint64_t kDedupSampleStep = ~std::uint64_t{0};

struct TrafficOptions {
  // Selections per layer (tokens x top_k) up to which routing is drawn per token: 8192 = 1024 DeepSeek tokens.
  // Per-token draws cost ~30 ns per selection (more under skew with a group limit: rejections).
  std::int64_t per_token_limit = 8192;
};

// Per MoE layer, per EP rank: distinct tokens / token copies a rank receives (the aggregate path's dedup
// ratio), estimated from 4,096 per-token draws of the layer (stream step kDedupSampleStep), each token owned
// by no particular source. Depends on the routing model and the placements only, not on the batch. Pure.
using DedupRatios = std::vector<std::vector<double>>;
DedupRatios dedup_ratios(const RoutingModel& routing, const std::vector<ExpertPlacement>& placements);

// Holds the per-layer placements and scratch space; route() allocates nothing
// once the output has been sized by a first call.
class MoeRouter {
 public:
  // placements: one per MoE layer (ignored in TP-MoE mode). dedup: dedup_ratios(routing, placements) when the
  // caller has them (they are batch-independent: a step simulator computes them once for every batch);
  // null: computed here when the aggregate path needs them.
  MoeRouter(const ForwardPass& fp, const RoutingModel& routing, std::vector<ExpertPlacement> placements,
            TrafficOptions opts = {}, std::shared_ptr<const DedupRatios> dedup = nullptr);
  // Whether the router of this forward pass takes the aggregate path with dedup (and so reads dedup ratios).
  static bool needs_dedup_ratios(const ForwardPass& fp, const RoutingModel& routing, TrafficOptions opts = {});
  void route(int moe_layer, std::uint64_t step, MoeLayerTraffic& out);
  [[nodiscard]] const ExpertPlacement& placement(int moe_layer) const { return placements_.at(static_cast<std::size_t>(moe_layer)); }
  [[nodiscard]] bool per_token() const { return per_token_; }

 private:
  void size(MoeLayerTraffic& out, int moe_layer) const;
  void route_tokens(int moe_layer, std::uint64_t step, MoeLayerTraffic& out);
  void route_counts(int moe_layer, std::uint64_t step, MoeLayerTraffic& out);

  const RoutingModel& routing_;
  std::vector<ExpertPlacement> placements_;
  std::shared_ptr<const DedupRatios> dedup_ratio_;  // per layer, per rank (aggregate path with dedup only)
  bool ep_mode_;
  bool dedup_;
  int gpus_;
  int moe_tp_;
  int top_k_;
  double dispatch_copy_;
  double combine_copy_;
  std::vector<std::int64_t> owned_;
  std::int64_t routed_tokens_ = 0;
  bool per_token_ = false;
  // scratch
  std::vector<std::uint16_t> choices_;
  std::vector<std::int64_t> slot_tokens_;
  std::vector<std::uint32_t> rr_;
  std::vector<std::uint32_t> mark_;
  std::vector<std::int64_t> copies_;  // gpus × gpus
  std::vector<std::int64_t> rank_copies_;
};

// The TP collective byte matrix (gpus × gpus, row = source) of a CommDecl
// other than dispatch/combine: a direct reduce-scatter or all-gather inside
// each group of `group_size` consecutive GPUs, bytes_per_token per token owned.
std::vector<double> tp_collective_bytes(const CommDecl& c, const TokenLayout& tl, int group_size);

// The placements of a step: EPLB on the routing model's expected load per expert (the inclusion
// probabilities π_e, which saturate at one per token, unlike the popularity p_e) when `eplb`, else contiguous.
std::vector<ExpertPlacement> make_placements(const ForwardPass& fp, const RoutingModel& routing, bool eplb);

}  // namespace moesim
