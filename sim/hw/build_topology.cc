// build_topology(): a ClusterSpec -> the node/link graph described in topology.h.
#include <fmt/format.h>

#include "sim/config/error.h"
#include "sim/hw/topology.h"

namespace moesim {

Topology build_topology(const ClusterSpec& cluster) {
  const SystemSpec& sys = cluster.system;
  const std::string& file = sys.file;
  const int g = sys.scale_up.domain_gpus;
  const int domains = cluster.domains;
  if (g <= 0) throw ConfigError(file, "/scale_up/domain_gpus", fmt::format("must be at least 1, found {}", g));
  if (domains <= 0) throw ConfigError(file, "", fmt::format("a cluster needs at least 1 domain, asked for {}", domains));

  Topology::Builder b(file);
  b.set_reporting(sys.scale_up.switch_chips, sys.scale_up.in_switch_reduction);
  const Duration half_up = sys.scale_up.latency / 2;
  // Links carry the bandwidth that transfers achieve (hardware_spec.h: achieved_fraction), not the nominal one.
  const BytesPerSec up_bw = sys.scale_up.bandwidth_per_gpu_per_direction * sys.scale_up.achieved_fraction;
  std::vector<std::vector<NodeId>> gpu(static_cast<std::size_t>(domains));
  for (int d = 0; d < domains; ++d) {
    for (int i = 0; i < g; ++i) {
      gpu[static_cast<std::size_t>(d)].push_back(b.add_node(NodeKind::kGpu, fmt::format("domain{}/gpu{}", d, i), d));
    }
  }
  for (int d = 0; d < domains; ++d) {
    const NodeId sw = b.add_node(NodeKind::kScaleUpSwitch, fmt::format("domain{}/scale-up-switch", d), d);
    for (const NodeId n : gpu[static_cast<std::size_t>(d)]) {
      b.add_duplex_link(n, sw, up_bw, half_up, LinkKind::kScaleUp,
                        "/scale_up/bandwidth_per_gpu_per_direction");
    }
  }
  if (domains == 1) return std::move(b).finish();

  if (!sys.scale_out) {
    throw ConfigError(file, "/scale_out",
                      fmt::format("the system has no scale_out fabric, so {} domains cannot be joined", domains));
  }
  const ScaleOut& so = *sys.scale_out;
  if (so.nics_per_gpu <= 0) {
    throw ConfigError(file, "/scale_out/nics_per_gpu", fmt::format("must be at least 1, found {}", so.nics_per_gpu));
  }
  if (so.leaf_ports < 2) {
    throw ConfigError(file, "/scale_out/leaf_ports", fmt::format("must be at least 2, found {}", so.leaf_ports));
  }
  const BytesPerSec nic_bw =
      so.nic_bandwidth_per_direction * (static_cast<double>(so.nics_per_gpu) * so.achieved_fraction);
  const int domains_per_leaf = so.leaf_ports / 2;  // half the ports down, half up (1:1)
  const int groups = (domains + domains_per_leaf - 1) / domains_per_leaf;
  // Leaves: rail i x group.
  std::vector<NodeId> leaf(static_cast<std::size_t>(g * groups));
  for (int grp = 0; grp < groups; ++grp) {
    for (int i = 0; i < g; ++i) {
      leaf[static_cast<std::size_t>(grp * g + i)] =
          b.add_node(NodeKind::kLeafSwitch, fmt::format("rail{}/leaf{}", i, grp));
    }
  }
  for (int d = 0; d < domains; ++d) {
    const int grp = d / domains_per_leaf;
    for (int i = 0; i < g; ++i) {
      const NodeId nic = b.add_node(NodeKind::kNic, fmt::format("domain{}/nic{}", d, i), d);
      b.add_duplex_link(gpu[static_cast<std::size_t>(d)][static_cast<std::size_t>(i)], nic, nic_bw,
                        so.nic_latency / 2, LinkKind::kNicLink, "/scale_out/nic_bandwidth_per_direction");
      b.add_duplex_link(nic, leaf[static_cast<std::size_t>(grp * g + i)], nic_bw, so.switch_latency / 2,
                        LinkKind::kIbCable, "/scale_out/nic_bandwidth_per_direction");
    }
  }
  if (leaf.size() > 1) {
    const NodeId spine = b.add_node(NodeKind::kSpineSwitch, "spine");
    for (int grp = 0; grp < groups; ++grp) {
      const int members = std::min(domains_per_leaf, domains - grp * domains_per_leaf);
      for (int i = 0; i < g; ++i) {
        b.add_duplex_link(leaf[static_cast<std::size_t>(grp * g + i)], spine, nic_bw * static_cast<double>(members),
                          so.switch_latency, LinkKind::kIbUplink, "/scale_out/nic_bandwidth_per_direction");
      }
    }
  }
  return std::move(b).finish();
}

}  // namespace moesim
