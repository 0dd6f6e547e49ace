// Routing draws, placement and the all-to-all traffic they imply, against
// hand-worked expectations (occupancy formula, specs.md C.4 byte counts).
#include "sim/model/routing.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "sim/config/error.h"
#include "sim/config/hardware_load.h"
#include "sim/config/model_load.h"
#include "sim/model/placement.h"
#include "sim/model/routing_trace.h"
#include "sim/model/routing_traffic.h"
#include "tests/unit/test_util.h"

namespace moesim {
namespace {

using test::source_path;

ModelSpec model(const std::string& id) { return load_model(source_path("models/" + id + ".json")); }
GpuSpec h200() { return load_gpu(source_path("hardware/gpus/h200-sxm.json")); }

std::vector<int> moe_layer_ids(const ModelSpec& m) {
  std::vector<int> ids;
  for (int l = 0; l < m.layers; ++l) {
    if (m.is_moe_layer(l)) ids.push_back(l);
  }
  return ids;
}

TEST(Routing, ParseSpecs) {
  EXPECT_EQ(parse_routing("uniform", "--routing").kind, RoutingKind::kUniform);
  const RoutingSpec z = parse_routing("zipf:1.2", "--routing");
  EXPECT_EQ(z.kind, RoutingKind::kZipf);
  EXPECT_DOUBLE_EQ(z.parameter, 1.2);
  EXPECT_EQ(parse_routing("trace:a.json", "--routing").trace_file, "a.json");
  EXPECT_THROW(parse_routing("zipf:-1", "--routing"), ConfigError);
  EXPECT_THROW(parse_routing("zipf:", "--routing"), ConfigError);
  EXPECT_THROW(parse_routing("poisson:3", "--routing"), ConfigError);
}

TEST(Routing, UniformDistinctExpertsMatchOccupancyFormula) {
  // E·(1 − (1 − k/E)^B) with E = 256, k = 8, B = 16: 256·(1 − 0.96875^16) = 256·(1 − 0.60173) = 101.96.
  const ModelSpec m = model("deepseek-r1");
  const auto ids = moe_layer_ids(m);
  const RoutingModel r(m, parse_routing("uniform", ""), 7, ids);
  const double expected = 256.0 * (1.0 - std::pow(1.0 - 8.0 / 256, 16));
  double sum = 0;
  int draws = 0;
  std::vector<std::uint16_t> out(16 * 8);
  for (std::uint64_t step = 0; step < 8; ++step) {
    for (int l = 0; l < r.layers(); ++l) {
      Rng rng = r.stream(l, step);
      r.draw_tokens(l, rng, 16, out);
      std::vector<bool> hit(256, false);
      for (const auto e : out) hit[e] = true;
      sum += static_cast<double>(std::count(hit.begin(), hit.end(), true));
      ++draws;
    }
  }
  // 464 draws; one draw's sd is about sqrt(256·0.40·0.60) ≈ 7.8 (less: counts are negatively correlated),
  // so the mean's sd is < 0.37: 1.5 is over 4 sd.
  EXPECT_NEAR(sum / draws, expected, 1.5);
}

TEST(Routing, TokensPickDistinctExpertsInAtMostFourGroups) {
  const ModelSpec m = model("deepseek-r1");  // 8 groups of 32, top-4 groups
  const auto ids = moe_layer_ids(m);
  for (const char* spec : {"uniform", "zipf:1.5"}) {
    const RoutingModel r(m, parse_routing(spec, ""), 3, ids);
    std::vector<std::uint16_t> out(2000 * 8);
    Rng rng = r.stream(0, 0);
    r.draw_tokens(0, rng, 2000, out);
    int multi_group_tokens = 0;
    for (std::size_t t = 0; t < 2000; ++t) {
      std::vector<int> e(out.begin() + static_cast<long>(t * 8), out.begin() + static_cast<long>(t * 8 + 8));
      std::sort(e.begin(), e.end());
      EXPECT_EQ(std::unique(e.begin(), e.end()), e.end()) << spec << ": repeated expert";
      std::vector<int> groups;
      for (const int x : e) groups.push_back(x / 32);
      std::sort(groups.begin(), groups.end());
      const auto ng = std::unique(groups.begin(), groups.end()) - groups.begin();
      EXPECT_LE(ng, 4) << spec << ": token " << t << " outside its 4 groups";
      multi_group_tokens += ng == 4 ? 1 : 0;
    }
    // Uniform: 8 picks nearly always fill all 4 groups; the limit is binding, not vacuous.
    if (std::string(spec) == "uniform") EXPECT_GT(multi_group_tokens, 1900);
  }
}

TEST(Routing, InclusionProbabilities) {
  // Uniform: π = k/E exactly.
  const std::vector<double> u(256, 1.0 / 256);
  for (const double x : inclusion_probabilities(u, 8)) EXPECT_NEAR(x, 8.0 / 256, 1e-12);
  // Skewed: Σπ = k, π ≤ 1, monotone in p; a dominant expert is (almost) always in the top-k.
  const std::vector<double> p = {0.5, 0.2, 0.1, 0.1, 0.05, 0.05};
  const auto pi = inclusion_probabilities(p, 2);
  EXPECT_NEAR(std::accumulate(pi.begin(), pi.end(), 0.0), 2.0, 1e-9);
  for (std::size_t i = 1; i < pi.size(); ++i) EXPECT_LE(pi[i], pi[i - 1] + 1e-12);
  EXPECT_GT(pi[0], 0.75);
  EXPECT_LE(pi[0], 1.0);
}

TEST(Routing, AggregateCountsMatchPerTokenMeans) {
  const ModelSpec m = model("deepseek-r1");
  const auto ids = moe_layer_ids(m);
  const RoutingModel r(m, parse_routing("zipf:1.0", ""), 11, ids);
  std::vector<double> per_token(256, 0), aggregate(256, 0);
  std::vector<std::uint16_t> out(512 * 8);
  std::vector<std::int64_t> counts(256, 0);
  for (std::uint64_t s = 0; s < 40; ++s) {
    Rng a = r.stream(0, s);
    r.draw_tokens(0, a, 512, out);
    for (const auto e : out) per_token[e] += 1;
    Rng b = r.stream(0, 1000 + s);
    r.draw_counts(0, b, 512, counts);
  }
  for (std::size_t e = 0; e < 256; ++e) aggregate[e] = static_cast<double>(counts[e]);
  // Same total selections: 40 · 512 · 8.
  EXPECT_DOUBLE_EQ(std::accumulate(aggregate.begin(), aggregate.end(), 0.0), 40.0 * 512 * 8);
  // The hottest expert's mean count agrees within 5% (its inclusion probability is estimated from per-token
  // draws because the group limit binds; 20,480 tokens here, so sampling noise is ~1-2%).
  const auto hot = static_cast<std::size_t>(std::max_element(per_token.begin(), per_token.end()) - per_token.begin());
  EXPECT_NEAR(aggregate[hot] / per_token[hot], 1.0, 0.05);
  // And no count exceeds one per token.
  for (const auto c : counts) EXPECT_LE(c, 40 * 512);
}

TEST(Routing, SameSeedSameDraws) {
  const ModelSpec m = model("deepseek-r1");
  const auto ids = moe_layer_ids(m);
  const RoutingModel a(m, parse_routing("zipf:1.2", ""), 5, ids);
  const RoutingModel b(m, parse_routing("zipf:1.2", ""), 5, ids);
  const RoutingModel c(m, parse_routing("zipf:1.2", ""), 6, ids);
  std::vector<std::uint16_t> x(64 * 8), y(64 * 8), z(64 * 8);
  Rng ra = a.stream(4, 9), rb = b.stream(4, 9), rc = c.stream(4, 9);
  a.draw_tokens(4, ra, 64, x);
  b.draw_tokens(4, rb, 64, y);
  c.draw_tokens(4, rc, 64, z);
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
}

TEST(Placement, ContiguousAndEplbByHand) {
  const ExpertPlacement c = contiguous_placement(256, 8, 0);
  EXPECT_EQ(c.rank_slots(0), 32);
  EXPECT_EQ(c.slot_expert[32], 32);
  EXPECT_EQ(c.slot_rank[32], 1);
  // 256 + 32 redundant over 72 ranks: 4 slots each; expert 0 has 2 replicas.
  const ExpertPlacement r = contiguous_placement(256, 72, 32);
  EXPECT_EQ(r.rank_slots(71), 4);
  EXPECT_EQ(r.replicas(0), 2);
  EXPECT_EQ(r.replicas(100), 1);
  // EPLB, loads {3,1,1,1} on 2 ranks with 2 redundant slots (3 slots per rank):
  // replicate: e0 3 -> 1.5 per replica -> still highest -> 3 replicas at 1.0; then every replica weighs 1 and the
  // packing alternates: ranks end with 3 and 3.
  const std::vector<double> load = {3, 1, 1, 1};
  const ExpertPlacement e = eplb_placement(load, 2, 2);
  EXPECT_EQ(e.replicas(0), 3);
  const auto rl = rank_loads(e, load);
  EXPECT_DOUBLE_EQ(rl[0], 3);
  EXPECT_DOUBLE_EQ(rl[1], 3);
  // Contiguous without redundancy: rank 0 {e0, e1} = 4, rank 1 {e2, e3} = 2.
  const auto cl = rank_loads(contiguous_placement(4, 2, 0), load);
  EXPECT_DOUBLE_EQ(cl[0], 4);
  EXPECT_DOUBLE_EQ(cl[1], 2);
  EXPECT_THROW(contiguous_placement(4, 5, 0), std::invalid_argument);
}

TEST(Placement, EplbEvensZipfLoad) {
  const ModelSpec m = model("deepseek-r1");
  const auto ids = moe_layer_ids(m);
  const RoutingModel r(m, parse_routing("zipf:1.2", ""), 1, ids);
  const auto p = r.popularity(0);
  auto max_over_mean = [](const std::vector<double>& v) {
    return *std::max_element(v.begin(), v.end()) / (std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()));
  };
  const double contiguous = max_over_mean(rank_loads(contiguous_placement(256, 32, 0), p));
  const double eplb0 = max_over_mean(rank_loads(eplb_placement(p, 32, 0), p));
  const double eplb32 = max_over_mean(rank_loads(eplb_placement(p, 32, 32), p));
  EXPECT_GT(contiguous, 2.0);  // Zipf 1.2: the hottest expert alone carries ~1/6 of the load
  EXPECT_LT(eplb32, eplb0);
  EXPECT_LT(eplb0, contiguous);
  EXPECT_LT(eplb32, 1.25);
}

TEST(Traffic, DispatchBytesPerTokenMatchSpecs) {
  const ModelSpec m = model("deepseek-r1");
  const auto v = m.precision("fp8");
  const auto ids = moe_layer_ids(m);
  const RoutingModel r(m, parse_routing("uniform", ""), 2, ids);
  auto total_dispatch = [&](DispatchDtype d, bool dedup) {
    ExpansionOptions o;
    o.dispatch = d;
    o.dedup = dedup;
    const ForwardPass fp = expand_forward(m, v, h200(), parse_plan("ep=8", "", ""), BatchShape::decode(64, 100), o);
    MoeRouter router(fp, r, make_placements(fp, r, false));
    MoeLayerTraffic t;
    router.route(0, 0, t);
    double bytes = 0, combine = 0;
    for (const double x : t.dispatch) bytes += x;
    for (const double x : t.combine) combine += x;
    EXPECT_DOUBLE_EQ(std::accumulate(t.gpu_rows.begin(), t.gpu_rows.end(), std::int64_t{0}), 64 * 8);
    return std::pair{bytes, combine};
  };
  // Per selected expert (no dedup, incl. local copies): 64 tokens x 59,264 B FP8 (specs.md C.4), 114,688 B combine.
  const auto [fp8, comb] = total_dispatch(DispatchDtype::kFp8, false);
  EXPECT_DOUBLE_EQ(fp8, 64.0 * 59264);
  EXPECT_DOUBLE_EQ(comb, 64.0 * 114688);
  // NVFP4: 8·(3584 + 448 + 16) = 32,384 B per token.
  EXPECT_DOUBLE_EQ(total_dispatch(DispatchDtype::kNvfp4, false).first, 64.0 * 32384);
  // Dedup (once per destination GPU): with EP8 each GPU holds exactly one of DeepSeek's 8 expert groups
  // (32 experts), and a token's 8 experts lie in at most 4 groups, so it reaches at most 4 GPUs: at most
  // half the bytes. (Without the group limit it would be 8·(1 − C(224,8)/C(256,8)) ≈ 5.3 GPUs.)
  const double ratio = total_dispatch(DispatchDtype::kFp8, true).first / fp8;
  EXPECT_LE(ratio, 0.5);
  EXPECT_GT(ratio, 0.48);
}

TEST(Traffic, AggregatePathAgreesWithPerTokenOnTotals) {
  const ModelSpec m = model("deepseek-r1");
  const auto ids = moe_layer_ids(m);
  const RoutingModel r(m, parse_routing("zipf:1.2", ""), 2, ids);
  const ForwardPass fp = expand_forward(m, m.precision("fp8"), h200(), parse_plan("ep=8", "", ""),
                                        BatchShape::decode(512, 100), {});
  MoeRouter exact(fp, r, make_placements(fp, r, false), {.per_token_limit = 1 << 30});
  MoeRouter fast(fp, r, make_placements(fp, r, false), {.per_token_limit = 0});
  ASSERT_TRUE(exact.per_token());
  ASSERT_FALSE(fast.per_token());
  double exact_bytes = 0, fast_bytes = 0;
  std::vector<double> exact_rows(8, 0), fast_rows(8, 0);
  MoeLayerTraffic t;
  for (std::uint64_t s = 0; s < 20; ++s) {
    exact.route(0, s, t);
    for (const double x : t.dispatch) exact_bytes += x;
    for (std::size_t g = 0; g < 8; ++g) exact_rows[g] += static_cast<double>(t.gpu_rows[g]);
    fast.route(0, s, t);
    for (const double x : t.dispatch) fast_bytes += x;
    for (std::size_t g = 0; g < 8; ++g) fast_rows[g] += static_cast<double>(t.gpu_rows[g]);
  }
  EXPECT_NEAR(fast_bytes / exact_bytes, 1.0, 0.05);  // the dedup ratio approximation
  for (std::size_t g = 0; g < 8; ++g) EXPECT_NEAR(fast_rows[g] / exact_rows[g], 1.0, 0.1) << g;
}

TEST(RoutingTrace, LoadsAndRejectsBadFiles) {
  const ModelSpec m = model("mixtral-8x22b");  // 8 experts, 56 MoE layers
  std::string layers;
  for (int l = 0; l < m.layers; ++l) layers += (l ? "," : "") + fmt::format("\"{}\": [8,1,1,1,1,1,1,2]", l);
  const test::TempFile good("t.json", R"({"format": "moesim-routing-trace/1", "experts": 8, "layers": {)" + layers + "}}");
  const RoutingTrace t = load_routing_trace(good.path(), m);
  EXPECT_EQ(t.layers.size(), 56u);
  const RoutingModel r(m, parse_routing("trace:" + good.path(), ""), 1, moe_layer_ids(m));
  EXPECT_DOUBLE_EQ(r.popularity(3)[0], 8.0 / 16);

  auto error_of = [&](const std::string& body) {
    const test::TempFile f("bad.json", body);
    try {
      load_routing_trace(f.path(), m);
    } catch (const ConfigError& e) {
      return e.pointer();
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of(R"({"format": "other/2", "experts": 8, "layers": {}})"), "/format");
  EXPECT_EQ(error_of(R"({"format": "moesim-routing-trace/1", "experts": 9, "layers": {}})"), "/experts");
  EXPECT_EQ(error_of(R"({"format": "moesim-routing-trace/1", "experts": 8, "layers": {}, "extra": 1})"), "/extra");
  EXPECT_EQ(error_of(R"({"format": "moesim-routing-trace/1", "experts": 8, "layers": {"0": [1,1,1,1,1,1,1,-1]}})"),
            "/layers/0/7");
  EXPECT_EQ(error_of(R"({"format": "moesim-routing-trace/1", "experts": 8, "layers": {"0": [1,1,1,1,1,1,1,1]}})"),
            "/layers");  // layer 1 missing
}

}  // namespace
}  // namespace moesim
