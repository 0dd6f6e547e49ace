// Weight storage formats and what they cost: bytes per parameter including
// scales, and the tensor-core precision a kernel computes in.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sim/config/hardware_spec.h"

namespace moesim {

enum class Format { kBf16, kFp8, kFp8Block128, kNvfp4, kMxfp4, kInt4G32 };

struct FormatInfo {
  Format format;
  std::string_view name;
  double bytes_per_param;  // payload + scales
  Precision compute;       // the tensor-core path it is designed for
  bool weight_only;        // activations stay BF16 (W4A16)
  std::string_view derivation;
};

const FormatInfo& format_info(Format f);
std::optional<Format> parse_format(std::string_view name);
std::string format_names();  // "bf16, fp8, ..." for error messages

// The precision a GEMM with weights in `f` runs at on `gpu`: the format's own
// path where the GPU has it, else the nearest slower one (NVFP4 on Hopper runs
// as FP8 after dequantisation by the kernel; weight-only formats run in BF16).
Precision compute_precision(Format f, const GpuSpec& gpu);

// Bytes per element of a KV cache or activation dtype name ("bf16", "fp8").
std::optional<double> activation_bytes(std::string_view dtype);

}  // namespace moesim
