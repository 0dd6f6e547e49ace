// Request routing across instances (and across the attention ranks of an
// instance), as pure choices over current loads.
#pragma once

#include <span>

#include "sim/config/scenario.h"

namespace moesim::serve {

// Round-robin: the instance after the last one picked (cursor advances).
// Least-loaded: the smallest load, ties to the lowest index (cursor unused).
int pick_instance(RouterPolicy policy, std::span<const long long> loads, int& cursor);

// Index of the smallest load, ties to the lowest index; -1 for an empty span.
int least_loaded(std::span<const long long> loads);

}  // namespace moesim::serve
