#include "sim/calib/published.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sim/calib/alltoall.h"
#include "sim/config/error.h"
#include "sim/cost/calibrated.h"

namespace moesim::calib {

namespace {

using nlohmann::json;

std::string need_str(const json& o, const std::string& key, const std::string& file, const std::string& ptr) {
  if (!o.contains(key) || !o.at(key).is_string()) throw ConfigError(file, ptr + "/" + key, "expected a string");
  return o.at(key).get<std::string>();
}

double need_num(const json& o, const std::string& key, const std::string& file, const std::string& ptr) {
  if (!o.contains(key) || !o.at(key).is_number() || !(o.at(key).get<double>() > 0))
    throw ConfigError(file, ptr + "/" + key, "expected a positive number");
  return o.at(key).get<double>();
}

const std::map<std::string, std::vector<std::string>>& shape_keys() {
  static const std::map<std::string, std::vector<std::string>> k = {
      {"gemm", {"m", "n", "k"}},
      {"grouped_gemm", {"n", "k", "experts", "tokens_per_expert"}},
      {"mla_decode", {"batch", "context", "heads"}},
      {"moe_alltoall", {"ranks", "tokens_per_rank", "topk", "bytes_per_token"}},
  };
  return k;
}

Op op_of(const PublishedEntry& e) {
  Op op;
  op.name = e.id;
  auto i = [&](const char* k) { return static_cast<std::int64_t>(e.shape.at(k)); };
  if (e.kind == "gemm") {
    op.kind = OpKind::kGemm;
    op.precision = e.dtype == "bf16" ? Precision::kBf16 : Precision::kFp8;
    op.shape.m = i("m");
    op.shape.n = i("n");
    op.shape.k = i("k");
    op.shape.scale_block = e.dtype == "fp8_block128" ? 128 : 0;
  } else if (e.kind == "grouped_gemm") {
    op.kind = OpKind::kGroupedGemm;
    op.precision = e.dtype == "bf16" ? Precision::kBf16 : Precision::kFp8;
    op.shape.n = i("n");
    op.shape.k = i("k");
    op.shape.expert_tokens.assign(static_cast<std::size_t>(i("experts")), i("tokens_per_expert"));
  } else {
    op.kind = OpKind::kAttentionDecode;
    op.shape.batch = i("batch");
    op.shape.context = i("context");
    op.shape.heads = i("heads");
    op.shape.new_tokens = 1;
    op.shape.kv_dim = 576;
    op.shape.v_dim = 512;
    op.shape.kv_heads = 1;
    op.shape.kv_bytes_per_element = e.dtype == "fp8" ? 1 : 2;
  }
  return op;
}

// The published metric of an op that takes `seconds`.
double metric_of(const PublishedEntry& e, double seconds) {
  const auto& s = e.shape;
  if (e.kind == "gemm") return 2 * s.at("m") * s.at("n") * s.at("k") / seconds / 1e12;
  if (e.kind == "grouped_gemm") {
    const double t = s.at("experts") * s.at("tokens_per_expert");
    if (e.metric == "tflops") return 2 * s.at("n") * s.at("k") * t / seconds / 1e12;
    const double el = e.dtype == "bf16" ? 2 : 1;  // DeepGEMM's GB/s: weights + inputs + BF16 outputs
    return (s.at("experts") * s.at("n") * s.at("k") * el + t * s.at("k") * el + t * s.at("n") * 2) / seconds / 1e9;
  }
  if (e.kind == "mla_decode") {
    const double b = s.at("batch"), c = s.at("context"), h = s.at("heads");
    if (e.metric == "tflops") return 2 * b * h * c * (576.0 + 512.0) / seconds / 1e12;
    const double kvb = e.dtype == "fp8" ? 656 : 1152;
    return (b * c * kvb + b * h * (576.0 + 512.0) * 2) / seconds / 1e9;
  }
  return 0;
}

}  // namespace

double PublishedCheck::error_pct() const {
  return predicted ? (*predicted - entry.value) / entry.value * 100.0 : std::nan("");
}

std::vector<PublishedEntry> load_published(const std::string& folder) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw ConfigError(folder, "", "expected the folder of published measurements");
  for (const auto& f : fs::directory_iterator(folder))
    if (f.is_regular_file() && f.path().extension() == ".json") files.push_back(f.path().generic_string());
  std::sort(files.begin(), files.end());
  std::vector<PublishedEntry> out;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    json j;
    try {
      j = json::parse(ss.str());
    } catch (const json::parse_error& e) {
      throw ConfigError(file, "", fmt::format("malformed JSON (byte {})", e.byte));
    }
    if (need_str(j, "kind", file, "") != "published_measurements")
      throw ConfigError(file, "/kind", "expected \"published_measurements\"");
    if (!j.contains("sources") || !j["sources"].is_object()) throw ConfigError(file, "/sources", "expected an object");
    if (!j.contains("entries") || !j["entries"].is_array()) throw ConfigError(file, "/entries", "expected an array");
    static const std::set<std::string> kAllowed = {"id",   "ref",  "source", "published_gpu", "gpu",  "kind",
                                                   "dtype", "shape", "metric", "value",        "note", "status"};
    for (std::size_t i = 0; i < j["entries"].size(); ++i) {
      const json& o = j["entries"][i];
      const std::string ptr = "/entries/" + std::to_string(i);
      if (!o.is_object()) throw ConfigError(file, ptr, "expected an object");
      for (const auto& [k, v] : o.items())
        if (!kAllowed.count(k)) throw ConfigError(file, ptr + "/" + k, "unknown member");
      PublishedEntry e;
      e.file = file;
      e.pointer = ptr;
      e.id = need_str(o, "id", file, ptr);
      e.ref = need_str(o, "ref", file, ptr);
      e.source = need_str(o, "source", file, ptr);
      if (!j["sources"].contains(e.source))
        throw ConfigError(file, ptr + "/source", "expected a key of \"sources\", found \"" + e.source + "\"");
      e.published_gpu = need_str(o, "published_gpu", file, ptr);
      e.gpu = need_str(o, "gpu", file, ptr);
      e.kind = need_str(o, "kind", file, ptr);
      if (!shape_keys().count(e.kind))
        throw ConfigError(file, ptr + "/kind", "expected gemm, grouped_gemm, mla_decode or moe_alltoall");
      e.dtype = need_str(o, "dtype", file, ptr);
      if (!o.contains("shape") || !o["shape"].is_object()) throw ConfigError(file, ptr + "/shape", "expected an object");
      for (const auto& k : shape_keys().at(e.kind)) e.shape[k] = need_num(o["shape"], k, file, ptr + "/shape");
      e.metric = need_str(o, "metric", file, ptr);
      if (e.metric != "tflops" && e.metric != "gbps" && e.metric != "logical_gbps")
        throw ConfigError(file, ptr + "/metric", "expected tflops, gbps or logical_gbps");
      e.value = need_num(o, "value", file, ptr);
      out.push_back(std::move(e));
    }
  }
  return out;
}

std::vector<PublishedCheck> check_published(const std::vector<PublishedEntry>& entries,
                                            const std::map<std::string, GpuSpec>& gpus,
                                            const std::map<std::string, Calibration>& cals) {
  std::vector<PublishedCheck> out;
  for (const auto& e : entries) {
    PublishedCheck c;
    c.entry = e;
    auto g = gpus.find(e.gpu);
    if (g == gpus.end()) {
      c.note = "no description hardware/gpus/" + e.gpu + ".json";
      out.push_back(std::move(c));
      continue;
    }
    const GpuSpec& gpu = g->second;
    const std::string src_id = gpu.extrapolated_from.value_or(gpu.id);
    auto cal = cals.find(src_id);
    if (cal == cals.end()) {
      c.note = "no measurements of " + src_id;
      out.push_back(std::move(c));
      continue;
    }
    if (e.kind == "moe_alltoall") {
      const int ranks = static_cast<int>(e.shape.at("ranks"));
      const AllToAllFit* f = alltoall_fit_for(cal->second.alltoall, ranks);
      auto sg = gpus.find(src_id);
      if (!f || sg == gpus.end()) {
        c.note = "no NCCL all-to-all measurements of " + src_id;
        out.push_back(std::move(c));
        continue;
      }
      const double tokens = e.shape.at("tokens_per_rank"), bpt = e.shape.at("bytes_per_token");
      const int topk = static_cast<int>(e.shape.at("topk"));
      const double x = moe_alltoall_offgpu_bytes(tokens, ranks, topk, bpt);
      const double ratio =
          gpu.nvlink_bandwidth_per_direction.value() / sg->second.nvlink_bandwidth_per_direction.value();
      const double t = alltoall_seconds_scaled(*f, x, ratio);
      c.predicted = moe_logical_bandwidth(tokens, ranks, topk, bpt, t) / 1e9;
      c.source = fmt::format("{}NCCL fit of {} ({} GPUs measured{})", src_id != gpu.id ? "extrapolated " : "", src_id,
                             f->gpus, f->gpus != ranks ? fmt::format(", {} published", ranks) : "");
      if (src_id != gpu.id) c.note = fmt::format("NVLink ratio {:.3g}", ratio);
    } else {
      const CalibratedCostModel model(cal->second);
      const OpCost cost = model.cost(op_of(e), gpu, CostOptions{});
      c.predicted = metric_of(e, to_seconds(cost.time));
      c.source = cost_source_name(cost.source);
    }
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace moesim::calib
