#include "sim/calib/interp.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace moesim::calib {

namespace {

// Index i with xs[i] <= x <= xs[i+1], and t; nullopt outside. Exact hits return t = 0 at that index.
struct Bracket {
  std::size_t i;
  double t;
};

std::optional<Bracket> bracket(std::span<const double> xs, std::span<const double> ys, double x) {
  if (xs.size() != ys.size() || xs.empty()) throw std::invalid_argument("interpolation: xs and ys differ in length or are empty");
  if (!(x >= xs.front() && x <= xs.back())) return std::nullopt;
  auto it = std::lower_bound(xs.begin(), xs.end(), x);
  std::size_t j = static_cast<std::size_t>(it - xs.begin());
  if (xs[j] == x) return Bracket{j, 0.0};
  std::size_t i = j - 1;  // j > 0 because x > xs.front()
  double t = (std::log(x) - std::log(xs[i])) / (std::log(xs[j]) - std::log(xs[i]));
  return Bracket{i, t};
}

}  // namespace

std::optional<double> interp_loglog(std::span<const double> xs, std::span<const double> ys, double x) {
  auto b = bracket(xs, ys, x);
  if (!b) return std::nullopt;
  if (b->t == 0.0) return ys[b->i];
  return std::exp((1.0 - b->t) * std::log(ys[b->i]) + b->t * std::log(ys[b->i + 1]));
}

std::optional<double> interp_logx(std::span<const double> xs, std::span<const double> ys, double x) {
  auto b = bracket(xs, ys, x);
  if (!b) return std::nullopt;
  if (b->t == 0.0) return ys[b->i];
  return (1.0 - b->t) * ys[b->i] + b->t * ys[b->i + 1];
}

}  // namespace moesim::calib
