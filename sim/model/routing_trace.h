// Routing-trace files: per-layer expert-load histograms observed on a real
// deployment, to drive the routing draw and the expert placement.
//
// Format (strict; unknown keys are errors):
//   {
//     "format": "moesim-routing-trace/1",
//     "model": "deepseek-r1",            // optional: checked against the model id when present
//     "experts": 256,                    // must equal the model's routed experts
//     "source": "free text",             // optional provenance
//     "layers": {                        // keyed by the model's layer index (0-based), every MoE layer present
//       "3": [1520, 980, ...],           // one non-negative number per expert: tokens routed (or any load unit)
//       "4": [...]
//     }
//   }
// Errors: ConfigError(file, JSON pointer, message), e.g. "/layers/7/12".
#pragma once

#include <map>
#include <string>
#include <vector>

#include "sim/config/model_spec.h"

namespace moesim {

inline constexpr const char* kRoutingTraceFormat = "moesim-routing-trace/1";

struct RoutingTrace {
  std::string file;
  int experts = 0;
  std::map<int, std::vector<double>> layers;  // model layer index -> load per expert
};

RoutingTrace load_routing_trace(const std::string& path, const ModelSpec& m);

}  // namespace moesim
