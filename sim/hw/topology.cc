#include "sim/hw/topology.h"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/dijkstra_shortest_paths.hpp>
#include <algorithm>
#include <fmt/format.h>
#include <limits>

#include "sim/config/error.h"

namespace moesim {
namespace {

struct EdgeProps {
  double weight = 0;       // latency in ps + 1 per hop (fewest hops among equal latencies)
  std::uint32_t link = 0;  // LinkId
};
using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, boost::no_property, EdgeProps>;
using Vertex = boost::graph_traits<Graph>::vertex_descriptor;
constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

// Routes from one source to every node: offsets into a flat link list (kNone: unreachable).
struct RouteRow {
  std::vector<std::uint32_t> begin;
  std::vector<std::uint32_t> end;
  std::vector<LinkId> links;
};

}  // namespace

struct Topology::Impl {
  std::string file;
  std::vector<NodeInfo> nodes;
  std::vector<Link> links;
  std::vector<NodeId> gpus;
  std::vector<std::uint32_t> gpu_ordinal;  // per node: index of the GPU, kNone otherwise
  std::vector<NodeId> switches;            // per domain
  int switch_chips = 0;
  bool in_switch = false;
  // GPUs are split in two vertices: out (node index) and in (nodes.size() + ordinal),
  // so that no path passes through a GPU.
  Graph graph;
  mutable std::vector<std::unique_ptr<RouteRow>> rows;  // per source node, built on first use

  Vertex out_vertex(NodeId n) const { return n.value(); }
  Vertex in_vertex(NodeId n) const {
    const std::uint32_t o = gpu_ordinal[n.value()];
    return o == kNone ? n.value() : nodes.size() + o;
  }

  void build_graph() {
    for (std::size_t v = 0; v < nodes.size() + gpus.size(); ++v) boost::add_vertex(graph);
    for (std::uint32_t i = 0; i < links.size(); ++i) {
      const Link& l = links[i];
      const double w = static_cast<double>(l.latency.count()) + 1.0;
      boost::add_edge(out_vertex(l.from), in_vertex(l.to), EdgeProps{w, i}, graph);
    }
  }

  const RouteRow& row(NodeId src) const {
    auto& slot = rows[src.value()];
    if (slot) return *slot;
    const std::size_t nv = boost::num_vertices(graph);
    std::vector<double> dist(nv);
    std::vector<std::uint32_t> pred_link(nv, kNone);
    struct Recorder : boost::default_dijkstra_visitor {
      std::vector<std::uint32_t>* pred;
      void edge_relaxed(boost::graph_traits<Graph>::edge_descriptor e, const Graph& g) const {
        (*pred)[boost::target(e, g)] = g[e].link;
      }
    } rec;
    rec.pred = &pred_link;
    boost::dijkstra_shortest_paths(
        graph, out_vertex(src),
        boost::weight_map(boost::get(&EdgeProps::weight, graph))
            .distance_map(boost::make_iterator_property_map(dist.begin(), boost::get(boost::vertex_index, graph)))
            .visitor(rec));
    auto r = std::make_unique<RouteRow>();
    r->begin.assign(nodes.size(), kNone);
    r->end.assign(nodes.size(), kNone);
    std::vector<LinkId> path;
    for (std::uint32_t d = 0; d < nodes.size(); ++d) {
      const NodeId dst(d);
      if (dst == src) {
        r->begin[d] = r->end[d] = static_cast<std::uint32_t>(r->links.size());
        continue;
      }
      Vertex v = in_vertex(dst);
      if (pred_link[v] == kNone) continue;
      path.clear();
      while (v != out_vertex(src)) {
        const std::uint32_t li = pred_link[v];
        path.push_back(LinkId(li));
        v = out_vertex(links[li].from);
      }
      r->begin[d] = static_cast<std::uint32_t>(r->links.size());
      r->links.insert(r->links.end(), path.rbegin(), path.rend());
      r->end[d] = static_cast<std::uint32_t>(r->links.size());
    }
    slot = std::move(r);
    return *slot;
  }
};

Topology::Topology(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Topology::Topology(Topology&&) noexcept = default;
Topology& Topology::operator=(Topology&&) noexcept = default;
Topology::~Topology() = default;

std::size_t Topology::node_count() const { return impl_->nodes.size(); }
std::size_t Topology::link_count() const { return impl_->links.size(); }
std::size_t Topology::gpu_count() const { return impl_->gpus.size(); }
const NodeInfo& Topology::node(NodeId n) const { return impl_->nodes.at(n.value()); }
const Link& Topology::link(LinkId l) const { return impl_->links[l.value()]; }
NodeId Topology::gpu(GpuId g) const { return impl_->gpus.at(g.value()); }
const std::string& Topology::file() const { return impl_->file; }
int Topology::scale_up_switch_chips() const { return impl_->switch_chips; }
bool Topology::in_switch_reduction() const { return impl_->in_switch; }

NodeId Topology::scale_up_switch(int domain) const {
  if (domain < 0 || static_cast<std::size_t>(domain) >= impl_->switches.size()) {
    throw std::out_of_range(fmt::format("no scale-up switch for domain {}", domain));
  }
  return impl_->switches[static_cast<std::size_t>(domain)];
}

std::span<const LinkId> Topology::route(NodeId src, NodeId dst) const {
  if (src.value() >= impl_->nodes.size() || dst.value() >= impl_->nodes.size()) {
    throw std::out_of_range("Topology::route: node id out of range");
  }
  const RouteRow& r = impl_->row(src);
  const std::uint32_t b = r.begin[dst.value()];
  if (b == kNone) {
    throw ConfigError(impl_->file, "",
                      fmt::format("no route from {} to {} in the network built from this description",
                                  impl_->nodes[src.value()].name, impl_->nodes[dst.value()].name));
  }
  return std::span<const LinkId>(r.links.data() + b, r.end[dst.value()] - b);
}

Duration Topology::latency(std::span<const LinkId> route) const {
  Duration d{};
  for (const LinkId l : route) d += impl_->links[l.value()].latency;
  return d;
}

std::string Topology::summary() const {
  return fmt::format("{} domain(s), {} GPUs, {} nodes, {} directed links", impl_->switches.size(), gpu_count(),
                     node_count(), link_count());
}

Topology::Builder::Builder(std::string file) : impl_(std::make_unique<Topology::Impl>()) {
  impl_->file = std::move(file);
}
Topology::Builder::~Builder() = default;

NodeId Topology::Builder::add_node(NodeKind kind, std::string name, int domain) {
  const NodeId id(static_cast<std::uint32_t>(impl_->nodes.size()));
  impl_->nodes.push_back(NodeInfo{kind, std::move(name), domain});
  if (kind == NodeKind::kGpu) {
    impl_->gpu_ordinal.push_back(static_cast<std::uint32_t>(impl_->gpus.size()));
    impl_->gpus.push_back(id);
  } else {
    impl_->gpu_ordinal.push_back(kNone);
  }
  if (kind == NodeKind::kScaleUpSwitch && domain >= 0) {
    if (impl_->switches.size() <= static_cast<std::size_t>(domain)) impl_->switches.resize(static_cast<std::size_t>(domain) + 1);
    impl_->switches[static_cast<std::size_t>(domain)] = id;
  }
  return id;
}

void Topology::Builder::add_duplex_link(NodeId a, NodeId b, BytesPerSec bandwidth, Duration latency, LinkKind kind,
                                        const std::string& pointer) {
  const auto& nodes = impl_->nodes;
  if (a.value() >= nodes.size() || b.value() >= nodes.size() || a == b) {
    throw std::invalid_argument("Topology::Builder: bad link endpoints");
  }
  if (!(bandwidth.value() > 0)) {
    throw ConfigError(impl_->file, pointer,
                      fmt::format("link {} <-> {} would have bandwidth {} B/s; a link needs a positive bandwidth",
                                  nodes[a.value()].name, nodes[b.value()].name, bandwidth.value()));
  }
  if (latency < Duration::zero()) {
    throw ConfigError(impl_->file, pointer, "a link latency must not be negative");
  }
  impl_->links.push_back(Link{a, b, bandwidth, latency, kind});
  impl_->links.push_back(Link{b, a, bandwidth, latency, kind});
}

void Topology::Builder::set_reporting(int scale_up_switch_chips, bool in_switch_reduction) {
  impl_->switch_chips = scale_up_switch_chips;
  impl_->in_switch = in_switch_reduction;
}

Topology Topology::Builder::finish() && {
  if (impl_->gpus.empty()) throw ConfigError(impl_->file, "", "the network has no GPU");
  impl_->build_graph();
  impl_->rows.resize(impl_->nodes.size());
  // Connectivity: one connected component (breadth-first over the duplex links).
  // Whether a GPU can reach a given node without passing through another GPU is
  // checked per route (route() throws ConfigError).
  const std::size_t n = impl_->nodes.size();
  std::vector<std::vector<std::uint32_t>> adj(n);
  for (const Link& l : impl_->links) adj[l.from.value()].push_back(l.to.value());
  std::vector<std::uint8_t> seen(n, 0);
  std::vector<std::uint32_t> frontier{impl_->gpus.front().value()};
  seen[frontier.front()] = 1;
  while (!frontier.empty()) {
    const std::uint32_t v = frontier.back();
    frontier.pop_back();
    for (const std::uint32_t w : adj[v]) {
      if (!seen[w]) {
        seen[w] = 1;
        frontier.push_back(w);
      }
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!seen[i]) {
      throw ConfigError(impl_->file, "",
                        fmt::format("the network is disconnected: {} cannot be reached from {}",
                                    impl_->nodes[i].name, impl_->nodes[impl_->gpus.front().value()].name));
    }
  }
  return Topology(std::move(impl_));
}

}  // namespace moesim
