// `moesim comm`: the simulated time of one collective on a system description,
// in fluid (flow-level max-min) or analytic mode, with algorithm and bus
// bandwidth in the nccl-tests conventions.
#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>

#include "sim/cli/command.h"
#include "sim/config/error.h"
#include "sim/config/hardware_load.h"
#include "sim/core/quantity.h"
#include "sim/hw/analytic_comm.h"
#include "sim/hw/collectives.h"

namespace moesim::cli {
namespace {

struct CommOptions {
  std::string system;
  int domains = 1;
  std::string collective;
  std::string bytes;
  int gpus = 0;  // 0: every GPU of the cluster
  std::string mode = "fluid";
  std::string algorithm = "ring";
  bool json = false;
};

double parse_bytes(const std::string& text) {
  const auto q = parse_quantity(text);
  if (!q || q->dim != Dim::kBytes) {
    throw ConfigError("--bytes", "", fmt::format("expected {}, got \"{}\"", describe_dim(Dim::kBytes), text));
  }
  if (!(q->si > 0)) throw ConfigError("--bytes", "", fmt::format("must be positive, got \"{}\"", text));
  return q->si;
}

// nccl-tests bus-bandwidth factor for n ranks.
double bus_factor(const std::string& coll, double n) {
  if (coll == "all-reduce") return 2 * (n - 1) / n;
  if (coll == "p2p") return 1;
  return (n - 1) / n;  // all-to-all, all-gather, reduce-scatter
}

int run_comm(const CommOptions& o) {
  const SystemSpec sys = load_system(o.system);
  if (o.domains < 1) throw ConfigError("--domains", "", fmt::format("must be at least 1, got {}", o.domains));
  const Topology topo = build_topology(ClusterSpec{sys, o.domains});
  const int total = static_cast<int>(topo.gpu_count());
  const int n = o.gpus == 0 ? total : o.gpus;
  if (n < 2 || n > total) {
    throw ConfigError("--gpus", "", fmt::format("must be between 2 and the cluster's {} GPUs ({} x {}), got {}", total,
                                                o.domains, sys.scale_up.domain_gpus, n));
  }
  std::vector<GpuId> gpus;
  for (int i = 0; i < n; ++i) gpus.emplace_back(static_cast<std::uint32_t>(i));
  const double bytes = parse_bytes(o.bytes);

  CommPlan plan;
  double size = bytes;  // nccl-tests "size": per-rank buffer for all-to-all, else the buffer
  const std::string& c = o.collective;
  if (c == "all-to-all") {
    plan = plan_all_to_all(topo, gpus, ByteMatrix::uniform(gpus.size(), Bytes(bytes)));
    size = bytes * n;
  } else if (c == "all-gather") {
    plan = plan_all_gather(topo, gpus, Bytes(bytes));
  } else if (c == "reduce-scatter") {
    plan = plan_reduce_scatter(topo, gpus, Bytes(bytes));
  } else if (c == "all-reduce") {
    if (o.algorithm == "in-switch") {
      if (!topo.in_switch_reduction()) {
        throw ConfigError(sys.file, "/scale_up/in_switch_reduction",
                          "--algorithm in-switch needs a scale-up switch with in-network reduction");
      }
      if (topo.domain_of(gpus.back()) != 0) {
        throw ConfigError("--algorithm", "",
                          fmt::format("in-switch all-reduce runs inside one scale-up domain ({} GPUs); got --gpus {}",
                                      sys.scale_up.domain_gpus, n));
      }
      plan = plan_all_reduce(topo, gpus, Bytes(bytes), AllReduceAlgorithm::kInSwitch);
    } else {
      plan = plan_all_reduce(topo, gpus, Bytes(bytes), AllReduceAlgorithm::kRing);
    }
  } else if (c == "p2p") {
    plan = plan_p2p(topo, gpus.front(), gpus.back(), Bytes(bytes));
  }

  Duration t{};
  if (o.mode == "analytic") {
    t = plan_time(topo, plan);
  } else {
    Simulator sim;
    Network net(sim, topo);
    Time done{};
    net.run(plan, [&](Time d) { done = d; });
    sim.run();
    t = done.time_since_epoch();
  }
  const double secs = to_seconds(t);
  const double algbw = secs > 0 ? size / secs : 0;
  const double busbw = algbw * bus_factor(c, n);

  if (o.json) {
    nlohmann::json j;
    j["system"] = sys.id;
    j["domains"] = o.domains;
    j["gpus"] = n;
    j["collective"] = c;
    j["algorithm"] = plan.algorithm;
    j["mode"] = o.mode;
    j["bytes"] = bytes;
    j["bytes_meaning"] = c == "all-to-all" ? "per GPU per peer" : "total buffer";
    j["time_s"] = secs;
    j["algbw_bytes_per_s"] = algbw;
    j["busbw_bytes_per_s"] = busbw;
    j["topology"] = topo.summary();
    j["scale_up_switch_chips"] = topo.scale_up_switch_chips();
    j["scale_up_bandwidth_per_direction"] = sys.scale_up.bandwidth_per_gpu_per_direction.value();
    j["scale_up_achieved_fraction"] = sys.scale_up.achieved_fraction;
    if (sys.scale_out) j["scale_out_achieved_fraction"] = sys.scale_out->achieved_fraction;
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("{} ({} GPUs of {} x {}, {})\n", c, n, o.domains, sys.id, topo.summary());
    fmt::print("  bytes      {} {}\n", format_si(bytes, "B"), c == "all-to-all" ? "per GPU per peer" : "total");
    fmt::print("  algorithm  {}, {} mode\n", plan.algorithm, o.mode);
    fmt::print("  time       {:.3f} us\n", to_us(t));
    fmt::print("  algbw      {}\n", format_si(algbw, "B/s"));
    fmt::print("  busbw      {}\n", format_si(busbw, "B/s"));
    fmt::print("  links      scale-up {} per direction x {:g} achieved{}\n",
               format_si(sys.scale_up.bandwidth_per_gpu_per_direction.value(), "B/s"), sys.scale_up.achieved_fraction,
               sys.scale_out ? fmt::format("; NICs x {:g} achieved", sys.scale_out->achieved_fraction) : "");
  }
  return 0;
}

}  // namespace

void add_comm_command(CLI::App& parent, CommandAction& action) {
  auto opts = std::make_shared<CommOptions>();
  CLI::App* sub = parent.add_subcommand(
      "comm", "Simulated time of one collective on a system (fluid max-min flows or analytic bottleneck model)");
  sub->add_option("--system", opts->system, "system description (hardware/systems/<s>.json)")->required();
  sub->add_option("--domains", opts->domains, "scale-up domains (HGX nodes or NVL72 racks) joined by InfiniBand");
  sub->add_option("--collective", opts->collective, "all-to-all, all-gather, reduce-scatter, all-reduce or p2p")
      ->required()
      ->check(CLI::IsMember({"all-to-all", "all-gather", "reduce-scatter", "all-reduce", "p2p"}));
  sub->add_option("--bytes", opts->bytes,
                  "size with unit, e.g. \"64 MB\": per GPU per peer for all-to-all (each GPU sends N-1 such "
                  "messages), the whole buffer for all-gather (output), reduce-scatter (input), all-reduce and p2p")
      ->required();
  sub->add_option("--gpus", opts->gpus, "GPUs taking part (the first N of the cluster; default all); "
                                        "p2p goes from the first to the last of them");
  sub->add_option("--mode", opts->mode, "fluid (flow-level, max-min fair sharing) or analytic (bottleneck links)")
      ->check(CLI::IsMember({"fluid", "analytic"}));
  sub->add_option("--algorithm", opts->algorithm, "all-reduce algorithm: ring or in-switch (NVLink SHARP)")
      ->check(CLI::IsMember({"ring", "in-switch"}));
  sub->add_flag("--json", opts->json, "print one JSON object");
  sub->callback([opts, &action] { action = [opts] { return run_comm(*opts); }; });
}

}  // namespace moesim::cli
