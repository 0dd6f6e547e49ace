// The human-readable side of the report: the summary table (one column per
// scenario), the attribution lines and the per-request CSV.
#include <fmt/format.h>

#include <stdexcept>

#include <cmath>

#include "sim/obs/report.h"

namespace moesim::obs {

namespace {

struct Row {
  std::string label;
  std::vector<std::string> cells;
};

std::string num(double v, int decimals = 1) {
  if (!std::isfinite(v)) return "-";
  return fmt::format("{:.{}f}", v, decimals);
}

// Pool attribution: the pool that produces the output tokens (decode or aggregated).
const PoolSummary* output_pool(const Summary& s) {
  for (const PoolSummary& p : s.pools)
    if (p.role == "decode") return &p;
  return s.pools.empty() ? nullptr : &s.pools.front();
}

}  // namespace

std::string summary_table(std::span<const Summary> runs) {
  std::vector<Row> rows;
  auto add = [&](std::string label, auto fn) {
    Row r{std::move(label), {}};
    for (const Summary& s : runs) r.cells.push_back(fn(s));
    rows.push_back(std::move(r));
  };
  add("scenario", [](const Summary& s) { return s.scenario; });
  add("system", [](const Summary& s) { return s.system; });
  add("costs", [](const Summary& s) { return s.cost_basis; });
  add("GPUs used", [](const Summary& s) { return std::to_string(s.gpus); });
  add("pools", [](const Summary& s) {
    std::string t;
    for (const PoolSummary& p : s.pools)
      t += fmt::format("{}{} {}x[{}]", t.empty() ? "" : " + ", p.role, p.instances, p.plan);
    return t;
  });
  add("requests (measured)", [](const Summary& s) { return fmt::format("{} ({})", s.requests, s.measured); });
  add("output tok/s per GPU", [](const Summary& s) { return num(s.output_tokens_per_s_per_gpu); });
  add("  whole run (incl. ramp)", [](const Summary& s) { return num(s.output_tokens_per_s_per_gpu_whole_run); });
  add("input tok/s per prefill GPU", [](const Summary& s) { return num(s.input_tokens_per_s_per_gpu); });
  add("output tok/s per domain", [](const Summary& s) {
    return fmt::format("{} ({} GPUs)", num(s.output_tokens_per_s_per_domain, 0), s.domain_gpus);
  });
  add("output tok/s per kW", [](const Summary& s) {
    return fmt::format("{} ({:.0f} W/GPU {})", num(s.output_tokens_per_s_per_kw, 0), s.watts_per_gpu, s.power_basis);
  });
  add("USD per M output tok", [](const Summary& s) {
    return s.has_price ? fmt::format("{:.3f} (at {:.2f} USD/GPU-h)", s.usd_per_million_output_tokens,
                                     s.price_per_gpu_hour)
                       : std::string("-");
  });
  add("requests/s", [](const Summary& s) { return num(s.requests_per_s, 2); });
  add("tok/s per user p50", [](const Summary& s) { return num(s.tokens_per_s_per_user.p50); });
  add("TTFT ms p50/p90/p99", [](const Summary& s) {
    return fmt::format("{}/{}/{}", num(s.ttft_ms.p50, 0), num(s.ttft_ms.p90, 0), num(s.ttft_ms.p99, 0));
  });
  add("TPOT ms p50/p90/p99", [](const Summary& s) {
    return fmt::format("{}/{}/{}", num(s.tpot_ms.p50), num(s.tpot_ms.p90), num(s.tpot_ms.p99));
  });
  add("ITL ms p50/p90/p99", [](const Summary& s) {
    return fmt::format("{}/{}/{}", num(s.itl_ms.p50), num(s.itl_ms.p90), num(s.itl_ms.p99));
  });
  add("E2E s p50/p99", [](const Summary& s) {
    return fmt::format("{}/{}", num(s.e2e_ms.p50 / 1e3, 2), num(s.e2e_ms.p99 / 1e3, 2));
  });
  add("SLO", [](const Summary& s) {
    if (s.slo.empty()) return std::string("-");
    std::string t;
    for (const SloResult& r : s.slo)
      t += fmt::format("{}{} p{:g} {:.0f}<={:.0f}ms {} ({:.0f}%)", t.empty() ? "" : "; ", r.metric, r.percentile,
                       r.achieved_ms, r.target_ms, r.met ? "met" : "MISSED", r.attainment * 100);
    return t;
  });
  add("decode batch/rank mean (max)", [](const Summary& s) {
    const PoolSummary* p = output_pool(s);
    return p ? fmt::format("{} ({})", num(p->decode_batch_per_rank_mean), p->decode_batch_per_rank_max)
             : std::string("-");
  });
  add("step ms: attn/exp/comm/other", [](const Summary& s) {
    const PoolSummary* p = output_pool(s);
    return p ? fmt::format("{} = {}/{}/{}/{}", num(p->step_ms_mean, 2), num(p->attention_ms_mean, 2),
                           num(p->experts_ms_mean, 2), num(p->communication_ms_mean, 2), num(p->other_ms_mean, 2))
             : std::string("-");
  });
  add("KV tokens/rank (peak use)", [](const Summary& s) {
    const PoolSummary* p = output_pool(s);
    return p ? fmt::format("{:.0f} ({:.0f}%)", p->kv_tokens_per_rank, p->kv_peak_fraction * 100) : std::string("-");
  });
  add("GPU busy / preemptions", [](const Summary& s) {
    std::string t;
    for (const PoolSummary& p : s.pools)
      t += fmt::format("{}{} {:.0f}% / {}", t.empty() ? "" : "; ", p.name, p.gpu_busy * 100, p.preemptions);
    return t;
  });
  add("link busy NVLink / NIC", [](const Summary& s) {
    std::string t;
    for (const PoolSummary& p : s.pools)
      t += fmt::format("{}{} {:.0f}% / {:.0f}%", t.empty() ? "" : "; ", p.name, p.scale_up_link_busy * 100,
                       p.scale_out_link_busy * 100);
    return t;
  });
  add("KV transfer ms p50/p99", [](const Summary& s) {
    return s.kv_transfers ? fmt::format("{}/{} ({:.1f} GB)", num(s.kv_transfer_ms.p50, 2), num(s.kv_transfer_ms.p99, 2),
                                        s.kv_transfer_gb)
                          : std::string("-");
  });

  std::size_t lw = 0;
  std::vector<std::size_t> cw(runs.size(), 0);
  for (const Row& r : rows) {
    lw = std::max(lw, r.label.size());
    for (std::size_t i = 0; i < r.cells.size(); ++i) cw[i] = std::max(cw[i], r.cells[i].size());
  }
  std::string out;
  for (const Row& r : rows) {
    out += fmt::format("{:<{}}", r.label, lw);
    for (std::size_t i = 0; i < r.cells.size(); ++i) out += fmt::format("  {:<{}}", r.cells[i], cw[i]);
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += '\n';
  }
  return out;
}

std::string attribution(std::span<const Summary> runs) {
  std::string out;
  if (runs.size() < 2) return out;
  const Summary& a = runs[0];
  const PoolSummary* pa = output_pool(a);
  for (std::size_t i = 1; i < runs.size(); ++i) {
    const Summary& b = runs[i];
    const PoolSummary* pb = output_pool(b);
    if (!pa || !pb || b.output_tokens_per_s_per_gpu <= 0) continue;
    const double ratio = a.output_tokens_per_s_per_gpu / b.output_tokens_per_s_per_gpu;
    // tokens/s per GPU = decode batch per rank x ranks per GPU / step time (x MTP tokens per step).
    const double batch_ratio = pb->decode_batch_per_rank_mean > 0
                                   ? pa->decode_batch_per_rank_mean / pb->decode_batch_per_rank_mean
                                   : 0;
    const double step_ratio = pa->step_ms_mean > 0 ? pb->step_ms_mean / pa->step_ms_mean : 0;
    out += fmt::format(
        "{} vs {}: {:.2f}x output tok/s per GPU ({:.2f}x per kW). Decode batch per rank {:.0f} vs {:.0f} "
        "({:.2f}x; KV capacity {:.0f} vs {:.0f} tokens/rank), decode step {:.1f} vs {:.1f} ms ({:.2f}x faster).\n",
        a.scenario, b.scenario, ratio, a.output_tokens_per_s_per_kw / b.output_tokens_per_s_per_kw,
        pa->decode_batch_per_rank_mean, pb->decode_batch_per_rank_mean, batch_ratio, pa->kv_tokens_per_rank,
        pb->kv_tokens_per_rank, pa->step_ms_mean, pb->step_ms_mean, step_ratio);
    out += fmt::format(
        "  step split attention/experts/communication/other: {:.1f}/{:.1f}/{:.1f}/{:.1f} ms vs "
        "{:.1f}/{:.1f}/{:.1f}/{:.1f} ms; TPOT p50 {:.1f} vs {:.1f} ms.\n",
        pa->attention_ms_mean, pa->experts_ms_mean, pa->communication_ms_mean, pa->other_ms_mean,
        pb->attention_ms_mean, pb->experts_ms_mean, pb->communication_ms_mean, pb->other_ms_mean, a.tpot_ms.p50,
        b.tpot_ms.p50);
  }
  return out;
}

std::string requests_csv(const serve::ServingResult& res) {
  std::string out =
      "id,measured,instance,input_tokens,output_tokens,arrival_s,first_token_s,finish_s,ttft_ms,tpot_ms,e2e_ms,"
      "preemptions,kv_transfer_ms\n";
  for (const RequestRecord& r : res.metrics.records()) {
    const std::string inst = r.instance >= 0 && static_cast<std::size_t>(r.instance) < res.instance_names.size()
                                 ? res.instance_names[static_cast<std::size_t>(r.instance)]
                                 : "";
    out += fmt::format("{},{},{},{},{},{:.9f},{:.9f},{:.9f},{:.6f},{:.6f},{:.6f},{},{:.6f}\n", r.id,
                       r.measured ? 1 : 0, inst, r.input, r.output, to_seconds(r.arrival), to_seconds(r.first_token),
                       to_seconds(r.finish), r.ttft_s() * 1e3, r.tpot_s() * 1e3, r.e2e_s() * 1e3, r.preemptions,
                       to_ms(r.kv_transfer));
  }
  return out;
}

std::string tokens_csv(const serve::ServingResult& res) {
  const MetricsCollector& m = res.metrics;
  if (!m.keeps_deliveries()) throw std::logic_error("tokens_csv: the run did not keep token deliveries");
  std::string out = "id,measured,delivery,time_s,tokens,gap_ms\n";
  for (const RequestRecord& r : m.records()) {
    Time prev = r.arrival;
    int index = 0;
    for (const Delivery& d : m.deliveries(r.id)) {
      out += fmt::format("{},{},{},{:.9f},{},{:.6f}\n", r.id, r.measured ? 1 : 0, index++, to_seconds(d.time),
                         d.tokens, to_ms(d.time - prev));
      prev = d.time;
    }
  }
  return out;
}

}  // namespace moesim::obs
