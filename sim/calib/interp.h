// Piecewise-linear interpolation in log space: the one interpolation rule of the
// calibrated cost model. Between two measured points x0 < x < x1 the value is
//   y = y0^(1-t) * y1^t,   t = (ln x - ln x0) / (ln x1 - ln x0),
// i.e. a straight line in (ln x, ln y). Measured points are reproduced exactly;
// outside [x_first, x_last] there is no value (the caller falls back).
#pragma once

#include <optional>
#include <span>

namespace moesim::calib {

// xs strictly increasing and > 0; ys > 0; same length >= 1.
std::optional<double> interp_loglog(std::span<const double> xs, std::span<const double> ys, double x);

// Same placement, linear in ln x but linear in y (for values that may be any sign, e.g. log-ratios).
std::optional<double> interp_logx(std::span<const double> xs, std::span<const double> ys, double x);

}  // namespace moesim::calib
