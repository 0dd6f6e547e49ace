// Immutable, validated hardware descriptions (no JSON types here). Produced by
// load_gpu() / load_system() in sim/config/hardware_load.h.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "sim/config/provenance.h"
#include "sim/core/time.h"
#include "sim/core/units.h"

namespace moesim {

enum class Precision { kBf16, kFp16, kFp8, kFp4, kInt8 };

struct RooflineParams {
  double compute_efficiency = 1.0;  // sustained fraction of peak FLOP/s
  double memory_efficiency = 1.0;   // sustained fraction of HBM bandwidth
  Duration launch_overhead{};       // per kernel, plain launches
  Duration launch_overhead_graph{}; // per kernel inside a CUDA graph
};

struct GpuSpec {
  std::string id;    // "h200-sxm"
  std::string name;  // "NVIDIA H200 SXM"
  std::string file;  // the description file it came from
  std::string arch;  // "hopper", "blackwell"
  std::string compute_capability;
  int sm_count = 0;
  std::map<Precision, FlopsPerSec> peak;  // dense tensor-core peaks; bf16 always present
  Bytes hbm_physical;
  Bytes hbm_usable;
  BytesPerSec hbm_bandwidth;
  Bytes l2;
  Watts tdp;
  int nvlink_generation = 0;
  int nvlink_links = 0;
  BytesPerSec nvlink_bandwidth_per_direction;
  std::string host_link_kind;
  BytesPerSec host_link_bandwidth_per_direction;
  RooflineParams roofline;
  std::optional<std::string> calibration_path;  // resolved relative to the working directory
  // Set for GPUs we cannot measure: the measured GPU whose fits are scaled, and the rule.
  std::optional<std::string> extrapolated_from;
  std::string extrapolation_rule;
  Provenance provenance;

  // Peak for a compute precision; falls back to the nearest slower path the GPU has
  // (fp4 -> fp8 -> bf16, int8 -> fp8 -> bf16), which is what a kernel would run.
  FlopsPerSec peak_for(Precision p) const;
  bool has(Precision p) const { return peak.count(p) != 0; }
};

struct ScaleUp {
  int domain_gpus = 0;   // GPUs in one NVLink domain (8 for HGX, 72 for NVL72)
  int switch_chips = 0;  // NVSwitch / NVLink switch chips per domain
  BytesPerSec bandwidth_per_gpu_per_direction;
  // Share of that bandwidth a collective's data transfers achieve (protocol and kernel overhead): the network
  // model's links carry bandwidth x achieved_fraction. 1 when the file gives none.
  double achieved_fraction = 1.0;
  Duration latency{};    // one GPU -> switch -> GPU traversal
  bool in_switch_reduction = false;
};

struct ScaleOut {
  std::string fabric;    // "infiniband-rail-optimized"
  int nics_per_gpu = 0;
  BytesPerSec nic_bandwidth_per_direction;
  double achieved_fraction = 1.0;  // as ScaleUp::achieved_fraction, for the NICs and InfiniBand links
  Duration nic_latency{};
  Duration switch_latency{};  // per InfiniBand switch hop
  int leaf_ports = 0;
};

struct SystemSpec {
  std::string id;
  std::string name;
  std::string file;
  GpuSpec gpu;
  int gpus_per_node = 0;
  ScaleUp scale_up;
  std::optional<ScaleOut> scale_out;
  Watts power_per_gpu;
  std::optional<Watts> power_per_node;
  std::optional<double> price_per_gpu_hour_usd;  // always an estimate
  Provenance provenance;
};

// A concrete cluster: a system description times a number of scale-up domains.
struct ClusterSpec {
  SystemSpec system;
  int domains = 1;  // HGX nodes or NVL72 racks
  int total_gpus() const { return domains * system.scale_up.domain_gpus; }
};

}  // namespace moesim
