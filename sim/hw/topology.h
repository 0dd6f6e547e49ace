// The physical network of a cluster as a graph of nodes (GPUs, scale-up
// switches, NICs, InfiniBand leaf and spine switches) and directed links
// (bandwidth per direction, latency). Every physical cable is full duplex and
// appears as two directed links.
//
// Modelling choices (see build_topology):
//   - a scale-up domain's NVSwitch / NVLink switch chips are one logical,
//     non-blocking switch; each GPU's link to it carries the GPU's per-direction
//     NVLink bandwidth. The chip count is kept for reporting only.
//   - one logical NIC per GPU carrying nics_per_gpu x the NIC bandwidth.
//   - rail-optimised InfiniBand: NIC i of every domain sits on rail i's leaf
//     (leaf_ports/2 domains per leaf); leaves are joined by one logical,
//     non-blocking spine whose link to each leaf carries the leaf's total
//     downlink bandwidth (1:1 fat tree).
//   - latency: GPU->switch->GPU = scale_up.latency; NIC traversal =
//     nic_latency in total (half per GPU-NIC link); each IB switch on the path
//     adds switch_latency.
//   - routes never pass through a GPU other than their endpoints; among paths
//     the one of least latency (then fewest hops) is taken.
// Routes are computed once per source node (one Dijkstra) and cached; the
// graph library (Boost.Graph) is an implementation detail of topology.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sim/config/hardware_spec.h"
#include "sim/core/ids.h"
#include "sim/core/time.h"
#include "sim/core/units.h"

namespace moesim {

enum class NodeKind : std::uint8_t { kGpu, kScaleUpSwitch, kNic, kLeafSwitch, kSpineSwitch };
enum class LinkKind : std::uint8_t { kScaleUp, kNicLink, kIbCable, kIbUplink };

struct NodeInfo {
  NodeKind kind;
  std::string name;
  int domain = -1;  // scale-up domain of GPUs, their switch and NICs; -1 for the IB fabric
};

struct Link {
  NodeId from;
  NodeId to;
  BytesPerSec bandwidth;
  Duration latency{};
  LinkKind kind;
};

class Topology {
 public:
  class Builder;

  Topology(Topology&&) noexcept;
  Topology& operator=(Topology&&) noexcept;
  ~Topology();

  [[nodiscard]] std::size_t node_count() const;
  [[nodiscard]] std::size_t link_count() const;
  [[nodiscard]] std::size_t gpu_count() const;
  [[nodiscard]] const NodeInfo& node(NodeId n) const;
  [[nodiscard]] const Link& link(LinkId l) const;
  // The node of GPU g (GPUs are numbered 0..gpu_count()-1, domain-major).
  [[nodiscard]] NodeId gpu(GpuId g) const;
  [[nodiscard]] NodeId gpu(std::size_t index) const { return gpu(GpuId(static_cast<std::uint32_t>(index))); }
  // The logical scale-up switch of a domain (in-switch reductions); throws if there is none.
  [[nodiscard]] NodeId scale_up_switch(int domain) const;
  [[nodiscard]] int domain_of(GpuId g) const { return node(gpu(g)).domain; }

  // Directed links from src to dst, computed once per source and cached (the
  // span stays valid for the topology's lifetime). Empty when src == dst.
  // Throws ConfigError naming the description file when there is no route.
  [[nodiscard]] std::span<const LinkId> route(NodeId src, NodeId dst) const;
  [[nodiscard]] std::span<const LinkId> route(GpuId src, GpuId dst) const { return route(gpu(src), gpu(dst)); }
  // Sum of the link latencies of a route.
  [[nodiscard]] Duration latency(std::span<const LinkId> route) const;
  [[nodiscard]] Duration route_latency(NodeId src, NodeId dst) const { return latency(route(src, dst)); }
  [[nodiscard]] Duration route_latency(GpuId src, GpuId dst) const { return latency(route(src, dst)); }

  // The description file the topology was built from (for error messages).
  [[nodiscard]] const std::string& file() const;
  // Reporting: switch chips per scale-up domain as described (modelled as one logical switch).
  [[nodiscard]] int scale_up_switch_chips() const;
  [[nodiscard]] bool in_switch_reduction() const;
  // One line: "2 domains, 16 GPUs, 37 nodes, 84 directed links".
  [[nodiscard]] std::string summary() const;

 private:
  struct Impl;
  explicit Topology(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Assembles a topology node by node; finish() checks it and computes nothing else eagerly.
class Topology::Builder {
 public:
  // file: the description file named in errors.
  explicit Builder(std::string file);
  ~Builder();
  NodeId add_node(NodeKind kind, std::string name, int domain = -1);
  // Two directed links a->b and b->a. bandwidth must be > 0: otherwise throws
  // ConfigError(file, pointer, ...) where pointer names the JSON value it came from.
  void add_duplex_link(NodeId a, NodeId b, BytesPerSec bandwidth, Duration latency, LinkKind kind,
                       const std::string& pointer);
  void set_reporting(int scale_up_switch_chips, bool in_switch_reduction);
  // Throws ConfigError when there is no GPU or when some node cannot be reached from GPU 0.
  Topology finish() &&;

 private:
  std::unique_ptr<Topology::Impl> impl_;
};

// The topology of `cluster.domains` scale-up domains of `cluster.system` (see the header comment).
// Throws ConfigError(system file, JSON pointer, message) on descriptions it cannot build.
Topology build_topology(const ClusterSpec& cluster);

}  // namespace moesim
