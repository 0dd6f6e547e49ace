// The Op a measured record stands for: the same OpKind, OpShape and precision
// the op expansion produces for that kernel, with flops/bytes as the harness
// counted them (the op expansion's "minimum arithmetic / minimum HBM traffic").
// `moesim validate` prices these Ops through CalibratedCostModel::cost(), the
// code path the simulator uses.
#pragma once

#include <optional>

#include "sim/calib/record.h"
#include "sim/model/op.h"

namespace moesim::calib {

// nullopt for records that are not compute ops (copy, launch, p2p, nccl_alltoall)
// or whose dtype the calibration does not model.
std::optional<Op> op_from_record(const Record& r);

}  // namespace moesim::calib
