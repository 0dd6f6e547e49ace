// Assembly of the per-GPU layer programs (see ops.h for the parallel layout).
#include "sim/model/ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "sim/config/error.h"
#include "sim/model/ops_build.h"

namespace moesim {

using ops_detail::elementwise;
using ops_detail::gemm;

const char* phase_name(Phase p) { return p == Phase::kDecode ? "decode" : "prefill"; }

BatchShape BatchShape::decode(std::int64_t sequences, std::int64_t context) {
  BatchShape b;
  b.phase = Phase::kDecode;
  b.seqs.assign(static_cast<std::size_t>(sequences), SequenceShape{1, context});
  return b;
}

BatchShape BatchShape::prefill(std::int64_t sequences, std::int64_t tokens, std::int64_t prefix) {
  BatchShape b;
  b.phase = Phase::kPrefill;
  b.seqs.assign(static_cast<std::size_t>(sequences), SequenceShape{tokens, prefix});
  return b;
}

std::int64_t BatchShape::tokens() const {
  std::int64_t t = 0;
  for (const auto& s : seqs) t += s.new_tokens;
  return t;
}

const char* op_group_name(OpGroup g) {
  switch (g) {
    case OpGroup::kAttention: return "attention";
    case OpGroup::kRouter: return "router";
    case OpGroup::kDispatch: return "dispatch";
    case OpGroup::kExperts: return "experts";
    case OpGroup::kSharedExpert: return "shared_expert";
    case OpGroup::kCombine: return "combine";
    case OpGroup::kDenseFfn: return "dense_ffn";
    case OpGroup::kOther: return "other";
  }
  return "?";
}

const char* comm_kind_name(CommKind k) {
  switch (k) {
    case CommKind::kDispatch: return "dispatch";
    case CommKind::kCombine: return "combine";
    case CommKind::kAttnReduceScatter: return "attn_reduce_scatter";
    case CommKind::kAttnAllGather: return "attn_all_gather";
    case CommKind::kFfnReduceScatter: return "ffn_reduce_scatter";
    case CommKind::kFfnAllGather: return "ffn_all_gather";
    case CommKind::kPipelineSend: return "pipeline_send";
  }
  return "?";
}

void fill_grouped_gemm(PlannedOp& p, std::span<const std::int64_t> slot_tokens) {
  Op& op = p.op;
  op.shape.expert_tokens.assign(slot_tokens.begin(), slot_tokens.end());
  std::int64_t rows = 0, used = 0;
  for (const std::int64_t t : slot_tokens) {
    rows += t;
    used += t > 0 ? 1 : 0;
  }
  const double n = static_cast<double>(op.shape.n);
  const double k = static_cast<double>(op.shape.k);
  op.shape.m = rows;
  op.flops = 2.0 * n * k * static_cast<double>(rows);
  op.bytes = static_cast<double>(used) * n * k * p.weight_bpp + static_cast<double>(rows) * k * p.in_bytes +
             static_cast<double>(rows) * n * 2;
}

void fill_routed_activation(PlannedOp& p, std::int64_t rows) {
  p.op.shape.m = rows;
  p.op.bytes = p.bytes_per_row > 0 ? static_cast<double>(rows) * p.bytes_per_row
                                   : static_cast<double>(rows) * static_cast<double>(p.op.shape.n) * 3 * 2;  // read gate+up, write
}

namespace {

int attention_heads(const ModelSpec& m) {
  if (const auto* a = std::get_if<MlaSpec>(&m.attention)) return a->heads;
  return std::get<GqaSpec>(m.attention).heads;
}

// Attention kind of each layer: the GQA layer groups interleaved evenly (smooth
// weighted round robin, ties to the earlier group); MLA layers are all full.
std::vector<GqaLayerGroup> layer_attention(const ModelSpec& m) {
  std::vector<GqaLayerGroup> out(static_cast<std::size_t>(m.layers), GqaLayerGroup{AttnLayerKind::kFull, 0, 1});
  const auto* g = std::get_if<GqaSpec>(&m.attention);
  if (!g || g->layer_groups.empty()) return out;
  std::vector<long> credit(g->layer_groups.size(), 0);
  for (int i = 0; i < m.layers; ++i) {
    std::size_t best = 0;
    for (std::size_t j = 0; j < credit.size(); ++j) {
      credit[j] += g->layer_groups[j].count;
      if (credit[j] > credit[best]) best = j;
    }
    credit[best] -= m.layers;
    out[static_cast<std::size_t>(i)] = g->layer_groups[best];
  }
  return out;
}

std::string type_name(const LayerType& t) {
  std::string s = t.mtp ? "mtp" : (t.moe ? "moe" : "dense");
  if (t.attn == AttnLayerKind::kSliding) s += fmt::format("/sliding{}", t.span);
  if (t.attn == AttnLayerKind::kChunked) s += fmt::format("/chunked{}", t.span);
  return s;
}

// Splits n items into `parts` shares, the first n % parts one larger.
std::int64_t share(std::int64_t n, int parts, int i) { return n / parts + (i < n % parts ? 1 : 0); }

class ProgramBuilder {
 public:
  LayerProgram p;
  void compute(PlannedOp op) {
    p.ops.push_back(std::move(op));
    p.seq.push_back({Instr::Type::kCompute, static_cast<std::uint16_t>(p.ops.size() - 1)});
  }
  void computes(std::vector<PlannedOp> ops) {
    for (auto& o : ops) compute(std::move(o));
  }
  std::uint16_t declare(CommKind k, OpGroup g, double bytes_per_token) {
    p.comms.push_back({k, g, bytes_per_token});
    return static_cast<std::uint16_t>(p.comms.size() - 1);
  }
  void send(std::uint16_t c) { p.seq.push_back({Instr::Type::kSend, c}); }
  void wait(std::uint16_t c) { p.seq.push_back({Instr::Type::kWait, c}); }
  void exchange(CommKind k, OpGroup g, double bytes_per_token) {
    const auto c = declare(k, g, bytes_per_token);
    send(c);
    wait(c);
  }
};

struct Ctx {
  const ModelSpec& m;
  const PrecisionVariant& v;
  const GpuSpec& gpu;
  const ParallelPlan& plan;
  const ForwardPass& fp;
  int G;
  Format fmt(TensorGroup g) const { return v.formats.at(g); }
};

// SwiGLU FFN: gate+up, activation, down.
void ffn(ProgramBuilder& b, const Ctx& c, const std::string& prefix, OpGroup group, std::int64_t rows,
         std::int64_t width, TensorGroup tg) {
  const std::int64_t H = c.m.hidden;
  b.compute(gemm(prefix + ".gate_up", group, rows, 2 * width, H, c.fmt(tg), c.gpu));
  b.compute(elementwise(prefix + ".act", group, static_cast<double>(rows * width) * 3 * 2));
  b.compute(gemm(prefix + ".down", group, rows, H, width, c.fmt(tg), c.gpu));
}

LayerProgram build_program(const Ctx& c, const LayerType& t, int g) {
  const ModelSpec& m = c.m;
  const ParallelPlan& plan = c.plan;
  const TokenLayout& tl = c.fp.tokens;
  const std::int64_t H = m.hidden;
  const std::int64_t T = tl.group_tokens[static_cast<std::size_t>(g)];
  const std::int64_t own = tl.owned_tokens[static_cast<std::size_t>(g)];
  const double act_row = 2.0 * static_cast<double>(H);  // BF16 hidden state per token
  const int tp = plan.tp;
  ProgramBuilder b;

  if (t.mtp) {
    b.compute(elementwise("mtp.norms", OpGroup::kOther, static_cast<double>(T * H) * 2 * 2 * 2));
    b.compute(gemm("mtp.eh_proj", OpGroup::kOther, T, H, 2 * H, Format::kBf16, c.gpu));
  }

  ops_detail::AttentionInputs ai;
  ai.model = &m;
  ai.format = c.fmt(TensorGroup::kAttention);
  ai.gpu = &c.gpu;
  ai.tp = tp;
  ai.phase = c.fp.batch.phase;
  ai.kind = t.attn;
  ai.span = t.span;
  ai.kv_bytes_per_element = kv_bytes_per_token(m, c.fp.options.kv_dtype) /
                            kv_bytes_per_token(m, KvDtype::kBf16) * 2.0;
  {
    const int group = g / tp;
    const int dp = c.G / tp;
    for (std::size_t i = static_cast<std::size_t>(group); i < c.fp.batch.seqs.size(); i += static_cast<std::size_t>(dp))
      ai.seqs.push_back(c.fp.batch.seqs[i]);
  }
  b.computes(ops_detail::attention_ops(ai));

  const bool tp_mode = !c.fp.ep_mode;
  if (!t.moe) {
    const int dtp = plan.effective_dense_tp();
    if (dtp == tp) {
      if (tp > 1) {
        b.exchange(CommKind::kAttnReduceScatter, OpGroup::kAttention, act_row);
        b.exchange(CommKind::kAttnAllGather, OpGroup::kAttention, act_row);
      }
      b.compute(elementwise("ffn_norm", OpGroup::kDenseFfn, static_cast<double>(T * H) * 2 * 3));
      ffn(b, c, "dense_ffn", OpGroup::kDenseFfn, T, m.dense_ffn / dtp, TensorGroup::kDenseFfn);
      if (tp > 1) {
        b.exchange(CommKind::kFfnReduceScatter, OpGroup::kDenseFfn, act_row);
        b.exchange(CommKind::kFfnAllGather, OpGroup::kDenseFfn, act_row);
      }
    } else {  // dense_tp == 1: data-parallel FFN on the owned tokens
      if (tp > 1) b.exchange(CommKind::kAttnReduceScatter, OpGroup::kAttention, act_row);
      b.compute(elementwise("ffn_norm", OpGroup::kDenseFfn, static_cast<double>(own * H) * 2 * 3));
      ffn(b, c, "dense_ffn", OpGroup::kDenseFfn, own, m.dense_ffn, TensorGroup::kDenseFfn);
      if (tp > 1) b.exchange(CommKind::kFfnAllGather, OpGroup::kDenseFfn, act_row);
    }
    return std::move(b.p);
  }

  const MoeSpec& moe = *m.moe;
  const int moe_tp = tp_mode ? c.G : plan.moe_tp();
  const std::int64_t width = moe.expert_ffn / moe_tp;
  const std::int64_t rows = tp_mode ? T : own;  // tokens this GPU routes
  auto routed = [&](PlannedOp op) {
    op.routed = true;
    op.group = OpGroup::kExperts;
    b.compute(std::move(op));
  };
  auto router = [&] {
    b.compute(elementwise("ffn_norm", OpGroup::kRouter, static_cast<double>(rows * H) * 2 * 3));
    b.compute(gemm("router_gemm", OpGroup::kRouter, rows, moe.routed_experts, H, c.fmt(TensorGroup::kRouter), c.gpu));
    PlannedOp topk;
    topk.group = OpGroup::kRouter;
    topk.op.kind = OpKind::kRouter;
    topk.op.name = moe.groups > 1 ? "topk_grouped" : "topk";
    topk.op.shape.tokens = rows;
    topk.op.shape.experts = moe.routed_experts;
    topk.op.shape.topk = moe.top_k;
    topk.op.bytes = static_cast<double>(rows * moe.routed_experts) * 4 + static_cast<double>(rows * moe.top_k) * 8;
    b.compute(std::move(topk));
  };
  const bool staged = !tp_mode && c.fp.options.dispatcher == Dispatcher::kStaged;
  auto routed_copy = [&](const char* name, double bytes_per_row) {
    PlannedOp copy = elementwise(name, OpGroup::kExperts, 0);
    copy.bytes_per_row = bytes_per_row;
    routed(std::move(copy));
  };
  auto experts = [&] {
    const Format ef = c.fmt(TensorGroup::kRoutedExperts);
    PlannedOp gate_up = gemm("experts.gate_up", OpGroup::kExperts, 0, 2 * width, H, ef, c.gpu);
    // Staged: read the received row (payload + scales), write the GEMM's input row.
    if (staged) routed_copy("experts.regroup", c.fp.dispatch_bytes_per_copy + static_cast<double>(H) * gate_up.in_bytes);
    routed(std::move(gate_up));
    PlannedOp act = elementwise("experts.act", OpGroup::kExperts, 0);
    act.op.shape.n = width;
    routed(std::move(act));
    routed(gemm("experts.down", OpGroup::kExperts, 0, H, width, ef, c.gpu));
    if (staged) routed_copy("experts.gather", 2 * c.fp.combine_bytes_per_copy);  // read + write the output row
    for (auto& o : b.p.ops) {
      if (o.routed && o.op.kind == OpKind::kGemm) o.op.kind = OpKind::kGroupedGemm;
    }
  };
  auto shared = [&](std::int64_t srows, int split) {
    if (moe.shared_experts == 0) return;
    ffn(b, c, "shared_expert", OpGroup::kSharedExpert, srows,
        static_cast<std::int64_t>(moe.shared_experts) * moe.shared_expert_ffn / split, TensorGroup::kSharedExperts);
  };

  if (tp_mode) {
    if (tp > 1) {
      b.exchange(CommKind::kAttnReduceScatter, OpGroup::kAttention, act_row);
      b.exchange(CommKind::kAttnAllGather, OpGroup::kAttention, act_row);
    }
    router();
    experts();
    shared(T, c.G);
    b.compute(elementwise("moe_reduce", OpGroup::kRouter, static_cast<double>(T * H) * 2 * 3));
    if (c.G > 1) {
      b.exchange(CommKind::kFfnReduceScatter, OpGroup::kOther, act_row);
      b.exchange(CommKind::kFfnAllGather, OpGroup::kOther, act_row);
    }
    return std::move(b.p);
  }

  if (tp > 1) b.exchange(CommKind::kAttnReduceScatter, OpGroup::kAttention, act_row);
  router();
  if (staged && c.fp.options.dispatch != DispatchDtype::kBf16)  // read the BF16 row, write payload + scales
    b.compute(elementwise("dispatch_quant", OpGroup::kRouter,
                          static_cast<double>(own) * (static_cast<double>(H) * 2 + c.fp.dispatch_bytes_per_copy)));
  PlannedOp permute;
  permute.group = OpGroup::kRouter;
  permute.op.kind = OpKind::kPermute;
  permute.op.name = "permute";
  permute.op.shape.tokens = own;
  permute.op.shape.topk = moe.top_k;
  permute.op.shape.hidden = H;
  permute.op.shape.experts = moe.routed_experts;  // the calibrated permute family is keyed by (H, k, E)
  permute.op.shape.payload_bytes_per_element = c.fp.dispatch_bytes_per_copy / static_cast<double>(H);
  permute.op.bytes = static_cast<double>(own * H) * 2 + static_cast<double>(own) * c.fp.dispatch_bytes_per_copy;
  b.compute(std::move(permute));
  const auto dispatch = b.declare(CommKind::kDispatch, OpGroup::kDispatch, 0);
  const auto combine = b.declare(CommKind::kCombine, OpGroup::kCombine, 0);
  b.send(dispatch);
  shared(own, 1);  // overlaps the dispatch, as DeepEP users schedule it
  b.wait(dispatch);
  experts();
  b.send(combine);
  b.wait(combine);
  PlannedOp unpermute;
  unpermute.group = OpGroup::kRouter;
  unpermute.op.kind = OpKind::kUnpermute;
  unpermute.op.name = "unpermute_residual";
  unpermute.op.shape.tokens = own;
  unpermute.op.shape.topk = moe.top_k;
  unpermute.op.shape.hidden = H;
  unpermute.op.shape.experts = moe.routed_experts;
  unpermute.op.bytes = static_cast<double>(own) * c.fp.combine_bytes_per_copy + static_cast<double>(own * H) * 2 * 3;
  b.compute(std::move(unpermute));
  if (tp > 1) b.exchange(CommKind::kFfnAllGather, OpGroup::kOther, act_row);
  return std::move(b.p);
}

}  // namespace

ForwardPass expand_forward(const ModelSpec& m, const PrecisionVariant& v, const GpuSpec& gpu, const ParallelPlan& plan,
                           const BatchShape& batch, const ExpansionOptions& opts) {
  check_plan(plan, m, "--plan", "");
  if (opts.stage < 0 || opts.stage >= plan.pp)
    throw ConfigError("--plan", "", fmt::format("pipeline stage {} does not exist: the plan has pp={}", opts.stage, plan.pp));
  const int G = plan.gpus_per_stage();
  if (m.moe && plan.ep == 1 && plan.tp != G)
    throw ConfigError("--plan", "", "ep=1 with attention data parallelism (tp < GPUs) is not supported: use ep > 1");
  const int dtp = plan.effective_dense_tp();
  if (dtp != 1 && dtp != plan.tp)
    throw ConfigError("--plan", "", fmt::format("dense_tp={} is not supported: use dense_tp=1 or dense_tp=tp ({})", dtp, plan.tp));
  if (batch.seqs.empty() || batch.tokens() <= 0) throw ConfigError("--batch", "", "the batch has no tokens");
  (void)attention_heads(m);

  ForwardPass fp;
  fp.model = &m;
  fp.plan = plan;
  fp.batch = batch;
  fp.options = opts;
  fp.ep_mode = m.moe.has_value() && plan.ep > 1;
  if (m.moe) {
    fp.dispatch_bytes_per_copy = dispatch_bytes_per_token_per_layer(m, opts.dispatch) / m.moe->top_k;
    fp.combine_bytes_per_copy = combine_bytes_per_token_per_layer(m) / m.moe->top_k;
  }

  // Token layout.
  TokenLayout& tl = fp.tokens;
  tl.gpus = G;
  const int tp = plan.tp;
  const int dp = G / tp;
  std::vector<std::int64_t> dp_seqs(static_cast<std::size_t>(dp), 0), dp_tokens(static_cast<std::size_t>(dp), 0);
  for (std::size_t i = 0; i < batch.seqs.size(); ++i) {
    dp_seqs[i % static_cast<std::size_t>(dp)] += 1;
    dp_tokens[i % static_cast<std::size_t>(dp)] += batch.seqs[i].new_tokens;
  }
  for (int g = 0; g < G; ++g) {
    const auto d = static_cast<std::size_t>(g / tp);
    tl.seqs.push_back(dp_seqs[d]);
    tl.group_tokens.push_back(dp_tokens[d]);
    tl.owned_tokens.push_back(share(dp_tokens[d], tp, g % tp));
    tl.logits_rows.push_back(batch.phase == Phase::kDecode ? dp_tokens[d] : dp_seqs[d]);
  }

  // Layer types.
  const auto attn = layer_attention(m);
  auto type_of = [&](LayerType t) {
    t.name = type_name(t);
    const auto it = std::find(fp.types.begin(), fp.types.end(), t);
    if (it != fp.types.end()) return static_cast<int>(it - fp.types.begin());
    fp.types.push_back(t);
    return static_cast<int>(fp.types.size() - 1);
  };
  const LayerRange range = stage_layers(m.layers, plan.pp, opts.stage);
  const bool first_stage = opts.stage == 0, last_stage = opts.stage == plan.pp - 1;
  fp.first_layer = range.first;
  for (int l = range.first; l < range.first + range.count; ++l) {
    LayerType t;
    t.moe = m.is_moe_layer(l);
    t.attn = attn[static_cast<std::size_t>(l)].kind;
    t.span = attn[static_cast<std::size_t>(l)].span;
    fp.layer_type.push_back(type_of(t));
    fp.moe_index.push_back(t.moe ? fp.moe_layers++ : -1);
  }
  if (plan.mtp && last_stage) {
    for (int i = 0; i < m.mtp_layers; ++i) {
      LayerType t;
      t.moe = m.moe.has_value();
      t.mtp = true;
      fp.layer_type.push_back(type_of(t));
      fp.moe_index.push_back(t.moe ? fp.moe_layers++ : -1);
    }
  }

  const Ctx c{m, v, gpu, plan, fp, G};
  fp.programs.resize(fp.types.size());
  for (std::size_t t = 0; t < fp.types.size(); ++t) {
    for (int g = 0; g < G; ++g) fp.programs[t].push_back(build_program(c, fp.types[t], g));
  }

  // Embedding before the layers; final norm, lm_head (vocab split by tp) and sampling after.
  const std::int64_t H = m.hidden;
  const std::int64_t vocab_slice = (m.vocab + tp - 1) / tp;
  const int heads_runs = plan.mtp ? 1 + m.mtp_layers : 1;
  for (int g = 0; g < G; ++g) {
    const std::int64_t T = tl.group_tokens[static_cast<std::size_t>(g)];
    const std::int64_t rows = tl.logits_rows[static_cast<std::size_t>(g)];
    fp.head.emplace_back();
    if (first_stage) fp.head.back().push_back(elementwise("embedding", OpGroup::kOther, static_cast<double>(T * H) * 2 * 2));
    std::vector<PlannedOp> tail;
    for (int r = 0; r < (last_stage ? heads_runs : 0); ++r) {
      const std::string pre = r == 0 ? "" : "mtp.";
      tail.push_back(elementwise(pre + "final_norm", OpGroup::kOther, static_cast<double>(rows * H) * 2 * 2));
      tail.push_back(gemm(pre + "lm_head", OpGroup::kOther, rows, vocab_slice, H, v.formats.at(TensorGroup::kLmHead), gpu));
      tail.push_back(elementwise(pre + "sampling", OpGroup::kOther, static_cast<double>(rows * vocab_slice) * 4));
    }
    fp.tail.push_back(std::move(tail));
  }
  return fp;
}

}  // namespace moesim
