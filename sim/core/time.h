// Simulated time: signed 64-bit picoseconds (±106 days), never floating point.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>

namespace moesim {

using Duration = std::chrono::duration<std::int64_t, std::pico>;

struct SimClock {
  using rep = std::int64_t;
  using period = std::pico;
  using duration = Duration;
  using time_point = std::chrono::time_point<SimClock, Duration>;
  static constexpr bool is_steady = true;
};

using Time = SimClock::time_point;

inline constexpr Time kTimeZero{};
inline constexpr Time kTimeMax{Duration{std::numeric_limits<std::int64_t>::max()}};

// Exact conversions for reporting (the engine never computes with these).
inline double to_seconds(Duration d) { return static_cast<double>(d.count()) * 1e-12; }
inline double to_us(Duration d) { return static_cast<double>(d.count()) * 1e-6; }
inline double to_ms(Duration d) { return static_cast<double>(d.count()) * 1e-9; }
inline double to_seconds(Time t) { return to_seconds(t.time_since_epoch()); }

// The one place where a real-valued span of time becomes engine time: rounds up
// to the next picosecond so that a transfer or computation never completes
// early. Throws std::overflow_error past the representable range and
// std::domain_error on negative or NaN input.
Duration duration_from_seconds_ceil(double seconds);

}  // namespace moesim
