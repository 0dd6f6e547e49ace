// Op expansion: one forward pass of a model under a parallel plan, expanded
// into the operations each GPU runs, layer by layer. A pure function of
// (model, precision variant, GPU, plan, batch shape, options).
//
// What it produces is a program per (layer type, GPU): compute ops in the
// order a GPU issues them, interleaved with the sends and waits of the
// collectives that the layer needs. The routed-expert GEMMs are placeholders
// whose per-expert token counts are filled in for each step from the routing
// draw (fill_grouped_gemm); everything else is fixed by the batch shape, so
// the expansion is done once per (batch shape, plan) and reused for every step.
//
// Parallel layout inside one pipeline stage of G = plan.gpus_per_stage() GPUs:
//   - attention: G / tp data-parallel groups of tp GPUs (GPU g is in group
//     g / tp); sequences are dealt round-robin to the groups; heads split by tp;
//     MLA q_a / kv_a projections are replicated across the tp ranks (as in
//     vLLM/SGLang), the MLA latent KV cache is read in full by each rank.
//   - EP mode (ep > 1): after attention, a TP group's tokens are split among
//     its tp ranks (a reduce-scatter when tp > 1): each GPU "owns" a share and
//     routes, dispatches and combines only those; an all-gather restores them
//     after the combine. Expert slots are spread over ep ranks; each rank is
//     moe_tp = G / ep GPUs, each holding a 1/moe_tp slice of its experts.
//     The shared expert runs data-parallel on the owned tokens, during the
//     dispatch (its weights are whole on every GPU here).
//   - TP-MoE mode (ep == 1, only with tp == G): tokens are replicated on all
//     GPUs; every GPU runs the routed experts hit by the batch on a 1/G slice,
//     then an all-reduce. No all-to-all.
//   - dense FFN: dense_tp == tp (sliced, all-reduce) or dense_tp == 1
//     (data-parallel on owned tokens).
//   - all-reduce = reduce-scatter + all-gather, each a direct exchange inside
//     the group (a byte matrix carried by the network model; NVLink SHARP
//     in-switch reduction is not modelled).
// Pipeline stages (pp > 1): one expansion per stage (ExpansionOptions::stage) over that stage's G GPUs and
// its layers (stage_layers in sim/model/plan.h; the MTP layers on the last stage); the embedding runs on
// the first stage only, the final norm, lm_head and sampling on the last only. The step simulator chains
// the stages with a point-to-point send of the activations between them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sim/config/hardware_spec.h"
#include "sim/config/model_spec.h"
#include "sim/model/model_math.h"
#include "sim/model/op.h"
#include "sim/model/plan.h"

namespace moesim {

enum class Phase { kDecode, kPrefill };
const char* phase_name(Phase p);

struct SequenceShape {
  std::int64_t new_tokens = 1;  // tokens computed this step (1 for plain decode)
  std::int64_t context = 0;     // tokens already in the KV cache before this step
};

struct BatchShape {
  Phase phase = Phase::kDecode;
  std::vector<SequenceShape> seqs;

  // `sequences` decoding one token each over `context` cached tokens.
  static BatchShape decode(std::int64_t sequences, std::int64_t context);
  // `sequences` prompts of `tokens` new tokens after a cached prefix of `prefix` tokens.
  static BatchShape prefill(std::int64_t sequences, std::int64_t tokens, std::int64_t prefix = 0);
  [[nodiscard]] std::int64_t tokens() const;
};

// The part of a layer an op's time is reported under.
enum class OpGroup : std::uint8_t {
  kAttention,     // norms, projections, attention core, TP collectives of attention
  kRouter,        // router GEMM, top-k, permute / unpermute
  kDispatch,      // dispatch all-to-all
  kExperts,       // routed-expert grouped GEMMs and activation
  kSharedExpert,  // shared expert(s)
  kCombine,       // combine all-to-all
  kDenseFfn,      // FFN of dense layers and its collectives
  kOther,         // embedding, lm_head, sampling, MTP projection, MoE-TP collectives
};
inline constexpr int kOpGroupCount = 8;
const char* op_group_name(OpGroup g);

// A collective of a layer, carried by the network model. Which GPUs send
// what to whom is computed per step (sim/model/routing_traffic.h for dispatch
// and combine, tp_collective_bytes for the rest).
enum class CommKind : std::uint8_t {
  kDispatch,
  kCombine,
  kAttnReduceScatter,  // after o_proj: partial sums to the token owners (EP mode, tp > 1)
  kAttnAllGather,      // completes the attention all-reduce (dense layers with dense_tp == tp; TP-MoE mode)
  kFfnReduceScatter,   // after a TP-sliced FFN (dense FFN or TP-MoE): partial sums to the owners
  kFfnAllGather,       // owned tokens back to every rank of the TP group
  kPipelineSend,       // activations to the next pipeline stage (reports only; sim/step chains the stages)
};
const char* comm_kind_name(CommKind k);

struct CommDecl {
  CommKind kind;
  OpGroup group;
  double bytes_per_token = 0;  // for the TP collectives: bytes per owned token moved to each peer
};

// One instruction of a GPU's layer program.
struct Instr {
  enum class Type : std::uint8_t { kCompute, kSend, kWait };
  Type type;
  std::uint16_t index;  // into LayerProgram::ops (compute) or LayerProgram::comms (send/wait)
};

struct PlannedOp {
  Op op;
  OpGroup group = OpGroup::kOther;
  bool routed = false;        // a routed-expert op whose shape is filled per step
  double weight_bpp = 0;      // routed GEMMs: weight bytes per parameter
  double in_bytes = 2;        // routed GEMMs: bytes per input activation element
  double bytes_per_row = 0;   // routed copies: bytes moved per routed row (0: the activation's gate+up rule)
};

struct LayerProgram {
  std::vector<PlannedOp> ops;
  std::vector<CommDecl> comms;  // the same list on every GPU of the stage
  std::vector<Instr> seq;
};

// A distinct kind of layer: the model's layers map onto a few of these.
struct LayerType {
  bool moe = false;
  bool mtp = false;  // the MTP module's decoder layer (with its eh_proj)
  AttnLayerKind attn = AttnLayerKind::kFull;
  int span = 0;
  std::string name;  // "moe", "dense", "moe/sliding128", "mtp"
  friend bool operator==(const LayerType&, const LayerType&) = default;
};

// How the MoE all-to-all is driven.
//  kFused: dispatch/combine kernels that move rows straight between the permuted layouts and quantise on the way
//    (DeepEP); the simulator's default.
//  kStaged: a library all-to-all(v) of ready buffers (NCCL; Megatron-Core's all-to-all token dispatcher): the
//    payload is quantised before the permute ("dispatch_quant", FP8/NVFP4 payloads), the received rows are
//    regrouped expert-major and cast to the expert GEMMs' input format ("experts.regroup"), and the expert outputs
//    are gathered back to arrival order before the combine ("experts.gather"). The row-count exchange such
//    dispatchers do before the all-to-all (a host round trip) is not modelled.
enum class Dispatcher { kFused, kStaged };

struct ExpansionOptions {
  KvDtype kv_dtype = KvDtype::kBf16;
  DispatchDtype dispatch = DispatchDtype::kFp8;
  bool dedup = true;  // dispatch/combine count a token once per destination GPU (else once per selected expert)
  Dispatcher dispatcher = Dispatcher::kFused;
  int stage = 0;      // pipeline stage to expand (0 .. plan.pp - 1)
};

// Where each token lives.
struct TokenLayout {
  int gpus = 0;                            // GPUs of the stage
  std::vector<std::int64_t> seqs;          // sequences whose attention each GPU runs (its DP group's)
  std::vector<std::int64_t> group_tokens;  // new tokens of each GPU's attention group
  std::vector<std::int64_t> owned_tokens;  // tokens each GPU routes, dispatches and combines
  std::vector<std::int64_t> logits_rows;   // rows of the lm_head on each GPU
};

struct ForwardPass {
  ModelSpec const* model = nullptr;
  ParallelPlan plan;
  BatchShape batch;
  ExpansionOptions options;
  bool ep_mode = false;      // dispatch/combine all-to-all (else TP-MoE with all-reduce)
  TokenLayout tokens;
  std::vector<LayerType> types;
  int first_layer = 0;          // model index of the stage's first layer (0 without pipeline stages)
  std::vector<int> layer_type;  // per executed layer of the stage (its model layers, then the MTP layers)
  std::vector<int> moe_index;   // per executed layer: index among MoE layers, -1 for dense
  int moe_layers = 0;
  // programs[type][gpu]
  std::vector<std::vector<LayerProgram>> programs;
  std::vector<std::vector<PlannedOp>> head;  // per GPU: embedding (before the layers)
  std::vector<std::vector<PlannedOp>> tail;  // per GPU: final norm, lm_head, sampling (after)
  // Bytes per token copy moved by dispatch / combine.
  double dispatch_bytes_per_copy = 0;
  double combine_bytes_per_copy = 0;
};

// Throws ConfigError("--plan", "", ...) for plans the expansion does not support
// (ep == 1 with tp < G; dense_tp other than 1 or tp), for a stage outside 0 .. pp-1 and for an empty batch.
ForwardPass expand_forward(const ModelSpec& m, const PrecisionVariant& v, const GpuSpec& gpu, const ParallelPlan& plan,
                           const BatchShape& batch, const ExpansionOptions& opts);

// Fills a routed grouped-GEMM op (shape n, k set by the expansion) for the
// tokens of each local expert slot: FLOPs 2·n·k·Σt; bytes: the weights of every
// slot with t > 0 (n·k·weight_bpp each), inputs (Σt·k·in_bytes), outputs (Σt·n·2).
void fill_grouped_gemm(PlannedOp& p, std::span<const std::int64_t> slot_tokens);
// Fills the routed activation (SwiGLU: reads 2·n, writes n per row; n = shape.n) for `rows` token copies.
void fill_routed_activation(PlannedOp& p, std::int64_t rows);

// Sum over new tokens of the number of positions each attends to, for a
// sequence with `prefix` cached tokens and `fresh` new ones (causal, with a
// sliding window or chunk of `span` where the layer has one).
double attended_pairs(AttnLayerKind kind, int span, std::int64_t prefix, std::int64_t fresh);

}  // namespace moesim
