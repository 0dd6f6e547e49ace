#include "sim/hw/flow_net.h"

#include <gtest/gtest.h>

#include <chrono>

#include "tests/unit/hw/test_systems.h"

namespace moesim {
namespace {

using namespace std::chrono_literals;

std::int64_t ps(Time t) { return t.time_since_epoch().count(); }

class FlowNetTest : public ::testing::Test {
 protected:
  Topology topo = build_topology(test::cluster(test::hgx_h200(), 1));
  Simulator sim;
  FlowNetwork net{sim, topo};
};

TEST_F(FlowNetTest, SingleFlowIsLatencyThenFullBandwidth) {
  Time done{};
  net.start(GpuId(0), GpuId(1), Bytes(450e6), [&](Time t) { done = t; });
  sim.run();
  // 2 us latency + 450e6 B / 450e9 B/s = 1 ms: 2,000,000 + 1,000,000,000 ps.
  EXPECT_EQ(ps(done), 1'002'000'000);
  EXPECT_EQ(net.stats().finished, 1u);
  EXPECT_EQ(net.active_flows(), 0u);
}

TEST_F(FlowNetTest, TwoFlowsOnOneUplinkGetHalfEach) {
  Time d1{}, d2{};
  const FlowId a = net.start(GpuId(0), GpuId(1), Bytes(450e6), [&](Time t) { d1 = t; });
  const FlowId b = net.start(GpuId(0), GpuId(2), Bytes(450e6), [&](Time t) { d2 = t; });
  sim.run(Time{Duration(3us)});
  // Both share GPU 0's 450 GB/s uplink: 225 GB/s each.
  EXPECT_DOUBLE_EQ(net.rate(a), 225e9);
  EXPECT_DOUBLE_EQ(net.rate(b), 225e9);
  sim.run();
  // 2 us + 450e6 / 225e9 = 2 ms.
  EXPECT_EQ(ps(d1), 2'002'000'000);
  EXPECT_EQ(ps(d2), 2'002'000'000);
}

TEST_F(FlowNetTest, FlowCappedElsewhereLeavesTheRestToTheOther) {
  // Flow a is held to 50 GB/s (e.g. by a slower engine); b gets 450 - 50 = 400 GB/s.
  const FlowId a = net.start(GpuId(0), GpuId(1), Bytes(1e9), {}, 50e9);
  const FlowId b = net.start(GpuId(0), GpuId(2), Bytes(1e9), {});
  sim.run(Time{Duration(3us)});
  EXPECT_DOUBLE_EQ(net.rate(a), 50e9);
  EXPECT_DOUBLE_EQ(net.rate(b), 400e9);
}

TEST_F(FlowNetTest, RatesAreRecomputedWhenAFlowFinishes) {
  Time small{}, big{};
  net.start(GpuId(0), GpuId(1), Bytes(100e6), [&](Time t) { small = t; });
  const FlowId b = net.start(GpuId(0), GpuId(2), Bytes(300e6), [&](Time t) { big = t; });
  sim.run();
  // Both at 225 GB/s: the small one ends after 100e6 / 225e9 = 444,444,444.4 ps -> 444,444,445 ps.
  EXPECT_EQ(ps(small), 2'000'000 + 444'444'445);
  // The big one has 300e6 - 225e9 * 444,444,445e-12 = 199,999,999.875 B left, now at
  // 450 GB/s: 444,444,444.2 ps -> 444,444,445. Total 2,000,000 + 888,888,890.
  EXPECT_EQ(ps(big), 2'000'000 + 888'888'890);
  EXPECT_EQ(net.rate(b), 0.0);
  EXPECT_EQ(net.stats().solves, 2u);  // at activation, and when the small flow left
}

TEST_F(FlowNetTest, ZeroByteAndSelfFlowsCompleteAfterTheirLatency) {
  Time z{}, self{};
  net.start(GpuId(0), GpuId(1), Bytes(0), [&](Time t) { z = t; });
  net.start(GpuId(3), GpuId(3), Bytes(1e6), [&](Time t) { self = t; });
  sim.run();
  EXPECT_EQ(ps(z), 2'000'000);
  EXPECT_EQ(ps(self), 0);
}

TEST_F(FlowNetTest, LaterFlowJoinsAndSlowsTheFirst) {
  Time d1{}, d2{};
  net.start(GpuId(0), GpuId(1), Bytes(450e6), [&](Time t) { d1 = t; });
  // At t = 502 us the first flow has moved 450e9 * 500e-6 = 225e6 B (225e6 left).
  sim.at(Time{Duration(500us)}, [&] { net.start(GpuId(2), GpuId(1), Bytes(450e6), [&](Time t) { d2 = t; }); });
  sim.run();
  // Second flow active at 502 us; both share GPU 1's downlink at 225 GB/s:
  // first ends after 225e6 / 225e9 = 1 ms -> 1.502 ms; then the second (225e6 left)
  // runs alone at 450 GB/s: 0.5 ms more -> 2.002 ms.
  EXPECT_EQ(ps(d1), 1'502'000'000);
  EXPECT_EQ(ps(d2), 2'002'000'000);
}

}  // namespace
}  // namespace moesim
