#include "sim/step/step_program.h"

#include <stdexcept>

#include "sim/model/routing_traffic.h"

namespace moesim::step_detail {

namespace {

// One instruction before flattening: which micro-batch, which op or comm.
struct RawInstr {
  Instr::Type type;
  std::uint8_t mb;
  const PlannedOp* op = nullptr;
  std::int32_t layer = -1, type_index = 0, moe = -1;
  std::uint32_t op_index = 0;
  std::uint32_t comm = 0;
};

}  // namespace

Program build_program(const std::vector<const ForwardPass*>& mbs) {
  if (mbs.empty() || mbs.size() > 2) throw std::invalid_argument("build_program: one or two micro-batches");
  Program prog;
  const ForwardPass& f0 = *mbs[0];
  prog.gpus = f0.tokens.gpus;
  prog.types = static_cast<int>(f0.types.size());
  const int tp = f0.plan.tp;

  // Comm instances: (mb, layer, comm index) in order; the same ids on every GPU.
  std::vector<std::vector<std::uint32_t>> comm_base(mbs.size());
  for (std::size_t m = 0; m < mbs.size(); ++m) {
    const ForwardPass& f = *mbs[m];
    for (std::size_t l = 0; l < f.layer_type.size(); ++l) {
      comm_base[m].push_back(static_cast<std::uint32_t>(prog.comms.size()));
      const int t = f.layer_type[l];
      const LayerProgram& lp = f.programs[static_cast<std::size_t>(t)][0];
      for (const CommDecl& d : lp.comms) {
        CommInstance c;
        c.decl = d;
        c.layer = static_cast<std::int32_t>(l);
        c.type = t;
        c.moe = f.moe_index[l];
        c.mb = static_cast<std::uint8_t>(m);
        if (d.kind != CommKind::kDispatch && d.kind != CommKind::kCombine) {
          c.static_matrix = tp_collective_bytes(d, f.tokens, tp);
          c.matrix = &c.static_matrix;
        }
        prog.comms.push_back(std::move(c));
      }
    }
  }
  for (auto& c : prog.comms) {
    if (!c.static_matrix.empty()) c.matrix = &c.static_matrix;  // after the vector stopped moving
  }

  prog.streams.resize(static_cast<std::size_t>(prog.gpus));
  for (int g = 0; g < prog.gpus; ++g) {
    // Raw instruction lists per micro-batch, cut into chunks before every wait.
    std::vector<std::vector<std::vector<RawInstr>>> chunks(mbs.size());
    for (std::size_t m = 0; m < mbs.size(); ++m) {
      const ForwardPass& f = *mbs[m];
      const auto G = static_cast<std::size_t>(g);
      std::vector<std::vector<RawInstr>>& out = chunks[m];
      out.emplace_back();
      const auto mb = static_cast<std::uint8_t>(m);
      const auto ht_type = static_cast<std::int32_t>(f.types.size());
      std::uint32_t idx = 0;
      for (const PlannedOp& op : f.head[G]) out.back().push_back({Instr::Type::kCompute, mb, &op, -1, ht_type, -1, idx++});
      for (std::size_t l = 0; l < f.layer_type.size(); ++l) {
        const int t = f.layer_type[l];
        const LayerProgram& lp = f.programs[static_cast<std::size_t>(t)][G];
        for (const Instr& in : lp.seq) {
          RawInstr r{in.type, mb};
          r.layer = static_cast<std::int32_t>(l);
          r.type_index = t;
          if (in.type == Instr::Type::kCompute) {
            r.op = &lp.ops[in.index];
            r.op_index = in.index;
            r.moe = r.op->routed ? f.moe_index[l] : -1;
          } else {
            r.comm = comm_base[m][l] + in.index;
          }
          if (in.type == Instr::Type::kWait) out.emplace_back();
          out.back().push_back(r);
        }
      }
      for (const PlannedOp& op : f.tail[G]) out.back().push_back({Instr::Type::kCompute, mb, &op, -1, ht_type, -1, idx++});
    }
    // Interleave the chunks A0 B0 A1 B1 ...
    std::vector<const RawInstr*> order;
    std::size_t n = 0;
    for (const auto& c : chunks) n = std::max(n, c.size());
    for (std::size_t i = 0; i < n; ++i) {
      for (const auto& c : chunks) {
        if (i < c.size()) {
          for (const RawInstr& r : c[i]) order.push_back(&r);
        }
      }
    }
    GpuStream& s = prog.streams[static_cast<std::size_t>(g)];
    for (const RawInstr* r : order) {
      if (r->type == Instr::Type::kCompute) {
        FlatOp fo;
        fo.op = r->op;
        fo.layer = r->layer;
        fo.type = r->type_index;
        fo.op_index = r->op_index;
        fo.moe = r->moe;
        fo.mb = r->mb;
        s.ops.push_back(fo);
        const auto i = static_cast<std::uint32_t>(s.ops.size() - 1);
        if (!s.instrs.empty() && s.instrs.back().type == Instr::Type::kCompute) {
          s.instrs.back().b = i + 1;
        } else {
          s.instrs.push_back({Instr::Type::kCompute, i, i + 1});
        }
      } else {
        s.instrs.push_back({r->type, r->comm, 0});
      }
    }
  }
  return prog;
}

}  // namespace moesim::step_detail
