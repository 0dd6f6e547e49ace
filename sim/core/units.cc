#include "sim/core/units.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace moesim {

Duration duration_from_seconds_ceil(double seconds) {
  if (!(seconds >= 0)) throw std::domain_error("duration must be a non-negative number of seconds");
  // Round up, except that a product within floating-point noise of a whole
  // picosecond (1 us = 1e-6 s gives 1000000.0000000001 ps) counts as that whole.
  const double raw = seconds * 1e12;
  const double nearest = std::nearbyint(raw);
  const double ps = std::fabs(raw - nearest) <= 1e-14 * std::max(1.0, raw) ? nearest : std::ceil(raw);
  // 2^63 ps; compare in double space, where 9.223372036854775807e18 rounds to 2^63.
  if (ps >= 9.223372036854775807e18) throw std::overflow_error("duration exceeds the ±106-day range of engine time");
  return Duration{static_cast<std::int64_t>(ps)};
}

Duration transfer_time(Bytes b, BytesPerSec r) {
  if (!(r.value() > 0)) throw std::domain_error("transfer rate must be positive");
  return duration_from_seconds_ceil(b.value() / r.value());
}

Duration compute_time(Flops f, FlopsPerSec r) {
  if (!(r.value() > 0)) throw std::domain_error("compute rate must be positive");
  return duration_from_seconds_ceil(f.value() / r.value());
}

}  // namespace moesim
