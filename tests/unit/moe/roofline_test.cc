// Roofline cost model against hand-worked times on the H200 description
// (989.4 / 1979 TFLOP/s BF16 / FP8, 4.8 TB/s, efficiencies 0.76 / 0.89); the launch overheads are read from the
// description (measured: 3.46 us eager, 0.69 us in a CUDA graph at the time of writing).
#include "sim/cost/roofline.h"

#include <gtest/gtest.h>

#include "sim/config/hardware_load.h"
#include "tests/unit/test_util.h"

namespace moesim {
namespace {

GpuSpec gpu(const std::string& id) { return load_gpu(test::source_path("hardware/gpus/" + id + ".json")); }

Op gemm(std::int64_t m, std::int64_t n, std::int64_t k, Precision p, double bpp) {
  Op op;
  op.kind = OpKind::kGemm;
  op.precision = p;
  op.flops = 2.0 * static_cast<double>(m * n * k);
  op.bytes = static_cast<double>(n * k) * bpp + static_cast<double>(m * k + m * n) * 2;
  return op;
}

TEST(Roofline, DecodeGemmIsMemoryBound) {
  const GpuSpec h = gpu("h200-sxm");
  // [1, 7168] x [7168, 7168] FP8: bytes 7168²·1 + 2·7168·2 = 51,408,896; 51.4 MB / (4.8e12·0.89) = 12.034 us.
  const Op op = gemm(1, 7168, 7168, Precision::kFp8, 1.0);
  const OpCost c = RooflineCostModel().cost(op, h, {.cuda_graphs = true});
  EXPECT_EQ(c.bound, Bound::kMemory);
  const double graph = to_seconds(h.roofline.launch_overhead_graph), eager = to_seconds(h.roofline.launch_overhead);
  const double expect_s = op.bytes / (4.8e12 * 0.89);
  EXPECT_NEAR(expect_s, 12.034e-6, 0.001e-6);
  EXPECT_NEAR(to_seconds(c.time), expect_s + graph, 1e-12);
  // Without CUDA graphs the eager launch applies.
  EXPECT_NEAR(to_seconds(RooflineCostModel().cost(op, h, {.cuda_graphs = false}).time), expect_s + eager, 1e-12);
}

TEST(Roofline, LargeGemmIsComputeBoundAtThePrecisionPeak) {
  const GpuSpec h = gpu("h200-sxm");
  // 8192³ FP8: 1.0995e12 FLOP / (1979e12·0.76) = 0.7310 ms; bytes 64 MiB + 256 MiB... far below.
  const Op fp8 = gemm(8192, 8192, 8192, Precision::kFp8, 1.0);
  const OpCost c = RooflineCostModel().cost(fp8, h, {});
  EXPECT_EQ(c.bound, Bound::kCompute);
  const double graph = to_seconds(h.roofline.launch_overhead_graph);
  EXPECT_NEAR(fp8.flops / (1979e12 * 0.76), 0.7310e-3, 0.0001e-3);
  EXPECT_NEAR(to_seconds(c.time), fp8.flops / (1979e12 * 0.76) + graph, 1e-12);
  // BF16 takes twice as long on the compute side.
  const Op bf16 = gemm(8192, 8192, 8192, Precision::kBf16, 2.0);
  EXPECT_NEAR(to_seconds(RooflineCostModel().cost(bf16, h, {}).time), bf16.flops / (989.4e12 * 0.76) + graph, 1e-12);
  // FP4 on Hopper runs at the FP8 peak (no FP4 tensor cores).
  Op fp4 = fp8;
  fp4.precision = Precision::kFp4;
  EXPECT_EQ(RooflineCostModel().cost(fp4, h, {}).time, c.time);
}

TEST(Roofline, Fp4OnBlackwellUsesTheFp4Peak) {
  const GpuSpec b = gpu("b200");
  ASSERT_TRUE(b.has(Precision::kFp4));
  const Op op = gemm(8192, 8192, 8192, Precision::kFp4, 0.5625);
  const auto t = roofline_terms(op, b);
  EXPECT_NEAR(t.compute_s, op.flops / (b.peak.at(Precision::kFp4).value() * b.roofline.compute_efficiency), 1e-15);
}

TEST(Roofline, TinyOpIsLatencyBoundAndZeroModelIsFree) {
  const GpuSpec h = gpu("h200-sxm");
  Op op;
  op.kind = OpKind::kElementwise;
  op.bytes = 1000;  // 0.23 ns of HBM time, far below the launch overhead
  const OpCost c = RooflineCostModel().cost(op, h, {});
  EXPECT_EQ(c.bound, Bound::kLatency);
  EXPECT_EQ(ZeroCostModel().cost(op, h, {}).time, Duration{0});
  Op comm;
  comm.kind = OpKind::kCommunication;
  EXPECT_THROW(RooflineCostModel().cost(comm, h, {}), std::invalid_argument);
}

}  // namespace
}  // namespace moesim
