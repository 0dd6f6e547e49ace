// Internal to sim/step: the instruction stream of every GPU for a whole
// forward pass (head, layers, tail; one or two micro-batches interleaved),
// flattened for the engine and the fast path.
#pragma once

#include <cstdint>
#include <vector>

#include "sim/core/time.h"
#include "sim/cost/cost_model.h"
#include "sim/model/ops.h"

namespace moesim::step_detail {

struct FlatOp {
  const PlannedOp* op = nullptr;
  std::int32_t layer = -1;    // executed layer; -1 for the head and tail
  std::int32_t type = 0;      // layer type; types.size() for the head and tail
  std::uint32_t op_index = 0; // in its LayerProgram (head + tail: head ops first, then tail ops)
  std::int32_t moe = -1;      // MoE layer index of a routed op
  std::uint8_t mb = 0;        // micro-batch
  Duration cost{};            // this step's cost (static ops: once; routed ops: every step)
  Bound bound = Bound::kCompute;
  CostSource source = CostSource::kRoofline;  // what priced it (calibrated, or roofline outside the calibration)
};

struct FlatInstr {
  Instr::Type type;
  std::uint32_t a = 0;  // compute: first op; send / wait: comm id
  std::uint32_t b = 0;  // compute: one past the last op
};

struct CommInstance {
  CommDecl decl;
  std::int32_t layer = 0;
  std::int32_t type = 0;
  std::int32_t moe = -1;
  std::uint8_t mb = 0;
  std::vector<double> static_matrix;      // TP collectives (gpus × gpus); empty for dispatch / combine
  const std::vector<double>* matrix = nullptr;  // this step's matrix
};

struct GpuStream {
  std::vector<FlatOp> ops;
  std::vector<FlatInstr> instrs;
};

struct Program {
  int gpus = 0;
  int types = 0;  // layer types; the head/tail pseudo-type is `types`
  std::vector<GpuStream> streams;
  std::vector<CommInstance> comms;
};

// mbs: the micro-batches' expansions (same model and plan). With two, each
// GPU's streams are cut before every wait and the pieces interleaved A, B, A, B.
Program build_program(const std::vector<const ForwardPass*>& mbs);

}  // namespace moesim::step_detail
