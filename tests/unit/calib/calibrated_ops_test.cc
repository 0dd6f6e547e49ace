// The simulator's own ops are priced from the measured kernels wherever a measured family covers them: an EP
// decode layer of DeepSeek-R1 on H200, priced by the committed calibration (hardware/calibration/h200-sxm.json),
// against the committed measurements of the same kernels (validate/data/h200-sxm/custom.jsonl).
#include <gtest/gtest.h>

#include "sim/calib/prepare.h"
#include "sim/config/hardware_load.h"
#include "sim/config/model_load.h"
#include "sim/cost/calibrated.h"
#include "sim/model/ops.h"
#include "sim/step/step.h"
#include "tests/unit/test_util.h"

namespace moesim {
namespace {

using test::source_path;

const PlannedOp& find(const LayerProgram& p, const std::string& name) {
  for (const auto& o : p.ops)
    if (o.op.name == name) return o;
  throw std::runtime_error("no op " + name);
}

// The committed median of one permute/unpermute point (H = 7168, top-8 of 256 experts).
double measured_us(const std::string& kernel, const std::string& dtype, std::int64_t tokens) {
  const auto p = calib::prepare_records(calib::read_records({source_path("validate/data/h200-sxm")}));
  for (const auto& r : p.usable)
    if (r.kernel == kernel && r.dtype == dtype && r.shape.tokens == tokens && r.shape.topk == 8 &&
        r.shape.experts == 256 && r.shape.hidden == 7168)
      return r.median_us;
  throw std::runtime_error("no committed " + kernel + " " + dtype + " point at T=" + std::to_string(tokens));
}

TEST(CalibratedOps, EpLayerPermuteAndUnpermuteArePricedFromTheirMeasuredKernels) {
  const GpuSpec gpu = load_gpu(source_path("hardware/gpus/h200-sxm.json"));
  const ModelSpec m = load_model(source_path("models/deepseek-r1.json"));
  // EP8 decode, 16,384 tokens owned per GPU (a measured point of both kernels), FP8 dispatch payload.
  const ForwardPass fp = expand_forward(m, m.precision("fp8"), gpu, parse_plan("ep=8", "test", ""),
                                        BatchShape::decode(8 * 16384, 100), {});
  const LayerProgram& moe = fp.programs[static_cast<std::size_t>(fp.layer_type[5])][0];
  const auto cost = make_cost_model(gpu, CostModelKind::kCalibrated);
  const CostOptions opts;
  struct Case {
    const char* op;
    const char* kernel;
    const char* dtype;
  };
  for (const Case c : {Case{"permute", "permute", "fp8"}, Case{"unpermute_residual", "unpermute", "bf16"}}) {
    const OpCost oc = cost->cost(find(moe, c.op).op, gpu, opts);
    EXPECT_EQ(oc.source, CostSource::kCalibrated) << c.op << " fell back to " << cost_source_name(oc.source);
    // The calibration interpolates through every committed point, so a measured shape costs its measurement.
    const double want = measured_us(c.kernel, c.dtype, 16384);
    EXPECT_NEAR(to_seconds(oc.time) * 1e6, want, 0.02 * want) << c.op;
  }
  // The router's top-k is priced from the router kernel too.
  EXPECT_EQ(cost->cost(find(moe, "topk_grouped").op, gpu, opts).source, CostSource::kCalibrated);
}

TEST(CalibratedOps, TheStepReportSaysWhichOpsTheRooflinePriced) {
  StepSetup s;
  s.model = load_model(source_path("models/deepseek-r1.json"));
  s.cluster = ClusterSpec{load_system(source_path("hardware/systems/hgx-h200.json")), 1};
  s.plan = parse_plan("ep=8", "test", "");
  s.batch = BatchShape::decode(512, 1000);
  s.mode = StepMode::kFast;
  s.cost = make_cost_model(s.cluster.system.gpu, CostModelKind::kCalibrated);
  const StepResult r = simulate_step(s);
  std::map<std::string, CostSource> by_name;
  for (const auto& lt : r.layer_types)
    for (const auto& o : lt.ops) by_name[o.name] = o.source;
  // Measured families: GEMMs, grouped GEMMs, MLA decode, router, permute/unpermute.
  for (const char* op : {"q_a_proj", "mla_decode", "router_gemm", "topk_grouped", "permute", "experts.gate_up",
                         "experts.down", "unpermute_residual"})
    EXPECT_EQ(by_name.at(op), CostSource::kCalibrated) << op;
  // No measured family: normalisations and activations fall back to the roofline, and the report says so.
  for (const char* op : {"attn_norm", "ffn_norm", "experts.act"})
    EXPECT_EQ(by_name.at(op), CostSource::kRooflineOutsideCalibration) << op;
}

}  // namespace
}  // namespace moesim
