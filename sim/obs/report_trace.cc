// The serving timeline as Chrome trace events (Perfetto opens it), written with
// the shared TraceWriter (sim/obs/trace.h): process 1 has one thread per
// instance with its sampled steps; process 2 one thread per sampled request with
// its time to first token and its decode. Bounded: ServingOptions::trace_steps
// steps and max_requests evenly spaced requests.
#include <string>

#include "sim/obs/report.h"
#include "sim/obs/trace.h"

namespace moesim::obs {

std::string chrome_trace(const serve::ServingResult& res, std::size_t max_requests) {
  TraceWriter w;
  w.name_process(1, "instances (sampled steps)");
  for (std::size_t i = 0; i < res.instance_names.size(); ++i)
    w.name_thread(1, static_cast<int>(i), res.instance_names[i]);
  for (const serve::StepSample& s : res.step_samples) {
    const char* kind = s.prefill_tokens > 0 ? (s.decode_seqs > 0 ? "mixed" : "prefill") : "decode";
    w.slice(1, s.instance, kind, "step", s.start, s.duration,
            {{"decode_seqs", std::to_string(s.decode_seqs)}, {"prefill_tokens", std::to_string(s.prefill_tokens)}});
  }
  w.name_process(2, "requests (sampled)");
  const auto& recs = res.metrics.records();
  const std::size_t stride = recs.size() > max_requests ? (recs.size() + max_requests - 1) / max_requests : 1;
  for (std::size_t i = 0; i < recs.size(); i += stride) {
    const RequestRecord& r = recs[i];
    if (!r.finished) continue;
    const int tid = static_cast<int>(r.id);
    w.name_thread(2, tid, "request " + std::to_string(r.id));
    w.slice(2, tid, "to first token", "request", r.arrival, r.first_token - r.arrival,
            {{"input_tokens", std::to_string(r.input)}, {"preemptions", std::to_string(r.preemptions)}});
    w.slice(2, tid, "decode", "request", r.first_token, r.finish - r.first_token,
            {{"output_tokens", std::to_string(r.output)},
             {"kv_transfer_us", std::to_string(static_cast<double>(r.kv_transfer.count()) * 1e-6)}});
  }
  return w.json();
}

}  // namespace moesim::obs
