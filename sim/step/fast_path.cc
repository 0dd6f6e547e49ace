// The fast path: no events. Every GPU has the same instruction structure
// (only op costs and byte counts differ), so the streams are walked in
// lock-step, instruction by instruction, keeping one clock per GPU:
//   compute: t[g] += Σ op costs;   send c: sent[c][g] = t[g];
//   wait c:  t[g] = max(t[g], max_{s sends to g} sent[c][s] + alltoall_time(c))
//            (later by the two micro-batches' link sharing with TBO: sim/step/mb_links.h).
// This is the analytic network rule of the detailed engine, evaluated
// without a queue; both give the same step time.
#include <algorithm>
#include <stdexcept>

#include "sim/step/step_run.h"

namespace moesim::step_detail {

void run_fast(const RunInputs& in, RunRecord& rec) {
  const Program& prog = *in.prog;
  const auto G = static_cast<std::size_t>(prog.gpus);
  const std::size_t n = prog.streams[0].instrs.size();
  for (const GpuStream& s : prog.streams) {
    if (s.instrs.size() != n) throw std::logic_error("fast path: GPU instruction streams differ in structure");
  }
  std::vector<std::int64_t> t(G, 0);
  std::vector<std::int64_t> sent(prog.comms.size() * G, -1);
  const bool contend = !in.link_busy.empty();
  std::vector<std::int64_t> last_send(prog.comms.size(), -1);
  MicroBatchLinks links;
  if (contend) links.reset(in.links, prog.comms.size());
  for (std::size_t i = 0; i < n; ++i) {
    const Instr::Type type = prog.streams[0].instrs[i].type;
    if (type == Instr::Type::kCompute) {
      for (std::size_t g = 0; g < G; ++g) {
        const GpuStream& s = prog.streams[g];
        const FlatInstr& fi = s.instrs[i];
        for (std::uint32_t k = fi.a; k < fi.b; ++k) {
          const std::int64_t c = s.ops[k].cost.count();
          if (in.trace && c > 0) rec.op_spans.push_back({static_cast<std::uint32_t>(g), k, t[g], c});
          t[g] += c;
        }
      }
      continue;
    }
    const std::size_t c = prog.streams[0].instrs[i].a;
    const std::vector<double>& m = *prog.comms[c].matrix;
    if (type == Instr::Type::kSend) {
      for (std::size_t g = 0; g < G; ++g) {
        sent[c * G + g] = t[g];
        bool any = false;
        for (std::size_t d = 0; d < G && !any; ++d) any = d != g && m[g * G + d] > 0;
        if (any && (rec.comm_first_send[c] < 0 || t[g] < rec.comm_first_send[c])) rec.comm_first_send[c] = t[g];
        if (any) last_send[c] = std::max(last_send[c], t[g]);
      }
      if (contend && last_send[c] >= 0) links.reserve(c, prog.comms[c].mb, last_send[c], in.link_busy[c]);
      continue;
    }
    const CommInstance& ci = prog.comms[c];
    const std::int64_t dur = in.analytic[c].count();
    for (std::size_t g = 0; g < G; ++g) {
      std::int64_t start = -1;
      for (std::size_t s = 0; s < G; ++s) {
        if (s != g && m[s * G + g] > 0) start = std::max(start, sent[c * G + s]);
      }
      if (start < 0) continue;  // nothing to receive
      const std::int64_t arrival = contend ? links.arrival(c, start + dur) : start + dur;  // sim/step/mb_links.h
      rec.comm_last_arrival[c] = std::max(rec.comm_last_arrival[c], arrival);
      if (in.trace) rec.link_spans.push_back({static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(g), false, start, arrival});
      if (arrival > t[g]) {
        rec.stall_at(static_cast<int>(g), ci.type, ci.decl.group, prog.types) += static_cast<double>(arrival - t[g]) * 1e-12;
        t[g] = arrival;
      }
    }
  }
  for (std::size_t g = 0; g < G; ++g) rec.finish[g] = t[g];
}

}  // namespace moesim::step_detail
