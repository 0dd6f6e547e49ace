#include "sim/hw/collectives.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <numeric>
#include <vector>

#include "sim/hw/analytic_comm.h"
#include "tests/unit/hw/test_systems.h"

namespace moesim {
namespace {

using namespace std::chrono_literals;

std::vector<GpuId> first_gpus(std::size_t n) {
  std::vector<GpuId> g;
  for (std::uint32_t i = 0; i < n; ++i) g.emplace_back(i);
  return g;
}

// Runs the plan on a fresh simulator in fluid mode and returns the finish time.
Duration fluid(const Topology& topo, const CommPlan& plan) {
  Simulator sim;
  Network net(sim, topo);
  Time done = kTimeMax;
  net.run(plan, [&](Time t) { done = t; });
  sim.run();
  return done.time_since_epoch();
}

Duration fluid_a2a(const Topology& topo, const ByteMatrix& m) {
  const auto g = first_gpus(m.size());
  return fluid(topo, plan_all_to_all(topo, g, m));
}

TEST(AllToAll, UniformOnOneHgxH200Node) {
  const Topology t = build_topology(test::cluster(test::hgx_h200(), 1));
  const auto m = ByteMatrix::uniform(8, Bytes(64e6));
  // Per GPU out: 7 peers x 64e6 B = 448e6 B over 450 GB/s = 995,555,555.6 ps -> 995,555,556;
  // + 2 us latency = 997,555,556 ps.
  EXPECT_EQ(alltoall_time(t, first_gpus(8), m).count(), 997'555'556);
  EXPECT_NEAR(static_cast<double>(fluid_a2a(t, m).count()), 997'555'556.0, 2.0);
}

TEST(AllToAll, AcrossTwoHgxNodesBoundByTheNics) {
  const Topology t = build_topology(test::cluster(test::hgx_h200(), 2));
  const auto m = ByteMatrix::uniform(16, Bytes(64e6));
  // Each GPU sends 8 x 64e6 = 512e6 B to the other node through its 50 GB/s NIC:
  // 10.24 ms; NVLink carries only 7 x 64e6 = 448e6 B at 450 GB/s (~1 ms).
  // Analytic adds the longest latency (cross-rail, via the spine: 2.9 us).
  EXPECT_EQ(alltoall_time(t, first_gpus(16), m).count(), 10'240'000'000 + 2'900'000);
  // Fluid: the NIC uplink is busy from the first inter-node flow (same rail, 2.3 us)
  // until the end, so the result lies between 10.24 ms + 2.3 us and + 2.9 us.
  const auto f = fluid_a2a(t, m).count();
  EXPECT_GE(f, 10'240'000'000 + 2'300'000);
  EXPECT_LE(f, 10'240'000'000 + 2'900'000 + 2);
}

TEST(AllToAll, UniformOnNvl72BoundBy900GBsPerGpu) {
  const Topology t = build_topology(test::cluster(test::gb200_nvl72(), 1));
  const auto m = ByteMatrix::uniform(72, Bytes(1e6));
  // 71 x 1e6 B / 900e9 B/s = 78,888,888.9 ps -> 78,888,889; + 2 us.
  EXPECT_EQ(alltoall_time(t, first_gpus(72), m).count(), 80'888'889);
  EXPECT_NEAR(static_cast<double>(fluid_a2a(t, m).count()), 80'888'889.0, 2.0);
}

TEST(AllToAll, SkewedSenderFinishesWithItsMostLoadedGpu) {
  const Topology t = build_topology(test::cluster(test::gb200_nvl72(), 1));
  // GPU 0 sends 4 MB to every peer, every other GPU 1 MB. All flows start at 900/71 GB/s;
  // the 1 MB flows end at 71 MB / 900 GB/s, then GPU 0's flows continue, still
  // 71 on its uplink: it finishes at 71 x 4e6 / 900e9 = 315,555,555.6 ps -> 315,555,556; + 2 us.
  auto m = ByteMatrix::uniform(72, Bytes(1e6));
  for (std::size_t j = 1; j < 72; ++j) m.set(0, j, Bytes(4e6));
  EXPECT_EQ(alltoall_time(t, first_gpus(72), m).count(), 317'555'556);
  EXPECT_NEAR(static_cast<double>(fluid_a2a(t, m).count()), 317'555'556.0, 2.0);
}

TEST(AllToAll, HotReceiverFinishesWithItsDownlink) {
  const Topology t = build_topology(test::cluster(test::gb200_nvl72(), 1));
  // Everyone sends 3 MB to GPU 5 (a hot expert) and 1 MB elsewhere. GPU 5's downlink
  // carries 71 x 3e6 = 213e6 B: 236,666,666.7 ps -> 236,666,667; + 2 us.
  auto m = ByteMatrix::uniform(72, Bytes(1e6));
  for (std::size_t i = 0; i < 72; ++i) {
    if (i != 5) m.set(i, 5, Bytes(3e6));
  }
  EXPECT_EQ(alltoall_time(t, first_gpus(72), m).count(), 238'666'667);
  EXPECT_NEAR(static_cast<double>(fluid_a2a(t, m).count()), 238'666'667.0, 2.0);
}

TEST(AllToAll, FluidAndAnalyticAgreeOnUniformMatricesWithinOnePercent) {
  struct Cfg {
    SystemSpec sys;
    int domains;
    std::size_t n;
  };
  const std::vector<Cfg> cfgs{{test::hgx_h200(), 1, 8},  {test::hgx_h200(), 2, 16},    {test::hgx_h200(), 4, 32},
                              {test::gb200_nvl72(), 1, 72}, {test::gb200_nvl72(), 2, 144}};
  for (const auto& c : cfgs) {
    const Topology t = build_topology(test::cluster(c.sys, c.domains));
    for (const double b : {1e6, 16e6, 64e6}) {
      const auto m = ByteMatrix::uniform(c.n, Bytes(b));
      const double a = static_cast<double>(alltoall_time(t, first_gpus(c.n), m).count());
      const double f = static_cast<double>(fluid_a2a(t, m).count());
      EXPECT_NEAR(f / a, 1.0, 0.01) << c.sys.id << " x" << c.domains << " bytes " << b;
    }
  }
}

TEST(AllToAll, FluidNeverBeatsTheAnalyticBoundOnRandomSkew) {
  const Topology t = build_topology(test::cluster(test::gb200_nvl72(), 1));
  Rng rng(3);
  for (int trial = 0; trial < 3; ++trial) {
    ByteMatrix m(72);
    for (std::size_t i = 0; i < 72; ++i) {
      for (std::size_t j = 0; j < 72; ++j) {
        if (i != j) m.set(i, j, Bytes(std::floor(rng.lognormal(13.0, 1.0))));
      }
    }
    // One latency for every pair in one rack, so the bandwidth bound is a strict lower bound.
    const auto a = alltoall_time(t, first_gpus(72), m).count();
    const auto f = fluid_a2a(t, m).count();
    EXPECT_GE(f, a - 1);
    EXPECT_LE(f, 2 * a);  // max-min is not far from the bound on a single switch
  }
}

// The local repair after a completion must give exactly the allocation of a full
// max-min solve: every flow's finish time is compared, on a single switch and
// across two nodes (multi-hop routes through NICs and the spine).
TEST(AllToAll, LocalRepairMatchesFullResolveFlowByFlow) {
  struct Cfg {
    SystemSpec sys;
    int domains;
    std::size_t n;
  };
  for (const auto& c : std::vector<Cfg>{{test::gb200_nvl72(), 1, 72}, {test::hgx_h200(), 2, 16}}) {
    const Topology t = build_topology(test::cluster(c.sys, c.domains));
    Rng rng(8);
    ByteMatrix m(c.n);
    for (std::size_t i = 0; i < c.n; ++i) {
      for (std::size_t j = 0; j < c.n; ++j) {
        if (i != j) m.set(i, j, Bytes(std::floor(rng.lognormal(13.0, 1.2))));
      }
    }
    std::vector<std::vector<std::int64_t>> done(2, std::vector<std::int64_t>(c.n * c.n, -1));
    std::uint64_t repairs = 0;
    for (int full = 0; full < 2; ++full) {
      Simulator sim;
      FlowNetwork net(sim, t, FlowNetwork::Options{full == 0});
      for (std::size_t i = 0; i < c.n; ++i) {
        for (std::size_t j = 0; j < c.n; ++j) {
          if (i == j) continue;
          net.start(GpuId(static_cast<std::uint32_t>(i)), GpuId(static_cast<std::uint32_t>(j)), Bytes(m.at(i, j)),
                    [&done, full, k = i * c.n + j](Time d) { done[full][k] = d.time_since_epoch().count(); });
        }
      }
      sim.run();
      if (full == 0) repairs = net.stats().repairs;
    }
    EXPECT_GT(repairs, 0u);  // the repair path was exercised
    for (std::size_t k = 0; k < c.n * c.n; ++k) {
      // Rates agree to ~1e-9 relative; finish times within a few ps.
      EXPECT_NEAR(static_cast<double>(done[0][k]), static_cast<double>(done[1][k]), 5.0) << c.sys.id << " flow " << k;
    }
  }
}

// The same with what the all-to-all lacks: per-flow rate caps (some below the
// fair share), flows starting at different times (activations between
// completions), skewed sizes, and two NVL72 racks (routes through NICs, leaves
// and the spine next to single-switch routes).
TEST(AllToAll, LocalRepairMatchesFullResolveWithCapsAndStaggeredStarts) {
  struct Cfg {
    SystemSpec sys;
    int domains;
    std::size_t n;
  };
  for (const auto& c : std::vector<Cfg>{{test::gb200_nvl72(), 2, 144}, {test::hgx_h200(), 4, 32}}) {
    const Topology t = build_topology(test::cluster(c.sys, c.domains));
    struct Start {
      std::uint32_t src, dst;
      double bytes, cap;
      std::int64_t at_ps;
    };
    std::vector<Start> starts;
    Rng rng(31);
    for (std::size_t i = 0; i < c.n; ++i) {
      for (int k = 0; k < 12; ++k) {
        const auto j = static_cast<std::uint32_t>(rng.uniform_int(c.n));
        if (j == i) continue;
        const double cap = rng.uniform01() < 0.15 ? rng.uniform(1e9, 60e9) : kNoRateCap;
        const auto at = static_cast<std::int64_t>(rng.uniform_int(4)) * 150'000'000;  // 0, 150, 300, 450 us
        starts.push_back({static_cast<std::uint32_t>(i), j, std::floor(rng.lognormal(15.0, 1.3)), cap, at});
      }
    }
    std::vector<std::vector<std::int64_t>> done(2, std::vector<std::int64_t>(starts.size(), -1));
    std::uint64_t repairs = 0;
    for (int full = 0; full < 2; ++full) {
      Simulator sim;
      FlowNetwork net(sim, t, FlowNetwork::Options{full == 0});
      for (std::size_t k = 0; k < starts.size(); ++k) {
        const Start& st = starts[k];
        sim.at(Time{Duration{st.at_ps}}, [&net, &done, &st, full, k] {
          net.start(
              GpuId(st.src), GpuId(st.dst), Bytes(st.bytes),
              [&done, full, k](Time d) { done[full][k] = d.time_since_epoch().count(); }, st.cap);
        });
      }
      sim.run();
      if (full == 0) repairs = net.stats().repairs;
    }
    EXPECT_GT(repairs, 0u);
    for (std::size_t k = 0; k < starts.size(); ++k) {
      ASSERT_GE(done[0][k], 0);
      EXPECT_NEAR(static_cast<double>(done[0][k]), static_cast<double>(done[1][k]), 5.0) << c.sys.id << " flow " << k;
    }
  }
}

TEST(Collectives, RingAllReduceOnHgx) {
  const Topology t = build_topology(test::cluster(test::hgx_h200(), 1));
  const auto g = first_gpus(8);
  const auto plan = plan_all_reduce(t, g, Bytes(64e6), AllReduceAlgorithm::kRing);
  // 2 x 7 = 14 steps of (2 us + 8e6 B / 450e9 = 17,777,777.8 -> 17,777,778 ps) = 14 x 19,777,778.
  EXPECT_EQ(plan_time(t, plan).count(), 14 * 19'777'778);
  EXPECT_NEAR(static_cast<double>(fluid(t, plan).count()), 14 * 19'777'778.0, 14.0);
}

TEST(Collectives, InSwitchAllReduceIsFasterThanRing) {
  const Topology t = build_topology(test::cluster(test::hgx_h200(), 1));
  const auto g = first_gpus(8);
  const auto plan = plan_all_reduce(t, g, Bytes(64e6), AllReduceAlgorithm::kInSwitch);
  // Up and down each carry 64e6 x 9/8 = 72e6 B: 72e6 / 450e9 = 160 us; GPU->switch latency 1 us.
  EXPECT_EQ(plan_time(t, plan).count(), 161'000'000);
  EXPECT_NEAR(static_cast<double>(fluid(t, plan).count()), 161'000'000.0, 2.0);
  // Across domains it is refused.
  const Topology two = build_topology(test::cluster(test::hgx_h200(), 2));
  EXPECT_THROW((void)plan_all_reduce(two, first_gpus(16), Bytes(1e6), AllReduceAlgorithm::kInSwitch),
               std::invalid_argument);
}

TEST(Collectives, RingAllGatherAndReduceScatter) {
  const Topology t = build_topology(test::cluster(test::hgx_h200(), 1));
  const auto g = first_gpus(8);
  // 7 steps of (2 us + 17,777,778 ps).
  EXPECT_EQ(plan_time(t, plan_all_gather(t, g, Bytes(64e6))).count(), 7 * 19'777'778);
  EXPECT_EQ(plan_time(t, plan_reduce_scatter(t, g, Bytes(64e6))).count(), 7 * 19'777'778);
  EXPECT_NEAR(static_cast<double>(fluid(t, plan_all_gather(t, g, Bytes(64e6))).count()), 7 * 19'777'778.0, 7.0);
}

TEST(Collectives, P2pKvTransferAcrossNodes) {
  const Topology t = build_topology(test::cluster(test::hgx_h200(), 2));
  // GPU 0 -> GPU 8 (same rail): 2.3 us + 1e9 B / 50e9 B/s = 20 ms.
  const auto plan = plan_p2p(t, GpuId(0), GpuId(8), Bytes(1e9));
  EXPECT_EQ(plan_time(t, plan).count(), 20'002'300'000);
  EXPECT_EQ(fluid(t, plan).count(), 20'002'300'000);
}

TEST(Collectives, NetworkApiCallsBackWithFinishTimeAndCollectivesShareLinks) {
  const Topology t = build_topology(test::cluster(test::hgx_h200(), 1));
  Simulator sim;
  Network net(sim, t);
  const auto g = first_gpus(8);
  Time a{}, b{};
  // Two identical uniform all-to-alls at once: each gets half of every link,
  // so both end at 2 us + 2 x 448e6 / 450e9 = 2 us + 1,991,111,111.1 ps.
  net.all_to_all(g, ByteMatrix::uniform(8, Bytes(64e6)), [&](Time d) { a = d; });
  net.all_to_all(g, ByteMatrix::uniform(8, Bytes(64e6)), [&](Time d) { b = d; });
  sim.run();
  EXPECT_NEAR(static_cast<double>(a.time_since_epoch().count()), 1'993'111'112.0, 2.0);
  EXPECT_EQ(a, b);
  // An empty collective completes at once.
  Time e = kTimeMax;
  net.p2p(GpuId(1), GpuId(1), Bytes(5), [&](Time d) { e = d; });
  sim.run();
  EXPECT_EQ(e, sim.now());
}

std::uint64_t fingerprint_of_skewed_run(std::uint64_t seed) {
  const Topology t = build_topology(test::cluster(test::hgx_h200(), 2));
  Simulator sim(seed);
  EventFingerprint fp;
  sim.set_event_hook([&](Time tm, EventTag tag) { fp.add(tm, tag); });
  Network net(sim, t);
  Rng rng = sim.stream("routing/layer0");
  ByteMatrix m(16);
  for (std::size_t i = 0; i < 16; ++i) {
    for (std::size_t j = 0; j < 16; ++j) {
      if (i != j) m.set(i, j, Bytes(static_cast<double>(1 + rng.uniform_int(1'000'000))));
    }
  }
  net.all_to_all(first_gpus(16), m, [](Time) {});
  sim.run();
  return fp.value();
}

TEST(Determinism, SameSeedSameEventSequence) {
  const std::uint64_t a = fingerprint_of_skewed_run(11);
  EXPECT_EQ(a, fingerprint_of_skewed_run(11));
  EXPECT_NE(a, fingerprint_of_skewed_run(12));
}

TEST(Determinism, TwoSimulatorsWithNetworksSideBySide) {
  const Topology t = build_topology(test::cluster(test::hgx_h200(), 1));
  Simulator s1, s2;
  Network n1(s1, t), n2(s2, t);  // one topology shared read-only
  Time d1{}, d2{};
  n1.p2p(GpuId(0), GpuId(1), Bytes(450e6), [&](Time d) { d1 = d; });
  n2.p2p(GpuId(0), GpuId(1), Bytes(900e6), [&](Time d) { d2 = d; });
  s1.run();
  EXPECT_EQ(s2.now(), kTimeZero);
  s2.run();
  EXPECT_EQ(d1.time_since_epoch().count(), 1'002'000'000);  // 2 us + 1 ms
  EXPECT_EQ(d2.time_since_epoch().count(), 2'002'000'000);  // 2 us + 2 ms
}

}  // namespace
}  // namespace moesim
