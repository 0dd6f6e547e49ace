// Split rule, fits, the calibrated cost model's fallback, the extrapolation
// rule and the budget check, on SYNTHETIC records made up in this file (never
// measurements; the real data is exercised by validate_data_test.cc).
#include <gtest/gtest.h>

#include <cmath>

#include "sim/calib/calibration_io.h"
#include "sim/calib/fit.h"
#include "sim/calib/prepare.h"
#include "sim/calib/predict.h"
#include "sim/calib/split.h"
#include "sim/calib/validation.h"
#include "sim/config/hardware_load.h"
#include "sim/cost/calibrated.h"
#include "sim/cost/roofline.h"
#include "tests/unit/test_util.h"

namespace moesim::calib {
namespace {

GpuSpec h200() { return load_gpu(test::source_path("hardware/gpus/h200-sxm.json")); }
GpuSpec gb200() { return load_gpu(test::source_path("hardware/gpus/gb200.json")); }

// A synthetic router record: tokens T, 256 experts, top-8, `us` microseconds.
Record synthetic_router(std::int64_t tokens, double us, int line) {
  Record r;
  r.file = "SYNTHETIC";
  r.line = line;
  r.gpu = "synthetic";
  r.kernel = "router";
  r.dtype = "fp32";
  r.shape.tokens = tokens;
  r.shape.experts = 256;
  r.shape.topk = 8;
  r.shape.groups = 8;
  r.shape.topk_groups = 4;
  r.shape.scoring = "sigmoid";
  r.shape_text = "{\"tokens\":" + std::to_string(tokens) + "}";
  r.median_us = us;
  r.reps = 10;
  return r;
}

Record synthetic_gemm(std::int64_t m, std::int64_t n, std::int64_t k, double us, int line) {
  Record r = synthetic_router(1, us, line);
  r.kernel = "gemm";
  r.dtype = "bf16";
  r.shape = {};
  r.shape.m = m;
  r.shape.n = n;
  r.shape.k = k;
  r.shape_text = "{\"m\":" + std::to_string(m) + ",\"n\":" + std::to_string(n) + ",\"k\":" + std::to_string(k) + "}";
  return r;
}

Op router_op(std::int64_t tokens) {
  Op op;
  op.kind = OpKind::kRouter;
  op.shape.tokens = tokens;
  op.shape.experts = 256;
  op.shape.topk = 8;
  return op;
}

TEST(Split, EveryFourthPointInsideEachCurve) {
  std::vector<Record> rs;
  for (int i = 0; i < 10; ++i) rs.push_back(synthetic_router(std::int64_t{1} << i, 5.0 + i, i + 1));
  for (int i = 0; i < 7; ++i) rs.push_back(synthetic_gemm(std::int64_t{1} << i, 512, 512, 5.0 + i, 20 + i));
  const Prepared p = prepare_records(rs);
  ASSERT_EQ(p.usable.size(), 17u);
  const Split s = split_records(p.usable, SplitRule::kPoints);
  // gemm curve (7 points, m = 1..64): position 2 (m = 4); position 6 is the last, kept.
  // router curve (10 points, T = 1..512): positions 2 and 6 (T = 4, 64); position 10 does not exist.
  ASSERT_EQ(s.held.size(), 3u);
  EXPECT_EQ(s.fit.size(), 14u);
  EXPECT_EQ(s.held[0].kernel, "gemm");
  EXPECT_EQ(s.held[0].shape.m, 4);
  EXPECT_EQ(s.held[1].shape.tokens, 4);
  EXPECT_EQ(s.held[2].shape.tokens, 64);
  // Deterministic: the same input in another order gives the same split.
  std::vector<Record> rev(rs.rbegin(), rs.rend());
  const Split s2 = split_records(prepare_records(rev).usable, SplitRule::kPoints);
  ASSERT_EQ(s2.held.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(s2.held[i].where(), s.held[i].where());
}

TEST(Split, WholeShapesHeldOutForGeneralisation) {
  std::vector<Record> rs;
  int line = 1;
  for (std::int64_t n : {256, 512, 1024, 2048})
    for (std::int64_t m : {1, 16, 256}) rs.push_back(synthetic_gemm(m, n, 512, 10, line++));
  const Split s = split_records(prepare_records(rs).usable, SplitRule::kShapes);
  // Keys sorted (256,512) (512,512) (1024,512) (2048,512): position 1 -> n = 512 held out with its 3 points.
  ASSERT_EQ(s.held.size(), 3u);
  for (const auto& r : s.held) EXPECT_EQ(r.shape.n, 512);
}

TEST(Prepare, DuplicatesKeepTheFastestAndFailedChecksAreExcluded) {
  std::vector<Record> rs = {synthetic_router(8, 5.0, 1), synthetic_router(8, 4.0, 2), synthetic_router(16, 6.0, 3)};
  rs[2].check_rel_err = 1e-3;  // above the router tolerance 1e-5
  const Prepared p = prepare_records(rs);
  ASSERT_EQ(p.usable.size(), 1u);
  EXPECT_EQ(p.usable[0].line, 2);
  EXPECT_EQ(p.excluded.size(), 2u);
}

Calibration router_calibration(double floor_s) {
  // Ratio 10 at every measured size T = 64 .. 4096.
  std::vector<Record> rs;
  const Reference ref = reference_of(h200());
  int line = 1;
  for (std::int64_t t = 64; t <= 4096; t *= 4) {
    const double bytes = static_cast<double>(t) * 256 * 4 + static_cast<double>(t) * 8 * 8;
    rs.push_back(synthetic_router(t, 10 * bytes / ref.hbm_bytes_per_s * 1e6, line++));
  }
  Calibration cal = fit_calibration(prepare_records(rs).usable, h200());
  cal.kernel_floor_s = floor_s;
  return cal;
}

TEST(CalibratedModel, PricesInsideTheRangeAndFallsBackOutside) {
  const CalibratedCostModel model(router_calibration(0));
  const GpuSpec gpu = h200();
  // T = 1024: bytes = 1024*256*4 + 1024*8*8 = 1,114,112; at 4.8 TB/s = 232.107 ns; ratio 10 -> 2.32107 us.
  const OpCost in = model.cost(router_op(1024), gpu, {});
  EXPECT_EQ(in.source, CostSource::kCalibrated);
  EXPECT_NEAR(to_us(in.time), 2.3210667, 1e-6);
  EXPECT_EQ(in.bound, Bound::kLatency);
  // T = 8192 is above the measured 4096: the roofline prices it, and says so.
  const OpCost out = model.cost(router_op(8192), gpu, {});
  EXPECT_EQ(out.source, CostSource::kRooflineOutsideCalibration);
  EXPECT_EQ(out.time, RooflineCostModel().cost(router_op(8192), gpu, {}).time);
  // Never measured kinds fall back too.
  Op ew;
  ew.kind = OpKind::kElementwise;
  ew.bytes = 1e6;
  EXPECT_EQ(model.cost(ew, gpu, {}).source, CostSource::kRooflineOutsideCalibration);
}

TEST(CalibratedModel, ExtrapolatesAMemoryBoundOpByTheHbmRatio) {
  const GpuSpec dst = gb200();
  ASSERT_EQ(dst.extrapolated_from.value_or(""), "h200-sxm");
  {
    const CalibratedCostModel model(router_calibration(0));
    // H200 2.3210667 us x 4.8 / 8 = 1.39264 us.
    const OpCost c = model.cost(router_op(1024), dst, {});
    EXPECT_EQ(c.source, CostSource::kCalibratedExtrapolated);
    EXPECT_NEAR(to_us(c.time), 2.3210667 * 4.8 / 8.0, 1e-6);
  }
  {
    // A 1 us floor does not scale: 1 + 1.3210667 x 0.6 = 1.79264 us.
    const CalibratedCostModel model(router_calibration(1e-6));
    EXPECT_NEAR(to_us(model.cost(router_op(1024), dst, {}).time), 1.0 + 1.3210667 * 0.6, 1e-6);
  }
  // Compute-bound work scales by the peak ratio: bf16 989.4 -> 2500 TFLOP/s.
  EXPECT_NEAR(extrapolate_seconds(10e-6, 0, 1.0, 989.4 / 2500.0), 10e-6 * 989.4 / 2500.0, 1e-15);
}

TEST(CalibratedModel, UnmeasuredKeyBorrowsFromNeighbours) {
  std::vector<Record> rs;
  const Reference ref = reference_of(h200());
  int line = 1;
  // Two measured (n, k) with ratios 2 and 8 at every m; a query halfway in log distance gets sqrt(2*8) = 4.
  for (auto [n, ratio] : {std::pair<std::int64_t, double>{1024, 2.0}, {4096, 8.0}})
    for (std::int64_t m : {16, 64, 256}) {
      const double md = static_cast<double>(m), nd = static_cast<double>(n);
      const double t = std::max(2 * md * nd * 1024 / ref.peak_for("bf16"),
                                ((md + nd) * 1024 * 2 + 2 * md * nd) / ref.hbm_bytes_per_s);
      rs.push_back(synthetic_gemm(m, n, 1024, ratio * t * 1e6, line++));
    }
  const Calibration cal = fit_calibration(prepare_records(rs).usable, h200());
  std::vector<const Curve*> curves;
  for (const auto& c : cal.curves) curves.push_back(&c);
  const auto r = predict_ratio(curves, Query{"gemm", "bf16", {2048, 1024}, 64, 1});
  ASSERT_TRUE(r.has_value());
  EXPECT_FALSE(r->exact_key);
  EXPECT_NEAR(r->ratio, 4.0, 1e-9);
}

TEST(Budget, TwentyPercentErrorFailsAndFivePercentPasses) {
  std::vector<PointError> bad(10), good(10);
  for (auto& p : bad) {
    p.error_pct = 20;
    p.source = "calibrated";
  }
  for (auto& p : good) {
    p.error_pct = 4;
    p.source = "calibrated";
  }
  EXPECT_FALSE(summarize_family("gemm", bad).pass);
  EXPECT_TRUE(summarize_family("gemm", good).pass);
  EXPECT_FALSE(summarize_family("all_to_all", bad).pass);
  EXPECT_DOUBLE_EQ(quantile({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9), 9.1);
  EXPECT_DOUBLE_EQ(quantile({3, 1, 2}, 0.5), 2.0);
}

TEST(Budget, AFamilyOffByTwentyPercentFailsValidation) {
  // A synthetic curve with ratio 10 everywhere except T = 256 (held out: position 2), measured 20 % slower.
  std::vector<Record> rs;
  const Reference ref = reference_of(h200());
  int line = 1;
  for (std::int64_t t = 64; t <= 8192; t *= 2) {
    const double bytes = static_cast<double>(t) * 256 * 4 + static_cast<double>(t) * 8 * 8;
    rs.push_back(synthetic_router(t, (t == 256 ? 12 : 10) * bytes / ref.hbm_bytes_per_s * 1e6, line++));
  }
  const GpuValidation v = validate_gpu(prepare_records(rs).usable, h200(), SplitRule::kPoints);
  ASSERT_EQ(v.families.size(), 1u);
  EXPECT_EQ(v.families[0].family, "router");
  EXPECT_EQ(v.families[0].points, 2);  // T = 256 and T = 4096
  EXPECT_FALSE(v.pass());
}

TEST(CalibrationFile, RoundTripsByteForByte) {
  Calibration cal = router_calibration(4.2e-6);
  cal.generated_by = "test";
  cal.alltoall.push_back(fit_alltoall(2, "uniform", {{1024, 20e-6}, {1 << 20, 22e-6}, {1 << 28, 900e-6}}));
  const std::string a = calibration_to_json(cal);
  EXPECT_EQ(calibration_to_json(parse_calibration(a, "x.json")), a);
}

TEST(AllToAllFit, AlphaBetaAndLinearInterpolation) {
  // t = 10 us + bytes / 100 GB/s exactly: alpha-beta recovers it.
  std::vector<AllToAllPoint> pts;
  for (double b : {1e3, 1e5, 1e7, 1e9}) pts.push_back({b, 10e-6 + b / 100e9});
  const AllToAllFit f = fit_alltoall(4, "uniform", pts);
  EXPECT_NEAR(f.alpha_s, 10e-6, 1e-12);
  EXPECT_NEAR(f.beta_Bps, 100e9, 1e3);
  // Between 1e7 and 1e9 bytes: linear in bytes -> exact on this line.
  EXPECT_NEAR(alltoall_seconds(f, 5e8), 10e-6 + 5e8 / 100e9, 1e-12);
  // Beyond the range: the alpha-beta line; NVLink twice as fast halves the bandwidth part only.
  EXPECT_NEAR(alltoall_seconds_scaled(f, 2e9, 2.0), 10e-6 + 2e9 / 200e9, 1e-9);
  // F7's logical bandwidth: 2048 tokens x 8 x 14336 B / 311.8 us = 753.28 GB/s.
  EXPECT_NEAR(moe_logical_bandwidth(2048, 8, 8, 14336, 311.8e-6) / 1e9, 753.28, 0.05);  // the source rounds the time to 0.1 us
  EXPECT_NEAR(moe_alltoall_offgpu_bytes(2048, 8, 8, 14336), 2048.0 * 8 * 14336 * 7 / 8, 1e-3);
}

}  // namespace
}  // namespace moesim::calib
