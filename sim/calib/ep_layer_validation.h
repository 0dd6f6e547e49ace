// The ep_layer part of `moesim validate`: every measured EP MoE layer of a GPU
// against its simulated counterpart (ep_layer_check.h), summarised per
// (GPU count, routing) and over all records (family "ep_layer").
#pragma once

#include <map>
#include <string>
#include <vector>

#include "sim/calib/ep_layer_check.h"
#include "sim/calib/validation.h"

namespace moesim::calib {

struct EpLayerRow {
  EpLayerRecord record;
  EpLayerPrediction predicted;
  std::map<std::string, double> measured_phases;  // measured_phase_groups(record)
  double error_pct = 0;                           // signed: predicted / measured - 1, in percent
};

struct EpLayerGroup {
  int gpus = 0;
  std::string routing;
  int points = 0;
  double median_abs_pct = 0, p90_abs_pct = 0, median_signed_pct = 0;
  double measured_load = 0, predicted_load = 0;  // median max/mean routed rows per GPU
  // Per phase: median of predicted / measured (GPU 0's measured phases; "counts" has no prediction).
  std::map<std::string, double> phase_ratio;
};

struct EpLayerValidation {
  std::string gpu;
  std::string system;  // the system file the layers were simulated on
  std::vector<EpLayerRow> rows;
  std::vector<EpLayerGroup> groups;  // by GPU count, then routing
  FamilyStats overall;               // family "ep_layer", absolute errors, with its budget
};

// Records with check failures are skipped (they are not timings).
EpLayerValidation validate_ep_layers(const std::string& gpu, const std::vector<EpLayerRecord>& records,
                                     const EpLayerSetup& setup);

}  // namespace moesim::calib
