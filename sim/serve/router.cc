#include "sim/serve/router.h"

namespace moesim::serve {

int least_loaded(std::span<const long long> loads) {
  int best = -1;
  for (std::size_t i = 0; i < loads.size(); ++i)
    if (best < 0 || loads[i] < loads[static_cast<std::size_t>(best)]) best = static_cast<int>(i);
  return best;
}

int pick_instance(RouterPolicy policy, std::span<const long long> loads, int& cursor) {
  if (loads.empty()) return -1;
  if (policy == RouterPolicy::kLeastLoaded) return least_loaded(loads);
  const int n = static_cast<int>(loads.size());
  const int pick = ((cursor % n) + n) % n;
  cursor = (pick + 1) % n;
  return pick;
}

}  // namespace moesim::serve
