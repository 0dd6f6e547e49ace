// Speculative decoding with MTP draft tokens: how many tokens one decode step
// of one sequence delivers.
#pragma once

#include <span>

#include "sim/core/rng.h"

namespace moesim::serve {

// Tokens delivered by one step with draft depth d = acceptance.size(): 1 (the
// verified token) + the number of leading drafts accepted, draft i accepted
// with conditional probability acceptance[i] given drafts 0..i-1 were.
int draw_accepted_tokens(std::span<const double> acceptance, Rng& rng);

// Mean tokens per step: 1 + sum_i prod_{j<=i} acceptance[j].
double mean_accepted_tokens(std::span<const double> acceptance);

}  // namespace moesim::serve
