// Strong types for physical quantities. Each wraps a double in SI base units
// (bytes, FLOPs, bytes/s, FLOP/s, watts) with an explicit constructor and only
// the arithmetic that makes sense for it.
#pragma once

#include <compare>

#include "sim/core/time.h"

namespace moesim {

template <class Tag>
class Quantity {
 public:
  constexpr Quantity() = default;
  constexpr explicit Quantity(double v) : v_(v) {}
  constexpr double value() const { return v_; }
  constexpr Quantity& operator+=(Quantity o) { v_ += o.v_; return *this; }
  constexpr Quantity& operator-=(Quantity o) { v_ -= o.v_; return *this; }
  friend constexpr Quantity operator+(Quantity a, Quantity b) { return Quantity(a.v_ + b.v_); }
  friend constexpr Quantity operator-(Quantity a, Quantity b) { return Quantity(a.v_ - b.v_); }
  friend constexpr Quantity operator*(Quantity a, double s) { return Quantity(a.v_ * s); }
  friend constexpr Quantity operator*(double s, Quantity a) { return Quantity(a.v_ * s); }
  friend constexpr Quantity operator/(Quantity a, double s) { return Quantity(a.v_ / s); }
  friend constexpr double operator/(Quantity a, Quantity b) { return a.v_ / b.v_; }
  friend constexpr auto operator<=>(Quantity, Quantity) = default;

 private:
  double v_ = 0;
};

struct BytesTag {};
struct FlopsTag {};
struct BytesPerSecTag {};
struct FlopsPerSecTag {};
struct WattsTag {};

using Bytes = Quantity<BytesTag>;
using Flops = Quantity<FlopsTag>;
using BytesPerSec = Quantity<BytesPerSecTag>;
using FlopsPerSec = Quantity<FlopsPerSecTag>;
using Watts = Quantity<WattsTag>;

// Time to move `b` at rate `r`, rounded up to the next picosecond. r must be > 0.
Duration transfer_time(Bytes b, BytesPerSec r);
// Time to compute `f` at rate `r`, rounded up to the next picosecond. r must be > 0.
Duration compute_time(Flops f, FlopsPerSec r);

inline constexpr Bytes operator""_B(long double v) { return Bytes(static_cast<double>(v)); }
inline constexpr Bytes operator""_B(unsigned long long v) { return Bytes(static_cast<double>(v)); }

}  // namespace moesim
