#include "sim/config/hardware_load.h"

#include <fmt/format.h>

#include "sim/config/description.h"

namespace moesim {

namespace {

constexpr double kTera = 1e12;

FlopsPerSec read_peak(ObjectReader& peak, const std::string& key) {
  // 1 TFLOP/s .. 100 PFLOP/s dense per GPU.
  return FlopsPerSec(peak.quantity(key, Dim::kFlopsPerSec, 1 * kTera, 1e5 * kTera));
}

Duration read_duration(ObjectReader& r, const std::string& key, double max_seconds) {
  return duration_from_seconds_ceil(r.quantity(key, Dim::kSeconds, 0, max_seconds));
}

GpuSpec read_gpu(ObjectReader& root, const std::string& file, Provenance& prov) {
  GpuSpec g;
  const DescriptionHead head = read_description_head(root, "gpu");
  g.id = head.id;
  g.name = head.name;
  g.file = file;
  g.arch = root.one_of("arch", {"hopper", "blackwell", "blackwell-ultra"});
  g.compute_capability = root.string("compute_capability");
  g.sm_count = static_cast<int>(root.integer("sm_count", 1, 1024));

  ObjectReader peak = root.child("peak");
  g.peak[Precision::kBf16] = read_peak(peak, "bf16");
  const std::pair<const char*, Precision> optional_peaks[] = {
      {"fp16", Precision::kFp16}, {"fp8", Precision::kFp8}, {"fp4", Precision::kFp4}, {"int8", Precision::kInt8}};
  for (const auto& [key, p] : optional_peaks) {
    if (peak.has(key)) g.peak[p] = read_peak(peak, key);
  }
  peak.finish();

  ObjectReader hbm = root.child("hbm");
  g.hbm_physical = Bytes(hbm.quantity("physical", Dim::kBytes, 1e9, 1e13));
  g.hbm_usable = Bytes(hbm.quantity("usable", Dim::kBytes, 1e9, 1e13));
  if (g.hbm_usable > g.hbm_physical)
    hbm.fail_at("usable", fmt::format("usable memory ({:.1f} GB) exceeds physical memory ({:.1f} GB)",
                                      g.hbm_usable.value() / 1e9, g.hbm_physical.value() / 1e9));
  g.hbm_bandwidth = BytesPerSec(hbm.quantity("bandwidth", Dim::kBytesPerSec, 1e11, 1e14));
  hbm.finish();

  g.l2 = Bytes(root.quantity("l2", Dim::kBytes, 1e6, 1e10));
  g.tdp = Watts(root.quantity("tdp", Dim::kWatts, 50, 1e4));

  ObjectReader nvlink = root.child("nvlink");
  g.nvlink_generation = static_cast<int>(nvlink.integer("generation", 1, 10));
  g.nvlink_links = static_cast<int>(nvlink.integer("links", 1, 64));
  g.nvlink_bandwidth_per_direction = BytesPerSec(nvlink.quantity("bandwidth_per_direction", Dim::kBytesPerSec, 1e9, 1e13));
  nvlink.finish();

  ObjectReader host = root.child("host_link");
  g.host_link_kind = host.string("kind");
  g.host_link_bandwidth_per_direction = BytesPerSec(host.quantity("bandwidth_per_direction", Dim::kBytesPerSec, 1e9, 1e13));
  host.finish();

  ObjectReader roof = root.child("roofline");
  g.roofline.compute_efficiency = roof.number("compute_efficiency", 0.01, 1.0);
  g.roofline.memory_efficiency = roof.number("memory_efficiency", 0.01, 1.0);
  g.roofline.launch_overhead = read_duration(roof, "launch_overhead", 1e-3);
  g.roofline.launch_overhead_graph = read_duration(roof, "launch_overhead_graph", 1e-3);
  roof.finish();

  if (auto cal = root.optional_string("calibration")) g.calibration_path = resolve_relative(file, *cal);
  if (auto ex = root.optional_child("extrapolation")) {
    g.extrapolated_from = ex->string("from");
    g.extrapolation_rule = ex->string("rule");
    ex->finish();
  }
  if (g.arch != "hopper" && !g.extrapolated_from)
    root.fail("expected an \"extrapolation\" object: moesim has no measurements of this GPU, so its costs must "
              "name the measured GPU they are scaled from and the rule");
  root.finish();
  g.provenance = prov;
  return g;
}

}  // namespace

FlopsPerSec GpuSpec::peak_for(Precision p) const {
  auto pick = [&](std::initializer_list<Precision> chain) {
    for (Precision q : chain) {
      if (auto it = peak.find(q); it != peak.end()) return it->second;
    }
    return peak.at(Precision::kBf16);
  };
  switch (p) {
    case Precision::kFp4: return pick({Precision::kFp4, Precision::kFp8, Precision::kBf16});
    case Precision::kFp8: return pick({Precision::kFp8, Precision::kBf16});
    case Precision::kInt8: return pick({Precision::kInt8, Precision::kFp8, Precision::kBf16});
    case Precision::kFp16: return pick({Precision::kFp16, Precision::kBf16});
    case Precision::kBf16: return peak.at(Precision::kBf16);
  }
  return peak.at(Precision::kBf16);
}

GpuSpec load_gpu(const std::string& path) {
  const nlohmann::json doc = read_json_file(path);
  Provenance prov;
  ReadContext ctx{path, &prov, true};
  ObjectReader root(doc, ctx, "");
  return read_gpu(root, path, prov);
}

SystemSpec load_system(const std::string& path) {
  const nlohmann::json doc = read_json_file(path);
  SystemSpec s;
  ReadContext ctx{path, &s.provenance, true};
  ObjectReader root(doc, ctx, "");
  const DescriptionHead head = read_description_head(root, "system");
  s.id = head.id;
  s.name = head.name;
  s.file = path;
  const std::string gpu_rel = root.string("gpu");
  const std::string gpu_path = resolve_relative(path, gpu_rel);
  try {
    s.gpu = load_gpu(gpu_path);
  } catch (const ConfigError& e) {
    // Name both files: the system that points at the GPU file, and what is wrong there.
    throw ConfigError(path, root.pointer_of("gpu"),
                      fmt::format("the GPU file \"{}\" it names is not usable: {}", gpu_rel, e.what()));
  }
  s.gpus_per_node = static_cast<int>(root.integer("gpus_per_node", 1, 1024));

  ObjectReader up = root.child("scale_up");
  s.scale_up.domain_gpus = static_cast<int>(up.integer("domain_gpus", 1, 1 << 16));
  s.scale_up.switch_chips = static_cast<int>(up.integer("switch_chips", 0, 4096));
  s.scale_up.bandwidth_per_gpu_per_direction =
      BytesPerSec(up.quantity("bandwidth_per_gpu_per_direction", Dim::kBytesPerSec, 1e9, 1e13));
  s.scale_up.achieved_fraction = up.optional_number("achieved_fraction", 0.05, 1.0).value_or(1.0);
  s.scale_up.latency = read_duration(up, "latency", 1e-3);
  s.scale_up.in_switch_reduction = up.boolean_or("in_switch_reduction", false);
  up.finish();
  if (s.scale_up.domain_gpus % s.gpus_per_node != 0)
    root.fail_at("gpus_per_node", fmt::format("the NVLink domain of {} GPUs is not a whole number of nodes of {}",
                                              s.scale_up.domain_gpus, s.gpus_per_node));

  if (auto out = root.optional_child("scale_out")) {
    ScaleOut so;
    so.fabric = out->one_of("fabric", {"infiniband-rail-optimized", "infiniband-fat-tree", "ethernet-rail-optimized"});
    so.nics_per_gpu = static_cast<int>(out->integer("nics_per_gpu", 1, 16));
    so.nic_bandwidth_per_direction =
        BytesPerSec(out->quantity("nic_bandwidth_per_direction", Dim::kBytesPerSec, 1e9, 1e13));
    so.achieved_fraction = out->optional_number("achieved_fraction", 0.05, 1.0).value_or(1.0);
    so.nic_latency = read_duration(*out, "nic_latency", 1e-3);
    so.switch_latency = read_duration(*out, "switch_latency", 1e-3);
    so.leaf_ports = static_cast<int>(out->integer("leaf_ports", 2, 4096));
    out->finish();
    s.scale_out = so;
  }

  ObjectReader power = root.child("power");
  s.power_per_gpu = Watts(power.quantity("per_gpu", Dim::kWatts, 50, 1e4));
  if (auto node = power.optional_quantity("per_node", Dim::kWatts, 100, 1e7)) s.power_per_node = Watts(*node);
  power.finish();

  if (auto price = root.optional_child("price")) {
    s.price_per_gpu_hour_usd = price->quantity("per_gpu_hour", Dim::kUsdPerHour, 0.01, 1000);
    price->finish();
    const auto it = s.provenance.by_pointer.find("/price/per_gpu_hour");
    if (it == s.provenance.by_pointer.end() || it->second.status != "E")
      root.fail_at("price", "expected the price to be marked as an estimate (\"status\": \"E\") with its source");
  }
  root.finish();
  return s;
}

}  // namespace moesim
