// Hand-built system descriptions for the hw tests (numbers from specs.md B.2/B.4:
// HGX H200 450 GB/s/dir NVLink, 400 Gb/s = 50 GB/s/dir CX7 NIC; GB200 NVL72
// 900 GB/s/dir NVLink, 100 GB/s/dir between racks). Latencies are round test
// values: scale-up 2 us GPU->switch->GPU, NIC 2 us, IB switch hop 0.3 us.
#pragma once

#include <chrono>

#include "sim/config/hardware_spec.h"

namespace moesim::test {

inline SystemSpec hgx_h200() {
  using namespace std::chrono_literals;
  SystemSpec s;
  s.id = "hgx-h200";
  s.name = "test HGX H200";
  s.file = "hardware/systems/test-hgx-h200.json";
  s.gpu.id = "h200-sxm";
  s.gpus_per_node = 8;
  s.scale_up = ScaleUp{.domain_gpus = 8,
                       .switch_chips = 4,
                       .bandwidth_per_gpu_per_direction = BytesPerSec(450e9),
                       .latency = Duration(2us),
                       .in_switch_reduction = true};
  s.scale_out = ScaleOut{.fabric = "infiniband-rail-optimized",
                         .nics_per_gpu = 1,
                         .nic_bandwidth_per_direction = BytesPerSec(50e9),
                         .nic_latency = Duration(2us),
                         .switch_latency = Duration(300ns),
                         .leaf_ports = 64};
  return s;
}

inline SystemSpec gb200_nvl72() {
  using namespace std::chrono_literals;
  SystemSpec s;
  s.id = "gb200-nvl72";
  s.name = "test GB200 NVL72";
  s.file = "hardware/systems/test-gb200-nvl72.json";
  s.gpu.id = "gb200";
  s.gpus_per_node = 4;
  s.scale_up = ScaleUp{.domain_gpus = 72,
                       .switch_chips = 18,
                       .bandwidth_per_gpu_per_direction = BytesPerSec(900e9),
                       .latency = Duration(2us),
                       .in_switch_reduction = true};
  s.scale_out = ScaleOut{.fabric = "infiniband-rail-optimized",
                         .nics_per_gpu = 1,
                         .nic_bandwidth_per_direction = BytesPerSec(100e9),
                         .nic_latency = Duration(2us),
                         .switch_latency = Duration(300ns),
                         .leaf_ports = 144};
  return s;
}

inline ClusterSpec cluster(SystemSpec s, int domains) { return ClusterSpec{std::move(s), domains}; }

}  // namespace moesim::test
