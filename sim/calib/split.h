// The fixed rule that splits a GPU's usable records (prepare.h order) into a
// fitting set and a held-out set for `moesim validate`.
//
// kPoints (the gate): within each curve (kernel, dtype, variant, key; sorted by
//   x), the points at positions 2, 6, 10, ... (i % 4 == 2) are held out, except
//   the curve's last point; curves of fewer than 3 points are all fitted. Every
//   held-out point lies strictly inside its curve's fitted range, so this tests
//   interpolation between measured sizes of measured shapes.
// kShapes (reported, not gated): within each (kernel, dtype), the distinct keys
//   sorted ascending; keys at positions 1, 4, 7, ... (i % 3 == 1) are held out
//   with all their points, so their prices must come from neighbouring keys:
//   the test of generalisation to shapes that were not measured. nccl_alltoall
//   has a single key per GPU count and is not split this way.
// Records outside any curve (copy, launch, p2p) are always in the fitting set.
#pragma once

#include <vector>

#include "sim/calib/record.h"

namespace moesim::calib {

enum class SplitRule { kPoints, kShapes };
const char* split_rule_name(SplitRule r);

struct Split {
  std::vector<Record> fit;
  std::vector<Record> held;
};

Split split_records(const std::vector<Record>& usable, SplitRule rule);

}  // namespace moesim::calib
