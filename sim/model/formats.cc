#include "sim/model/formats.h"

#include <array>

namespace moesim {

namespace {

// Sources: specs.md A.1 (DeepSeek FP8 128x128 blocks with FP32 scales; Kimi K2 Thinking INT4 group 32 with
// BF16 scales), A.3 (gpt-oss MXFP4: E2M1 + E8M0 scale per 32), A.4 (NVFP4: E2M1 + FP8 scale per 16).
constexpr std::array<FormatInfo, 6> kFormats = {{
    {Format::kBf16, "bf16", 2.0, Precision::kBf16, false, "2 B"},
    {Format::kFp8, "fp8", 1.0, Precision::kFp8, false, "1 B (one per-tensor scale, negligible)"},
    {Format::kFp8Block128, "fp8_block128", 1.0 + 4.0 / (128 * 128), Precision::kFp8, false,
     "1 B + 4 B FP32 scale per 128x128 block"},
    {Format::kNvfp4, "nvfp4", 0.5 + 1.0 / 16, Precision::kFp4, false, "0.5 B E2M1 + 1 B FP8 scale per 16"},
    {Format::kMxfp4, "mxfp4", 0.5 + 1.0 / 32, Precision::kFp4, false, "0.5 B E2M1 + 1 B E8M0 scale per 32"},
    {Format::kInt4G32, "int4_g32", 0.5 + 2.0 / 32, Precision::kBf16, true, "0.5 B INT4 + 2 B BF16 scale per 32"},
}};

}  // namespace

const FormatInfo& format_info(Format f) {
  for (const FormatInfo& info : kFormats) {
    if (info.format == f) return info;
  }
  return kFormats[0];
}

std::optional<Format> parse_format(std::string_view name) {
  for (const FormatInfo& info : kFormats) {
    if (info.name == name) return info.format;
  }
  return std::nullopt;
}

std::string format_names() {
  std::string out;
  for (const FormatInfo& info : kFormats) out += (out.empty() ? "" : ", ") + std::string(info.name);
  return out;
}

Precision compute_precision(Format f, const GpuSpec& gpu) {
  const Precision want = format_info(f).compute;
  if (gpu.has(want)) return want;
  if (want == Precision::kFp4 && gpu.has(Precision::kFp8)) return Precision::kFp8;
  return Precision::kBf16;
}

std::optional<double> activation_bytes(std::string_view dtype) {
  if (dtype == "bf16" || dtype == "fp16") return 2.0;
  if (dtype == "fp8") return 1.0;
  if (dtype == "fp32") return 4.0;
  return std::nullopt;
}

}  // namespace moesim
