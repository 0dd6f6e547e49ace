// From raw records to the points the fits use, in one stable order.
//   - "status":"check_failed" lines, records whose check_rel_err exceeds the
//     kernel's tolerance (or is null), unknown kernels and dtypes the model does
//     not cover are excluded, each with its reason;
//   - the same kernel, dtype and shape measured more than once (two
//     implementations, or two runs) keeps the fastest record: the simulator
//     assumes the best measured implementation;
//   - the survivors are sorted by curve (kernel, dtype, variant, key) and x.
#pragma once

#include <compare>
#include <optional>
#include <string>
#include <vector>

#include "sim/calib/calibration.h"
#include "sim/calib/record.h"

namespace moesim::calib {

// Which curve a record belongs to. Compute kernels: query.h's kernel, dtype and
// key, variant = grouped routing. nccl_alltoall: key {gpus}, variant = pattern.
struct CurveId {
  std::string kernel;
  std::string dtype;
  std::string variant;
  std::vector<double> key;
  auto operator<=>(const CurveId&) const = default;
};
std::optional<CurveId> curve_id(const Record& r);
double curve_x(const Record& r);  // the axis value (query.h x; bytes_per_peer for nccl_alltoall)

struct Prepared {
  std::vector<Record> usable;
  std::vector<Exclusion> excluded;
};
Prepared prepare_records(std::vector<Record> records);

}  // namespace moesim::calib
