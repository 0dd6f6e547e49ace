#include "sim/model/routing_trace.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

#include "sim/config/error.h"
#include "sim/config/json_reader.h"

namespace moesim {

RoutingTrace load_routing_trace(const std::string& path, const ModelSpec& m) {
  const nlohmann::json j = read_json_file(path);
  auto fail = [&](const std::string& ptr, const std::string& msg) -> void { throw ConfigError(path, ptr, msg); };
  if (!j.is_object()) fail("", "expected a JSON object (a moesim routing trace)");
  if (!j.contains("format") || !j["format"].is_string() || j["format"].get<std::string>() != kRoutingTraceFormat)
    fail("/format", fmt::format("unknown routing file format: expected \"format\": \"{}\"", kRoutingTraceFormat));
  for (const auto& [key, val] : j.items()) {
    if (key != "format" && key != "model" && key != "experts" && key != "source" && key != "layers")
      fail("/" + key, fmt::format("unknown key \"{}\": expected format, model, experts, source, layers", key));
  }
  if (!m.moe) fail("", fmt::format("{} has no routed experts", m.id));
  if (j.contains("model")) {
    if (!j["model"].is_string()) fail("/model", "expected a string");
    if (j["model"].get<std::string>() != m.id)
      fail("/model", fmt::format("trace is for model \"{}\", not \"{}\"", j["model"].get<std::string>(), m.id));
  }
  if (j.contains("source") && !j["source"].is_string()) fail("/source", "expected a string");
  if (!j.contains("experts") || !j["experts"].is_number_integer()) fail("/experts", "expected the number of routed experts");
  RoutingTrace t;
  t.file = path;
  t.experts = j["experts"].get<int>();
  if (t.experts != m.moe->routed_experts)
    fail("/experts", fmt::format("{} experts, but {} has {}", t.experts, m.id, m.moe->routed_experts));
  if (!j.contains("layers") || !j["layers"].is_object()) fail("/layers", "expected an object keyed by layer index");
  for (const auto& [key, arr] : j["layers"].items()) {
    const std::string ptr = "/layers/" + key;
    int layer = -1;
    const auto [p, ec] = std::from_chars(key.data(), key.data() + key.size(), layer);
    if (ec != std::errc() || p != key.data() + key.size() || layer < 0 || layer >= m.layers + m.mtp_layers)
      fail(ptr, fmt::format("expected a layer index in 0..{}", m.layers + m.mtp_layers - 1));
    if (layer < m.layers && !m.is_moe_layer(layer)) fail(ptr, fmt::format("layer {} is not an MoE layer", layer));
    if (!arr.is_array() || arr.size() != static_cast<std::size_t>(t.experts))
      fail(ptr, fmt::format("expected an array of {} loads", t.experts));
    std::vector<double> load;
    double sum = 0;
    for (std::size_t e = 0; e < arr.size(); ++e) {
      if (!arr[e].is_number() || !(arr[e].get<double>() >= 0) || !std::isfinite(arr[e].get<double>()))
        fail(fmt::format("{}/{}", ptr, e), "expected a non-negative number");
      load.push_back(arr[e].get<double>());
      sum += load.back();
    }
    if (!(sum > 0)) fail(ptr, "all loads are zero");
    t.layers[layer] = std::move(load);
  }
  for (int l = 0; l < m.layers; ++l) {
    if (m.is_moe_layer(l) && !t.layers.count(l))
      fail("/layers", fmt::format("MoE layer {} is missing (every MoE layer needs a histogram)", l));
  }
  // MTP layers (index >= layers) fall back to the last MoE layer's histogram when absent.
  for (int l = m.layers; l < m.layers + m.mtp_layers; ++l) {
    if (!t.layers.count(l) && !t.layers.empty()) t.layers[l] = t.layers.rbegin()->second;
  }
  return t;
}

}  // namespace moesim
