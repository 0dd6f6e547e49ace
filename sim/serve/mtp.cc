#include "sim/serve/mtp.h"

namespace moesim::serve {

int draw_accepted_tokens(std::span<const double> acceptance, Rng& rng) {
  int k = 1;
  for (double p : acceptance) {
    if (rng.uniform01() >= p) break;
    ++k;
  }
  return k;
}

double mean_accepted_tokens(std::span<const double> acceptance) {
  double mean = 1, prod = 1;
  for (double p : acceptance) {
    prod *= p;
    mean += prod;
  }
  return mean;
}

}  // namespace moesim::serve
