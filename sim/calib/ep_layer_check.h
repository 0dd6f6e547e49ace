// `moesim validate`'s end-to-end check: each measured EP MoE layer
// (ep_layer_record.h) against the same layer simulated by the step machinery
// (sim/step: op expansion, routing draw, calibrated op costs, fluid network on
// the system's topology), i.e. a composition of the fitted kernels, never fitted
// to these records.
//
// The simulated layer mirrors the harness (validate/kernels/ep_layer.cu): the
// model reduced to one MoE layer without shared expert or MTP; plan tp=1,ep=N on
// one scale-up domain; N x T decode sequences (T per GPU); contiguous expert
// placement; one dispatch row per (token, expert) when the record says
// "per_token_expert"; eager launches (no CUDA graphs); the staged dispatcher
// (ops.h: FP8 quantisation before the permute, regroup after the dispatch, gather
// before the combine, as the harness drives NCCL send/recv); no ffn_norm (the
// harness has none, so its simulated time is taken out of the router phase). Routing: "uniform"
// records use uniform routing; "skewed" records use the popularity that
// router_mc.h's DeepSeek router gives for the harness's logit spread and bias.
// The harness's "counts" phase (row counts exchanged and copied to the host
// before the all-to-all) has no counterpart in the simulator.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sim/calib/ep_layer_record.h"
#include "sim/config/hardware_spec.h"
#include "sim/config/model_spec.h"
#include "sim/cost/cost_model.h"
#include "sim/model/routing.h"

namespace moesim::calib {

struct EpLayerPrediction {
  double layer_us = 0;  // router + dispatch + experts + shared expert + combine, on the GPU that finishes last
  // "router" (router GEMM, top-k, quantisation, permute, unpermute), "dispatch" and "combine" (time blocked waiting
  // for the collective), "experts" (regroup, routed-expert GEMMs, activation, gather).
  std::map<std::string, double> phases_us;
  double load_max_over_mean = 0;  // routed-expert rows of the most loaded GPU over the mean
};

struct EpLayerSetup {
  ModelSpec model;    // the full model; reduced to one MoE layer per prediction
  SystemSpec system;  // its scale-up domain must hold the record's GPUs
  std::shared_ptr<const CostModel> cost;
};

// The routing of a record: uniform, or the skewed popularity from the synthetic router (deterministic).
RoutingSpec ep_layer_routing(const EpLayerRecord& r, const ModelSpec& m);

// ConfigError(model file, "/architecture/...") when the record's layer shape is not the model's.
EpLayerPrediction predict_ep_layer(const EpLayerRecord& r, const EpLayerSetup& setup, const RoutingSpec& routing);

// The measured phases in the prediction's grouping (router = router + permute + unpermute; dispatch; experts;
// combine; counts = the host round trip the simulator does not have).
std::map<std::string, double> measured_phase_groups(const EpLayerRecord& r);

}  // namespace moesim::calib
