// Parsing of quantities written with their unit ("900 GB/s", "4.8 TB/s",
// "400 Gb/s", "141 GB", "60 MiB", "700 W", "989.4 TFLOP/s", "2 us",
// "2.10 USD/h") into SI values with a dimension. Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace moesim {

enum class Dim { kBytes, kBytesPerSec, kFlopsPerSec, kFlops, kWatts, kSeconds, kUsdPerHour };

// "a capacity", "a bandwidth", ... for error messages, with an example value.
std::string describe_dim(Dim d);

struct ParsedQuantity {
  double si = 0;  // bytes, bytes/s, FLOP/s, FLOP, W, s, USD/h
  Dim dim = Dim::kBytes;
};

// Parses "<number> <unit>" (one space optional). Returns nullopt when the text
// is not a number followed by a known unit.
std::optional<ParsedQuantity> parse_quantity(std::string_view text);

// Formats a value for humans with an SI prefix: format_si(4.8e12, "B/s") == "4.8 TB/s".
std::string format_si(double value, std::string_view unit, int significant = 4);

}  // namespace moesim
