#include "sim/calib/record.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sim/calib/line_reader.h"
#include "sim/config/error.h"

namespace moesim::calib {

namespace {

using nlohmann::json;

void read_shape(const LineReader& top, Record& r) {
  const LineReader s = top.object("shape");
  RecordShape& sh = r.shape;
  const std::string& k = r.kernel;
  if (k == "gemm") {
    sh.m = s.integer("m", 1);
    sh.n = s.integer("n", 1);
    sh.k = s.integer("k", 1);
  } else if (k == "grouped_gemm") {
    sh.n = s.integer("n", 1);
    sh.k = s.integer("k", 1);
    sh.experts = s.integer("experts", 1);
    sh.expert_tokens = s.int_array("tokens", 0);
    sh.routing = s.str("routing");
    sh.total_tokens = s.integer("total_tokens", 0);
    if (static_cast<std::int64_t>(sh.expert_tokens.size()) != sh.experts)
      s.fail("tokens", fmt::format("expected {} per-expert counts (\"experts\"), found {}", sh.experts,
                                   sh.expert_tokens.size()));
    std::int64_t sum = 0;
    for (auto t : sh.expert_tokens) sum += t;
    if (sum != sh.total_tokens)
      s.fail("total_tokens", fmt::format("expected the sum of \"tokens\" ({}), found {}", sum, sh.total_tokens));
  } else if (k == "router") {
    sh.tokens = s.integer("tokens", 1);
    sh.experts = s.integer("experts", 1);
    sh.topk = s.integer("topk", 1);
    sh.groups = s.integer("groups", 1);
    sh.topk_groups = s.integer("topk_groups", 1);
    sh.scoring = s.str("scoring");
  } else if (k == "permute" || k == "unpermute") {
    sh.tokens = s.integer("tokens", 1);
    sh.hidden = s.integer("hidden", 1);
    sh.topk = s.integer("topk", 1);
    sh.experts = s.integer("experts", 1);
  } else if (k == "mla_decode") {
    sh.batch = s.integer("batch", 1);
    sh.context = s.integer("context", 1);
    sh.heads = s.integer("heads", 1);
    sh.kv_dim = s.integer("kv_dim", 1);
    sh.v_dim = s.integer("v_dim", 1);
  } else if (k == "nccl_alltoall") {
    sh.gpus = s.integer("gpus", 2);
    sh.bytes_per_peer = s.integer("bytes_per_peer", 0);
    sh.pattern = s.str("pattern");
    if (!r.check_failed) {
      const nlohmann::json& m = s.get("matrix");
      if (!m.is_array() || static_cast<std::int64_t>(m.size()) != sh.gpus)
        s.fail("matrix", fmt::format("expected a {0}x{0} array of byte counts", sh.gpus));
      for (std::size_t i = 0; i < m.size(); ++i) {
        const std::string key = "matrix/" + std::to_string(i);
        if (!m[i].is_array() || static_cast<std::int64_t>(m[i].size()) != sh.gpus)
          s.fail(key, fmt::format("expected {} byte counts", sh.gpus));
        std::vector<std::int64_t> row;
        for (std::size_t j = 0; j < m[i].size(); ++j) row.push_back(s.as_integer(m[i][j], key + "/" + std::to_string(j), 0));
        sh.matrix.push_back(std::move(row));
      }
    }
  } else if (k == "copy") {
    sh.bytes = s.integer("bytes", 1);
  } else if (k == "p2p") {
    sh.bytes = s.integer("bytes", 1);
    sh.method = s.str("method");
  } else if (k == "launch") {
    sh.graph = s.boolean("graph");
    sh.kernels = s.integer("kernels", 1);
    sh.host_ahead = s.has("host_ahead") ? s.boolean("host_ahead") : true;
  }
}

}  // namespace

bool is_known_kernel(const std::string& k) {
  static const char* const kKnown[] = {"gemm",       "grouped_gemm",  "router", "permute", "unpermute",
                                       "mla_decode", "nccl_alltoall", "copy",   "p2p",     "launch"};
  return std::find_if(std::begin(kKnown), std::end(kKnown), [&](const char* n) { return k == n; }) !=
         std::end(kKnown);
}

double check_tolerance(const std::string& kernel) {
  // The tolerances the harness suites check against (validate/kernels/*.cu).
  if (kernel == "router") return 1e-5;  // routing weights vs FP64 reference; wrong expert sets -> null
  if (kernel == "copy" || kernel == "p2p" || kernel == "nccl_alltoall" || kernel == "launch" || kernel == "permute")
    return 0.0;  // exact content checks
  return 1e-2;  // GEMMs, grouped GEMMs, unpermute, MLA decode: relative L2 error vs FP32
}

std::vector<Record> parse_records(const std::string& text, const std::string& file) {
  std::vector<Record> out;
  for_each_json_line(text, file, [&](const json& j, const std::string& where, int no) {
    LineReader top(j, where, "");
    Record r;
    r.file = file;
    r.line = no;
    r.kernel = top.str("kernel");
    r.dtype = top.str("dtype");
    r.gpu = top.str("gpu");
    r.impl = top.str_or("impl", "");
    for (const char* key : {"driver", "cuda", "cublas", "nccl"}) {
      if (!top.has(key)) continue;
      static const std::map<std::string, const char*> kLabel = {
          {"driver", "driver"}, {"cuda", "CUDA"}, {"cublas", "cuBLAS"}, {"nccl", "NCCL"}};
      r.environment += (r.environment.empty() ? "" : ", ") + std::string(kLabel.at(key)) + " " + top.str(key);
    }
    if (top.has("status")) {
      const std::string st = top.str("status");
      top.one_of("status", st, {"check_failed", "ok"});
      r.check_failed = st == "check_failed";
    }
    if (!top.has("shape")) top.fail("shape", "missing member \"shape\"");
    // mla_decode's small-shape checks print their failures on stderr only; any object is accepted here.
    r.shape_text = top.get("shape").dump();
    if (is_known_kernel(r.kernel)) read_shape(top, r);
    else top.object("shape");
    if (r.check_failed) {
      r.check_rel_err = top.has("check_rel_err") ? top.number_or_null("check_rel_err", 0)
                                                 : std::numeric_limits<double>::infinity();
      out.push_back(std::move(r));
      return;
    }
    r.median_us = top.number("median_us", 0);
    if (!(r.median_us > 0)) top.fail("median_us", "expected a positive time in microseconds, found 0");
    r.p10_us = top.number("p10_us", 0);
    r.p90_us = top.number("p90_us", 0);
    r.reps = static_cast<int>(top.integer("reps", 1));
    r.check_rel_err = top.number_or_null("check_rel_err", 0);
    r.flops = top.number("flops", 0);
    r.bytes = top.number("bytes", 0);
    out.push_back(std::move(r));
  });
  return out;
}

std::string read_measurement_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, "", "cannot read the measurement file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<Record> read_records_file(const std::string& path) { return parse_records(read_measurement_text(path), path); }

std::vector<std::string> jsonl_files(const std::vector<std::string>& folders) {
  std::vector<std::string> files;
  for (const auto& f : folders) {
    std::error_code ec;
    if (!std::filesystem::is_directory(f, ec)) throw ConfigError(f, "", "expected a folder of *.jsonl measurement files");
    for (const auto& e : std::filesystem::directory_iterator(f))
      if (e.is_regular_file() && e.path().extension() == ".jsonl") files.push_back(e.path().generic_string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<Record> read_records(const std::vector<std::string>& folders) {
  std::vector<Record> out;
  for (const auto& p : jsonl_files(folders)) {
    auto rs = read_records_file(p);
    out.insert(out.end(), std::make_move_iterator(rs.begin()), std::make_move_iterator(rs.end()));
  }
  return out;
}

}  // namespace moesim::calib
