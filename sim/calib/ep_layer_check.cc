#include "sim/calib/ep_layer_check.h"

#include <fmt/format.h>

#include "sim/config/error.h"
#include "sim/model/router_mc.h"
#include "sim/step/step.h"

namespace moesim::calib {

namespace {

// validate/kernels/ep_layer.cu: x ~ U(-1,1), router weights ~ U(-0.035, 0.035), hidden H:
// logit sd = sqrt(H * (1/3) * (0.035^2 / 3)); every expert's selection bias 0.01 * U(-1,1), plus skew_bias on
// the hot experts.
constexpr double kWeightAmplitude = 0.035;
constexpr double kBiasJitter = 0.01;
constexpr std::int64_t kRouterTokens = 65536;

void check_shape(const EpLayerRecord& r, const ModelSpec& m) {
  auto mismatch = [&](const char* pointer, const char* what, std::int64_t want, std::int64_t got) {
    throw ConfigError(m.file, pointer,
                      fmt::format("the measured layer ({}) has {} {}, this model {}", r.where, what, got, want));
  };
  if (!m.moe) throw ConfigError(m.file, "/architecture/moe", "expected an MoE model for the ep_layer records");
  if (m.hidden != r.hidden) mismatch("/architecture/hidden", "hidden size", m.hidden, r.hidden);
  if (m.moe->routed_experts != r.experts) mismatch("/architecture/moe/routed_experts", "experts", m.moe->routed_experts, r.experts);
  if (m.moe->top_k != r.topk) mismatch("/architecture/moe/top_k", "top-k", m.moe->top_k, r.topk);
  if (m.moe->expert_ffn != r.expert_ffn) mismatch("/architecture/moe/expert_ffn", "expert FFN", m.moe->expert_ffn, r.expert_ffn);
}

}  // namespace

RoutingSpec ep_layer_routing(const EpLayerRecord& r, const ModelSpec& m) {
  RoutingSpec spec;
  if (r.routing == "uniform") return spec;
  check_shape(r, m);
  SyntheticRouter router;
  router.top_k = m.moe->top_k;
  router.groups = m.moe->groups;
  router.topk_groups = m.moe->topk_groups;
  router.logit_sigma = std::sqrt(static_cast<double>(r.hidden) / 3.0 * kWeightAmplitude * kWeightAmplitude / 3.0);
  Rng rng = Rng::stream(0, "validate/ep_layer/router");
  router.selection_bias.resize(static_cast<std::size_t>(r.experts));
  for (std::int64_t e = 0; e < r.experts; ++e)
    router.selection_bias[e] = kBiasJitter * rng.uniform(-1, 1) + (e < r.hot_experts ? r.skew_bias : 0.0);
  const std::vector<double> pi = router_inclusion(router, kRouterTokens, rng);
  spec.kind = RoutingKind::kFixed;
  spec.fixed_popularity = popularity_for_inclusion(pi);
  return spec;
}

EpLayerPrediction predict_ep_layer(const EpLayerRecord& r, const EpLayerSetup& setup, const RoutingSpec& routing) {
  check_shape(r, setup.model);
  if (setup.system.scale_up.domain_gpus < r.gpus)
    throw ConfigError(setup.system.file, "/scale_up/domain_gpus",
                      fmt::format("the measured layer ({}) spans {} GPUs, more than one scale-up domain ({})", r.where,
                                  r.gpus, setup.system.scale_up.domain_gpus));
  StepSetup s;
  s.model = setup.model;
  s.model.layers = 1;
  s.model.leading_dense_layers = 0;
  s.model.mtp_layers = 0;
  if (!r.shared_expert) s.model.moe->shared_experts = 0;
  s.cluster = ClusterSpec{setup.system, 1};
  s.plan.tp = 1;
  s.plan.ep = r.gpus;
  s.batch = BatchShape::decode(r.tokens_per_gpu * r.gpus, 1);
  s.expansion.dispatch = DispatchDtype::kFp8;
  s.expansion.dedup = r.dedup == "per_token_gpu";
  s.expansion.dispatcher = Dispatcher::kStaged;  // NCCL send/recv of ready buffers, as the harness does
  s.routing = routing;
  s.mode = StepMode::kDetailed;
  s.network = NetworkMode::kFluid;
  s.cost_options.cuda_graphs = false;
  s.cost = setup.cost;
  const StepResult res = simulate_step(s);
  EpLayerPrediction p;
  for (const auto& lt : res.layer_types) {
    if (lt.name.rfind("moe", 0) != 0) continue;  // "moe" (the only layer type with one MoE layer)
    const auto& g = lt.seconds_per_layer;
    auto us = [&](OpGroup x) { return g[static_cast<int>(x)] * 1e6; };
    // The harness has no normalisation before the router: take the simulated ffn_norm (the same on every GPU,
    // first in the layer) out of the router phase.
    double norm_us = 0;
    for (const auto& o : lt.ops)
      if (o.name == "ffn_norm") norm_us += o.mean_s * 1e6;
    p.phases_us = {{"router", us(OpGroup::kRouter) - norm_us},
                   {"dispatch", us(OpGroup::kDispatch)},
                   {"experts", us(OpGroup::kExperts) + us(OpGroup::kSharedExpert)},
                   {"combine", us(OpGroup::kCombine)}};
  }
  for (const auto& [name, v] : p.phases_us) p.layer_us += v;
  p.load_max_over_mean = res.expert_load_max_over_mean;
  return p;
}

std::map<std::string, double> measured_phase_groups(const EpLayerRecord& r) {
  auto at = [&](const char* k) {
    const auto it = r.phases_us.find(k);
    return it == r.phases_us.end() ? 0.0 : it->second;
  };
  return {{"router", at("router") + at("permute") + at("unpermute")},
          {"dispatch", at("dispatch")},
          {"experts", at("experts")},
          {"combine", at("combine")},
          {"counts", at("counts")}};
}

}  // namespace moesim::calib
