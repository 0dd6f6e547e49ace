#include "sim/calib/ep_layer_record.h"

#include "sim/calib/line_reader.h"
#include "sim/calib/record.h"

namespace moesim::calib {

std::vector<EpLayerRecord> parse_ep_layer_records(const std::string& text, const std::string& file) {
  std::vector<EpLayerRecord> out;
  for_each_json_line(text, file, [&](const json& j, const std::string& where, int) {
    const LineReader top(j, where, "");
    if (top.str("kernel") != "ep_layer") return;
    EpLayerRecord r;
    r.where = where;
    r.gpu = top.str("gpu");
    if (top.has("status")) {
      const std::string st = top.str("status");
      top.one_of("status", st, {"check_failed", "ok"});
      r.check_failed = st == "check_failed";
    }
    const LineReader s = top.object("shape");
    r.gpus = static_cast<int>(s.integer("gpus", 1));
    r.tokens_per_gpu = s.integer("tokens_per_gpu", 1);
    r.hidden = s.integer("hidden", 1);
    r.experts = s.integer("experts", 1);
    r.topk = s.integer("topk", 1);
    r.expert_ffn = s.integer("expert_ffn", 1);
    r.routing = s.str("routing");
    s.one_of("routing", r.routing, {"uniform", "skewed"});
    r.shared_expert = s.boolean("shared_expert");
    if (r.check_failed) {
      out.push_back(std::move(r));
      return;
    }
    r.median_us = top.number("median_us", 0);
    if (!(r.median_us > 0)) top.fail("median_us", "expected a positive time in microseconds, found 0");
    r.p10_us = top.number("p10_us", 0);
    r.p90_us = top.number("p90_us", 0);
    r.skew_bias = top.number("skew_bias", 0);
    r.hot_experts = static_cast<int>(top.integer("hot_experts", 0));
    if (r.hot_experts > r.experts)
      top.fail("hot_experts", fmt::format("expected at most {} (the experts), found {}", r.experts, r.hot_experts));
    r.dedup = top.str("dedup");
    top.one_of("dedup", r.dedup, {"per_token_expert", "per_token_gpu"});
    r.dispatch_row_bytes = top.number("dispatch_row_bytes", 1);
    r.combine_row_bytes = top.number("combine_row_bytes", 1);
    r.recv_max_over_mean = top.number("recv_max_over_mean", 0);
    r.phases_us = top.number_map("phases_gpu0_us", 0);
    out.push_back(std::move(r));
  });
  return out;
}

std::vector<EpLayerRecord> read_ep_layer_records(const std::vector<std::string>& folders) {
  std::vector<EpLayerRecord> out;
  for (const auto& p : jsonl_files(folders)) {
    auto rs = parse_ep_layer_records(read_measurement_text(p), p);
    out.insert(out.end(), std::make_move_iterator(rs.begin()), std::make_move_iterator(rs.end()));
  }
  return out;
}

}  // namespace moesim::calib
