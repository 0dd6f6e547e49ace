#include "sim/core/quantity.h"

#include <array>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>

namespace moesim {

namespace {

struct UnitDef {
  std::string_view name;
  Dim dim;
  double scale;
};

// Longest names first is not needed: lookup is by exact match of the unit text.
constexpr std::array kUnits = {
    UnitDef{"B", Dim::kBytes, 1},
    UnitDef{"kB", Dim::kBytes, 1e3},
    UnitDef{"KB", Dim::kBytes, 1e3},
    UnitDef{"MB", Dim::kBytes, 1e6},
    UnitDef{"GB", Dim::kBytes, 1e9},
    UnitDef{"TB", Dim::kBytes, 1e12},
    UnitDef{"KiB", Dim::kBytes, 1024.0},
    UnitDef{"MiB", Dim::kBytes, 1048576.0},
    UnitDef{"GiB", Dim::kBytes, 1073741824.0},
    UnitDef{"TiB", Dim::kBytes, 1099511627776.0},
    UnitDef{"B/s", Dim::kBytesPerSec, 1},
    UnitDef{"kB/s", Dim::kBytesPerSec, 1e3},
    UnitDef{"MB/s", Dim::kBytesPerSec, 1e6},
    UnitDef{"GB/s", Dim::kBytesPerSec, 1e9},
    UnitDef{"TB/s", Dim::kBytesPerSec, 1e12},
    UnitDef{"GiB/s", Dim::kBytesPerSec, 1073741824.0},
    UnitDef{"b/s", Dim::kBytesPerSec, 1.0 / 8},
    UnitDef{"Mb/s", Dim::kBytesPerSec, 1e6 / 8},
    UnitDef{"Gb/s", Dim::kBytesPerSec, 1e9 / 8},
    UnitDef{"Tb/s", Dim::kBytesPerSec, 1e12 / 8},
    UnitDef{"FLOP/s", Dim::kFlopsPerSec, 1},
    UnitDef{"GFLOP/s", Dim::kFlopsPerSec, 1e9},
    UnitDef{"TFLOP/s", Dim::kFlopsPerSec, 1e12},
    UnitDef{"PFLOP/s", Dim::kFlopsPerSec, 1e15},
    UnitDef{"FLOP", Dim::kFlops, 1},
    UnitDef{"MFLOP", Dim::kFlops, 1e6},
    UnitDef{"GFLOP", Dim::kFlops, 1e9},
    UnitDef{"TFLOP", Dim::kFlops, 1e12},
    UnitDef{"W", Dim::kWatts, 1},
    UnitDef{"kW", Dim::kWatts, 1e3},
    UnitDef{"MW", Dim::kWatts, 1e6},
    UnitDef{"s", Dim::kSeconds, 1},
    UnitDef{"ms", Dim::kSeconds, 1e-3},
    UnitDef{"us", Dim::kSeconds, 1e-6},
    UnitDef{"ns", Dim::kSeconds, 1e-9},
    UnitDef{"ps", Dim::kSeconds, 1e-12},
    UnitDef{"USD/h", Dim::kUsdPerHour, 1},
};

}  // namespace

std::string describe_dim(Dim d) {
  switch (d) {
    case Dim::kBytes: return "a size in bytes (e.g. \"141 GB\", \"60 MiB\")";
    case Dim::kBytesPerSec: return "a bandwidth (e.g. \"900 GB/s\", \"400 Gb/s\")";
    case Dim::kFlopsPerSec: return "a compute rate (e.g. \"989.4 TFLOP/s\")";
    case Dim::kFlops: return "an amount of work (e.g. \"73.2 GFLOP\")";
    case Dim::kWatts: return "a power (e.g. \"700 W\", \"120 kW\")";
    case Dim::kSeconds: return "a time (e.g. \"2 us\", \"50 ms\")";
    case Dim::kUsdPerHour: return "a price per hour (e.g. \"2.10 USD/h\")";
  }
  return "a quantity";
}

std::optional<ParsedQuantity> parse_quantity(std::string_view text) {
  const std::string s(text);
  const char* begin = s.c_str();
  char* end = nullptr;
  const double number = std::strtod(begin, &end);
  if (end == begin || !std::isfinite(number)) return std::nullopt;
  std::string_view rest(end);
  if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  for (const UnitDef& u : kUnits) {
    if (u.name == rest) return ParsedQuantity{number * u.scale, u.dim};
  }
  return std::nullopt;
}

std::string format_si(double value, std::string_view unit, int significant) {
  static constexpr std::array<std::pair<double, const char*>, 6> kPrefixes = {
      {{1e15, "P"}, {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}, {1, ""}}};
  const double mag = std::fabs(value);
  for (const auto& [scale, prefix] : kPrefixes) {
    if (mag >= scale) return fmt::format("{:.{}g} {}{}", value / scale, significant, prefix, unit);
  }
  if (mag == 0) return fmt::format("0 {}", unit);
  if (mag >= 1e-3) return fmt::format("{:.{}g} m{}", value * 1e3, significant, unit);
  if (mag >= 1e-6) return fmt::format("{:.{}g} u{}", value * 1e6, significant, unit);
  return fmt::format("{:.{}g} n{}", value * 1e9, significant, unit);
}

}  // namespace moesim
