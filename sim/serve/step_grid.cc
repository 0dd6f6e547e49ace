#include "sim/serve/step_grid.h"

#include <stdexcept>

namespace moesim::serve {

Bracket bracket(std::span<const double> grid, double x) {
  if (grid.size() < 2) throw std::logic_error("bracket: a grid needs at least two points");
  std::size_t i = 0;
  while (i + 2 < grid.size() && x > grid[i + 1]) ++i;
  const double a = grid[i], b = grid[i + 1];
  return {static_cast<int>(i), static_cast<int>(i + 1), (x - a) / (b - a)};
}

std::vector<double> count_grid(double max) {
  // 1, 2, 3, 4, 6, 8, 12, 16, 24, ...: successive ratios 2, 1.5, 1.33, 1.5, 1.33, ...
  std::vector<double> g = {1, 2};
  double base = 2;
  while (g.back() < max) {
    g.push_back(base * 1.5);
    g.push_back(base * 2);
    base *= 2;
  }
  return g;
}

std::vector<double> context_grid(double max) {
  std::vector<double> g = {0, 512};
  while (g.back() < max) g.push_back(g.back() * 2);
  return g;
}

}  // namespace moesim::serve
