#include "sim/config/scenario.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "sim/config/description.h"
#include "sim/config/hardware_load.h"
#include "sim/config/json_reader.h"
#include "sim/config/model_load.h"
#include "sim/model/routing.h"

namespace moesim {

const char* pool_role_name(PoolRole r) {
  switch (r) {
    case PoolRole::kAggregated: return "aggregated";
    case PoolRole::kPrefill: return "prefill";
    case PoolRole::kDecode: return "decode";
  }
  return "?";
}

const char* router_policy_name(RouterPolicy r) {
  return r == RouterPolicy::kRoundRobin ? "round-robin" : "least-loaded";
}

int ScenarioSpec::used_gpus() const {
  int n = 0;
  for (const PoolSpec& p : pools) n += pool_gpus(p);
  return n;
}

bool ScenarioSpec::disaggregated() const {
  for (const PoolSpec& p : pools)
    if (p.role != PoolRole::kAggregated) return true;
  return false;
}

std::vector<double> default_mtp_acceptance(int depth) {
  // published-measurements.md F2 (TRT-LLM blog 1, 8 x B200): mean accepted lengths
  // MTP1 1.92, MTP2 2.58, MTP3 2.82 => cumulative products 0.92, 0.66, 0.24.
  const double cumulative[] = {0.92, 0.66, 0.24};
  std::vector<double> p;
  for (int i = 0; i < depth; ++i) {
    const int j = i < 3 ? i : 2;
    p.push_back(j == 0 ? cumulative[0] : cumulative[j] / cumulative[j - 1]);
  }
  return p;
}

namespace {

using nlohmann::json;

std::uint64_t fnv1a_update(std::uint64_t h, const std::string& bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Duration seconds(double s) { return duration_from_seconds_ceil(s); }

// "12.5 req/s" or "12.5 /s".
double parse_rate(ObjectReader& r, const std::string& key) {
  const std::string text = r.string(key);
  double v = 0;
  char unit[16] = {0};
  const int n = std::sscanf(text.c_str(), "%lf %15s", &v, unit);
  const std::string u = unit;
  if (n != 2 || (u != "req/s" && u != "/s") || !(v > 0) || !std::isfinite(v))
    r.fail_at(key, fmt::format("expected a positive request rate such as \"12.5 req/s\", got \"{}\"", text));
  return v;
}

const json& raw_at(const json& doc, const std::string& pointer) { return doc.at(json::json_pointer(pointer)); }

LengthDistribution read_length(ObjectReader& parent, const std::string& key, const json& doc) {
  LengthDistribution d;
  if (!parent.has(key)) parent.fail_at(key, "missing required value: a token count or a distribution object");
  const json& raw = raw_at(doc, parent.pointer_of(key));
  if (!raw.is_object() || raw.contains("value")) {
    d.kind = LengthDistribution::Kind::kFixed;
    d.min = d.max = static_cast<int>(parent.integer(key, 1, 10'000'000));
    d.mean = d.min;
    return d;
  }
  ObjectReader o = parent.child(key);
  const std::string kind = o.one_of("distribution", {"fixed", "uniform", "normal"});
  if (kind == "fixed") {
    d.kind = LengthDistribution::Kind::kFixed;
    d.min = d.max = static_cast<int>(o.integer("value", 1, 10'000'000));
    d.mean = d.min;
  } else {
    d.min = static_cast<int>(o.integer("min", 1, 10'000'000));
    d.max = static_cast<int>(o.integer("max", 1, 10'000'000));
    if (d.max < d.min) o.fail_at("max", fmt::format("max ({}) is below min ({})", d.max, d.min));
    if (kind == "uniform") {
      d.kind = LengthDistribution::Kind::kUniform;
      d.mean = (d.min + d.max) / 2.0;
    } else {
      d.kind = LengthDistribution::Kind::kNormal;
      d.mean = o.number("mean", 1, 1e7);
      d.sd = o.number("sd", 0, 1e7);
    }
  }
  o.finish();
  return d;
}

WorkloadSpec read_workload(ObjectReader& w, const json& doc, const std::string& file) {
  WorkloadSpec s;
  ObjectReader arr = w.child("arrivals");
  const std::string kind = arr.one_of("kind", {"poisson", "closed-loop", "trace"});
  if (kind == "poisson") {
    s.arrival = ArrivalKind::kPoisson;
    s.rate_per_s = parse_rate(arr, "rate");
  } else if (kind == "closed-loop") {
    s.arrival = ArrivalKind::kClosedLoop;
    s.concurrency = static_cast<int>(arr.integer("concurrency", 1, 10'000'000));
  } else {
    s.arrival = ArrivalKind::kTrace;
    s.trace_file = resolve_relative(file, arr.string("file"));
    s.trace = load_trace(s.trace_file);
    if (s.trace.empty()) arr.fail_at("file", fmt::format("the trace {} holds no request", s.trace_file));
  }
  arr.finish();
  if (s.arrival == ArrivalKind::kTrace) {
    if (w.has("input_tokens") || w.has("output_tokens"))
      w.fail_at(w.has("input_tokens") ? "input_tokens" : "output_tokens",
                "lengths come from the trace file: remove input_tokens/output_tokens");
    s.input.kind = s.output.kind = LengthDistribution::Kind::kFixed;
  } else {
    s.input = read_length(w, "input_tokens", doc);
    s.output = read_length(w, "output_tokens", doc);
  }
  if (w.has("requests")) s.requests = w.integer("requests", 1, 100'000'000);
  if (w.has("duration")) s.duration = seconds(w.quantity("duration", Dim::kSeconds, 1e-6, 1e7));
  if (s.arrival != ArrivalKind::kTrace && !s.requests && !s.duration)
    w.fail("give \"requests\" (a count) or \"duration\" (e.g. \"600 s\"): the workload must end");
  if (auto wu = w.optional_child("warmup")) {
    if (wu->has("requests")) s.warmup_requests = wu->integer("requests", 0, 100'000'000);
    if (wu->has("duration")) s.warmup_duration = seconds(wu->quantity("duration", Dim::kSeconds, 0, 1e7));
    wu->finish();
    if (s.requests && s.warmup_requests >= *s.requests)
      w.fail_at("warmup", fmt::format("the warm-up ({} requests) leaves none of the {} requests to measure",
                                      s.warmup_requests, *s.requests));
  }
  s.seed = static_cast<std::uint64_t>(w.integer_or("seed", 1, 0, 9'007'199'254'740'991LL));
  w.finish();
  return s;
}

SchedulerLimits read_limits(ObjectReader& pool) {
  SchedulerLimits l;
  ObjectReader s = pool.child("scheduler");
  l.max_batch_size = static_cast<int>(s.integer("max_batch_size", 1, 1'000'000));
  l.max_tokens_per_step = static_cast<int>(s.integer("max_tokens_per_step", 1, 10'000'000));
  l.chunk_size = static_cast<int>(s.integer_or("chunk_size", l.max_tokens_per_step, 1, 10'000'000));
  s.finish();
  return l;
}

void check_deployment(ScenarioSpec& sc, ObjectReader& dep) {
  const int total = sc.cluster.total_gpus();
  if (sc.used_gpus() > total) {
    std::string parts;
    for (const PoolSpec& p : sc.pools)
      parts += fmt::format("{}{} x {} ({} GPUs)", parts.empty() ? "" : " + ", p.instances, p.plan.to_string(),
                           sc.pool_gpus(p));
    dep.fail_at("pools", fmt::format("the pools need {} GPUs ({}) but the cluster has {} ({} x {} GPUs of {})",
                                     sc.used_gpus(), parts, total, sc.cluster.domains,
                                     sc.cluster.system.scale_up.domain_gpus, sc.cluster.system.id));
  }
  bool agg = false, pre = false, dec = false;
  for (const PoolSpec& p : sc.pools) {
    agg |= p.role == PoolRole::kAggregated;
    pre |= p.role == PoolRole::kPrefill;
    dec |= p.role == PoolRole::kDecode;
  }
  if (agg && (pre || dec))
    dep.fail_at("pools", "mix of aggregated and prefill/decode pools: use either aggregated pools or a "
                         "prefill pool and a decode pool");
  if (pre != dec)
    dep.fail_at("pools", pre ? "a prefill pool needs a decode pool to hand its requests to"
                             : "a decode pool needs a prefill pool to fill its KV cache");
}

}  // namespace

std::vector<TraceEntry> load_trace(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path, "", "cannot read the trace file: it does not exist or cannot be opened");
  std::vector<TraceEntry> out;
  std::string line;
  int lineno = 0;
  double prev = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const std::size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    const std::string where = fmt::format("line {}", lineno);
    double t = 0, in_tok = 0, out_tok = 0;
    char extra = 0;
    if (std::sscanf(line.c_str(), " %lf , %lf , %lf %c", &t, &in_tok, &out_tok, &extra) != 3)
      throw ConfigError(path, where,
                        fmt::format("expected \"arrival_s,input_tokens,output_tokens\", got \"{}\"", line));
    if (!(t >= 0) || !std::isfinite(t)) throw ConfigError(path, where, fmt::format("negative arrival time {}", t));
    if (in_tok < 1 || out_tok < 1 || std::floor(in_tok) != in_tok || std::floor(out_tok) != out_tok ||
        in_tok > 1e7 || out_tok > 1e7)
      throw ConfigError(path, where,
                        fmt::format("token counts must be whole numbers >= 1, got input {} and output {}", in_tok,
                                    out_tok));
    if (t < prev)
      throw ConfigError(path, where,
                        fmt::format("arrivals must be sorted: {} s comes after {} s on an earlier line", t, prev));
    prev = t;
    out.push_back({seconds(t), static_cast<int>(in_tok), static_cast<int>(out_tok)});
  }
  return out;
}

ScenarioSpec load_scenario(const std::string& path, std::optional<std::uint64_t> seed_override) {
  const json doc = read_json_file(path);
  ScenarioSpec sc;
  sc.file = path;
  ReadContext ctx{path, &sc.provenance, /*require_sources=*/false};
  ObjectReader root(doc, ctx, "");
  const DescriptionHead head = read_description_head(root, "scenario");
  sc.id = head.id;
  sc.name = head.name;
  sc.mirrors = root.optional_string("mirrors").value_or("");

  ObjectReader model = root.child("model");
  const std::string model_file = resolve_relative(path, model.string("file"));
  sc.model = load_model(model_file);
  sc.precision = model.optional_string("precision").value_or(sc.model.native_precision);
  if (!sc.model.precisions.count(sc.precision)) {
    std::string names;
    for (const auto& [n, v] : sc.model.precisions) names += (names.empty() ? "" : ", ") + n;
    model.fail_at("precision", fmt::format("{} has no precision variant \"{}\": expected one of {}", sc.model.name,
                                           sc.precision, names));
  }
  model.finish();

  ObjectReader system = root.child("system");
  const std::string system_file = resolve_relative(path, system.string("file"));
  sc.cluster.system = load_system(system_file);
  sc.cluster.domains = static_cast<int>(system.integer("domains", 1, 4096));
  system.finish();

  ObjectReader dep = root.child("deployment");
  ObjectReader kv = dep.child("kv_cache");
  const std::string dt = kv.one_of("dtype", {"bf16", "fp8", "fp8_flashmla"});
  sc.kv.dtype = dt == "bf16" ? KvDtype::kBf16 : dt == "fp8" ? KvDtype::kFp8 : KvDtype::kFp8FlashMla;
  sc.kv.memory_fraction = kv.number("memory_fraction", 0.01, 1.0);
  if (kv.has("reserve")) sc.kv.reserve_bytes = kv.quantity("reserve", Dim::kBytes, 0, 1e13);
  sc.kv.block_tokens = static_cast<int>(kv.integer_or("block_tokens", 64, 1, 4096));
  kv.finish();

  if (auto mtp = dep.optional_child("mtp")) {
    sc.mtp.depth = static_cast<int>(mtp->integer("depth", 0, 8));
    if (auto acc = mtp->optional_child("acceptance")) {
      for (int i = 1; i <= sc.mtp.depth; ++i)
        sc.mtp.acceptance.push_back(acc->number(fmt::format("p{}", i), 0, 1));
      acc->finish();
    } else {
      sc.mtp.acceptance = default_mtp_acceptance(sc.mtp.depth);
      sc.mtp.acceptance_default = sc.mtp.depth > 0;
    }
    mtp->finish();
    if (sc.mtp.depth > 0 && sc.model.mtp_layers == 0)
      mtp->fail_at("depth", fmt::format("MTP depth {} given, but {} has no MTP module", sc.mtp.depth, sc.model.name));
  }
  sc.two_batch_overlap = dep.has("overlap") && dep.one_of("overlap", {"none", "two-batch"}) == "two-batch";
  sc.staged_dispatch = dep.has("dispatcher") && dep.one_of("dispatcher", {"fused", "staged"}) == "staged";
  if (dep.has("routing")) {
    sc.routing = dep.string("routing");
    if (sc.routing.rfind("trace:", 0) == 0) sc.routing = "trace:" + resolve_relative(path, sc.routing.substr(6));
    try {
      (void)parse_routing(sc.routing, path);
    } catch (const ConfigError& e) {
      std::string msg = e.what();
      const std::string prefix = path + ": ";
      if (msg.rfind(prefix, 0) == 0) msg = msg.substr(prefix.size());
      dep.fail_at("routing", msg);
    }
  }
  sc.eplb = dep.boolean_or("eplb", false);
  if (dep.has("router"))
    sc.router = dep.one_of("router", {"round-robin", "least-loaded"}) == "round-robin" ? RouterPolicy::kRoundRobin
                                                                                        : RouterPolicy::kLeastLoaded;

  std::vector<ObjectReader> pools = dep.object_array("pools");
  if (pools.empty()) dep.fail_at("pools", "expected at least one instance pool");
  for (ObjectReader& pr : pools) {
    PoolSpec p;
    p.pointer = pr.pointer();
    p.name = pr.string("name");
    for (const PoolSpec& q : sc.pools)
      if (q.name == p.name) pr.fail_at("name", fmt::format("pool name \"{}\" is used twice", p.name));
    const std::string role = pr.one_of("role", {"aggregated", "prefill", "decode"});
    p.role = role == "aggregated" ? PoolRole::kAggregated : role == "prefill" ? PoolRole::kPrefill : PoolRole::kDecode;
    p.instances = static_cast<int>(pr.integer("instances", 1, 100'000));
    p.plan = parse_plan(pr.string("plan"), path, pr.pointer_of("plan"));
    if (sc.mtp.depth > 0) p.plan.mtp = true;
    check_plan(p.plan, sc.model, path, pr.pointer_of("plan"));
    p.limits = read_limits(pr);
    if (p.limits.max_tokens_per_step < 1 + sc.mtp.depth)
      pr.fail_at("scheduler", fmt::format("max_tokens_per_step {} cannot hold one decode step of {} tokens (MTP depth {})",
                                          p.limits.max_tokens_per_step, 1 + sc.mtp.depth, sc.mtp.depth));
    pr.finish();
    sc.pools.push_back(p);
  }
  check_deployment(sc, dep);
  dep.finish();

  ObjectReader wl = root.child("workload");
  sc.workload = read_workload(wl, doc, path);
  if (seed_override) sc.workload.seed = *seed_override;

  // Every rank must hold the longest request, or preemption could never make room for it.
  int longest = 0;
  if (sc.workload.arrival == ArrivalKind::kTrace) {
    for (const TraceEntry& e : sc.workload.trace) longest = std::max(longest, e.input + e.output);
  } else {
    longest = sc.workload.input.max + sc.workload.output.max;
  }
  longest += sc.mtp.depth + 1;
  for (std::size_t i = 0; i < sc.pools.size(); ++i) {
    const PoolSpec& p = sc.pools[i];
    MemoryOptions mo{sc.kv.dtype, sc.kv.memory_fraction, sc.kv.reserve_bytes};
    const MemoryPlan mp = plan_memory(sc.model, sc.precision_variant(), sc.cluster.system.gpu, p.plan, mo);
    if (!mp.fits)
      throw ConfigError(path, p.pointer + "/plan",
                        fmt::format("the plan {} does not fit {} on {}: {:.1f} GB of weights per GPU + {:.1f} GB "
                                    "reserve exceed the {:.1f} GB usable",
                                    p.plan.to_string(), sc.model.name, sc.cluster.system.gpu.name,
                                    mp.weight_bytes_per_gpu / 1e9, sc.kv.reserve_bytes / 1e9,
                                    sc.cluster.system.gpu.hbm_usable.value() / 1e9));
    const double rank_tokens = std::floor(mp.kv_tokens_per_gpu / sc.kv.block_tokens) * sc.kv.block_tokens;
    if (rank_tokens < longest)
      throw ConfigError(path, p.pointer + "/plan",
                        fmt::format("the KV cache of one attention rank holds {:.0f} tokens, less than the longest "
                                    "request ({} tokens)",
                                    rank_tokens, longest));
  }

  if (auto slo = root.optional_child("slo")) {
    for (const char* key : {"ttft", "tpot"}) {
      if (auto t = slo->optional_child(key)) {
        SloTarget target;
        target.percentile = t->number("percentile", 1, 100);
        target.max = seconds(t->quantity("max", Dim::kSeconds, 1e-9, 1e6));
        t->finish();
        (std::string(key) == "ttft" ? sc.slo.ttft : sc.slo.tpot) = target;
      }
    }
    slo->finish();
  }
  if (auto price = root.optional_child("price")) {
    sc.price_per_gpu_hour = price->quantity("per_gpu_hour", Dim::kUsdPerHour, 0, 1e4);
    price->finish();
  }
  root.finish();

  sc.input_files = {path, model_file, system_file, sc.cluster.system.gpu.file};
  if (!sc.workload.trace_file.empty()) sc.input_files.push_back(sc.workload.trace_file);
  std::uint64_t h = 14695981039346656037ull;
  for (const std::string& f : sc.input_files) {
    h = fnv1a_update(h, read_bytes(f));
    h = fnv1a_update(h, std::string(1, '\0'));
  }
  sc.input_hash = h;
  return sc;
}

}  // namespace moesim
