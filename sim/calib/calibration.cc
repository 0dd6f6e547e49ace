#include "sim/calib/calibration.h"

#include <stdexcept>

namespace moesim::calib {

double Reference::peak_for(const std::string& p) const {
  auto pick = [&](std::initializer_list<const char*> chain) {
    for (const char* c : chain)
      if (auto it = peak_flops.find(c); it != peak_flops.end()) return it->second;
    throw std::out_of_range("calibration reference has no bf16 peak");
  };
  if (p == "fp4") return pick({"fp4", "fp8", "bf16"});
  if (p == "fp8") return pick({"fp8", "bf16"});
  if (p == "int8") return pick({"int8", "fp8", "bf16"});
  if (p == "fp16") return pick({"fp16", "bf16"});
  return pick({"bf16"});
}

}  // namespace moesim::calib
