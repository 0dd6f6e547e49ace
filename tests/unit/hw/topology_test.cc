#include "sim/hw/topology.h"

#include <gtest/gtest.h>

#include <chrono>

#include "sim/config/error.h"
#include "tests/unit/hw/test_systems.h"

namespace moesim {
namespace {

using namespace std::chrono_literals;

TEST(Topology, OneHgxNodeIsAStarAroundOneLogicalSwitch) {
  const Topology t = build_topology(test::cluster(test::hgx_h200(), 1));
  // 8 GPUs + 1 logical NVSwitch; 8 duplex GPU links = 16 directed links.
  EXPECT_EQ(t.gpu_count(), 8u);
  EXPECT_EQ(t.node_count(), 9u);
  EXPECT_EQ(t.link_count(), 16u);
  EXPECT_EQ(t.scale_up_switch_chips(), 4);  // kept for reporting
  const auto r = t.route(GpuId(0), GpuId(3));
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(t.link(r[0]).from, t.gpu(GpuId(0)));
  EXPECT_EQ(t.link(r[1]).to, t.gpu(GpuId(3)));
  EXPECT_EQ(t.link(r[0]).bandwidth.value(), 450e9);
  // GPU -> switch -> GPU = scale_up.latency = 2 us.
  EXPECT_EQ(t.route_latency(GpuId(0), GpuId(3)), Duration(2us));
  EXPECT_TRUE(t.route(GpuId(2), GpuId(2)).empty());
  // Cached: the same span twice.
  EXPECT_EQ(t.route(GpuId(0), GpuId(3)).data(), r.data());
}

TEST(Topology, TwoHgxNodesRailOptimized) {
  const Topology t = build_topology(test::cluster(test::hgx_h200(), 2));
  // Nodes: 16 GPUs, 2 switches, 8 rail leaves, 16 NICs, 1 spine = 43.
  EXPECT_EQ(t.gpu_count(), 16u);
  EXPECT_EQ(t.node_count(), 43u);
  // Directed links: 2 x (16 GPU-switch + 16 GPU-NIC + 16 NIC-leaf + 8 leaf-spine) = 112.
  EXPECT_EQ(t.link_count(), 112u);
  // Intra-node stays on NVLink.
  EXPECT_EQ(t.route(GpuId(1), GpuId(5)).size(), 2u);
  // Same rail (GPU 0 of node 0 -> GPU 0 of node 1 = global 8): GPU-NIC-leaf-NIC-GPU,
  // latency = nic 2 us + one switch 0.3 us = 2.3 us; bottleneck 50 GB/s.
  const auto same = t.route(GpuId(0), GpuId(8));
  ASSERT_EQ(same.size(), 4u);
  EXPECT_EQ(t.latency(same), Duration(2300ns));
  for (const LinkId l : same) EXPECT_EQ(t.link(l).bandwidth.value(), 50e9);
  // Cross rail (GPU 0 -> GPU 3 of node 1 = global 11): leaf 0 -> spine -> leaf 3:
  // 6 links, latency = 2 us + 3 switches x 0.3 us = 2.9 us; never through another GPU.
  const auto cross = t.route(GpuId(0), GpuId(11));
  ASSERT_EQ(cross.size(), 6u);
  EXPECT_EQ(t.latency(cross), Duration(2900ns));
  for (std::size_t i = 0; i + 1 < cross.size(); ++i) {
    EXPECT_NE(t.node(t.link(cross[i]).to).kind, NodeKind::kGpu);
  }
  // The leaf-spine link carries the leaf's total downlink: 2 NICs x 50 GB/s.
  EXPECT_EQ(t.link(cross[2]).bandwidth.value(), 100e9);
}

TEST(Topology, ManyNodesUseSeveralLeafGroups) {
  // 64-port leaves: 32 nodes per rail leaf, so 40 nodes need 2 groups (16 leaves).
  const Topology t = build_topology(test::cluster(test::hgx_h200(), 40));
  EXPECT_EQ(t.gpu_count(), 320u);
  // GPU 0 of node 0 and GPU 0 of node 39 (global 312) are on the same rail but
  // different leaves: through the spine, 6 links.
  EXPECT_EQ(t.route(GpuId(0), GpuId(312)).size(), 6u);
  // Node 0 and node 31 share a leaf: 4 links.
  EXPECT_EQ(t.route(GpuId(0), GpuId(248)).size(), 4u);
}

TEST(Topology, Nvl72RackAndMultiRack) {
  const Topology rack = build_topology(test::cluster(test::gb200_nvl72(), 1));
  EXPECT_EQ(rack.gpu_count(), 72u);
  EXPECT_EQ(rack.link_count(), 144u);
  EXPECT_EQ(rack.route(GpuId(0), GpuId(71)).size(), 2u);
  EXPECT_EQ(rack.link(rack.route(GpuId(0), GpuId(71))[0]).bandwidth.value(), 900e9);
  const Topology eight = build_topology(test::cluster(test::gb200_nvl72(), 8));
  EXPECT_EQ(eight.gpu_count(), 576u);
  EXPECT_EQ(eight.domain_of(GpuId(100)), 1);
  EXPECT_EQ(eight.route(GpuId(0), GpuId(72)).size(), 4u);   // same rail, next rack
  EXPECT_EQ(eight.route(GpuId(0), GpuId(73)).size(), 6u);   // other rail, via spine
  EXPECT_EQ(eight.route(GpuId(0), GpuId(1)).size(), 2u);    // same rack
}

TEST(TopologyErrors, ZeroBandwidthNamesFileAndPointer) {
  SystemSpec s = test::hgx_h200();
  s.scale_up.bandwidth_per_gpu_per_direction = BytesPerSec(0);
  try {
    (void)build_topology(test::cluster(s, 1));
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), "hardware/systems/test-hgx-h200.json");
    EXPECT_EQ(e.pointer(), "/scale_up/bandwidth_per_gpu_per_direction");
    EXPECT_NE(std::string(e.what()).find("positive bandwidth"), std::string::npos) << e.what();
  }
  SystemSpec n = test::hgx_h200();
  n.scale_out->nic_bandwidth_per_direction = BytesPerSec(0);
  EXPECT_NO_THROW((void)build_topology(test::cluster(n, 1)));  // no NIC in one node
  try {
    (void)build_topology(test::cluster(n, 2));
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.pointer(), "/scale_out/nic_bandwidth_per_direction");
  }
}

TEST(TopologyErrors, SeveralDomainsWithoutScaleOut) {
  SystemSpec s = test::gb200_nvl72();
  s.scale_out.reset();
  try {
    (void)build_topology(test::cluster(s, 2));
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), "hardware/systems/test-gb200-nvl72.json");
    EXPECT_EQ(e.pointer(), "/scale_out");
  }
}

TEST(TopologyErrors, DisconnectedNetwork) {
  Topology::Builder b("my.json");
  const NodeId g0 = b.add_node(NodeKind::kGpu, "g0");
  const NodeId g1 = b.add_node(NodeKind::kGpu, "g1");
  const NodeId g2 = b.add_node(NodeKind::kGpu, "g2");
  const NodeId sw = b.add_node(NodeKind::kScaleUpSwitch, "sw", 0);
  b.add_duplex_link(g0, sw, BytesPerSec(1e9), Duration(1ns), LinkKind::kScaleUp, "/a");
  b.add_duplex_link(g1, sw, BytesPerSec(1e9), Duration(1ns), LinkKind::kScaleUp, "/a");
  (void)g2;  // no link
  try {
    (void)std::move(b).finish();
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.file(), "my.json");
    EXPECT_NE(std::string(e.what()).find("disconnected: g2 cannot be reached from g0"), std::string::npos) << e.what();
  }
}

TEST(TopologyErrors, RouteNotFoundBecauseGpusAreNotTransit) {
  // g0 - sw - g1, and g2 linked only to g0 and g1. Every node is reachable from g0,
  // but g2 cannot reach the switch: its only neighbours are GPUs, which a route
  // never passes through.
  Topology::Builder b("my.json");
  const NodeId g0 = b.add_node(NodeKind::kGpu, "g0");
  const NodeId g1 = b.add_node(NodeKind::kGpu, "g1");
  const NodeId g2 = b.add_node(NodeKind::kGpu, "g2");
  const NodeId sw = b.add_node(NodeKind::kScaleUpSwitch, "sw", 0);
  b.add_duplex_link(g0, sw, BytesPerSec(1e9), Duration(1ns), LinkKind::kScaleUp, "/a");
  b.add_duplex_link(g1, sw, BytesPerSec(1e9), Duration(1ns), LinkKind::kScaleUp, "/a");
  b.add_duplex_link(g2, g0, BytesPerSec(1e9), Duration(1ns), LinkKind::kScaleUp, "/a");
  b.add_duplex_link(g2, g1, BytesPerSec(1e9), Duration(1ns), LinkKind::kScaleUp, "/a");
  const Topology t = std::move(b).finish();
  EXPECT_EQ(t.route(g2, g1).size(), 1u);
  try {
    (void)t.route(g2, sw);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("no route from g2 to sw"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace moesim
