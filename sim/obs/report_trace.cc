// The serving timeline as Chrome trace events (Perfetto opens it): one track
// per instance with its sampled steps, one track per sampled request with its
// queue/prefill and decode spans. Bounded: ServingOptions::trace_steps steps and
// max_requests requests. Written in time order per track, deterministically.
#include <fmt/format.h>

#include "sim/obs/report.h"

namespace moesim::obs {

namespace {

double us(Time t) { return static_cast<double>(t.time_since_epoch().count()) * 1e-6; }
double us(Duration d) { return static_cast<double>(d.count()) * 1e-6; }

}  // namespace

std::string chrome_trace(const serve::ServingResult& res, std::size_t max_requests) {
  std::string out = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
  bool first = true;
  auto emit = [&](const std::string& ev) {
    out += first ? "" : ",\n";
    out += ev;
    first = false;
  };
  for (std::size_t i = 0; i < res.instance_names.size(); ++i)
    emit(fmt::format(R"({{"ph":"M","name":"thread_name","pid":1,"tid":{},"args":{{"name":"{}"}}}})", i,
                     res.instance_names[i]));
  for (const serve::StepSample& s : res.step_samples)
    emit(fmt::format(R"({{"ph":"X","name":"{}","cat":"step","pid":1,"tid":{},"ts":{:.3f},"dur":{:.3f},)"
                     R"("args":{{"decode_seqs":{},"prefill_tokens":{}}}}})",
                     s.prefill_tokens > 0 ? (s.decode_seqs > 0 ? "mixed" : "prefill") : "decode", s.instance,
                     us(s.start), us(s.duration), s.decode_seqs, s.prefill_tokens));
  const auto& recs = res.metrics.records();
  const std::size_t stride = recs.size() > max_requests ? (recs.size() + max_requests - 1) / max_requests : 1;
  for (std::size_t i = 0; i < recs.size(); i += stride) {
    const RequestRecord& r = recs[i];
    if (!r.finished) continue;
    emit(fmt::format(R"({{"ph":"M","name":"thread_name","pid":2,"tid":{},"args":{{"name":"request {}"}}}})", r.id,
                     r.id));
    emit(fmt::format(R"({{"ph":"X","name":"to first token","cat":"request","pid":2,"tid":{},"ts":{:.3f},)"
                     R"("dur":{:.3f},"args":{{"input_tokens":{},"preemptions":{}}}}})",
                     r.id, us(r.arrival), us(r.first_token - r.arrival), r.input, r.preemptions));
    emit(fmt::format(R"({{"ph":"X","name":"decode","cat":"request","pid":2,"tid":{},"ts":{:.3f},"dur":{:.3f},)"
                     R"("args":{{"output_tokens":{},"kv_transfer_us":{:.3f}}}}})",
                     r.id, us(r.first_token), us(r.finish - r.first_token), r.output, us(r.kv_transfer)));
  }
  out += "\n]}\n";
  return out;
}

}  // namespace moesim::obs
