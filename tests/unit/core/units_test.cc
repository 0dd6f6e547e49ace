#include "sim/core/units.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace moesim {
namespace {

TEST(DurationFromSecondsCeil, ExactValuesStayExact) {
  EXPECT_EQ(duration_from_seconds_ceil(0.0).count(), 0);
  // 1 us = 1e-6 s; 1e-6 * 1e12 = 1000000.0000000001 in double: noise, not a 1 ps round-up.
  EXPECT_EQ(duration_from_seconds_ceil(1e-6).count(), 1'000'000);
  EXPECT_EQ(duration_from_seconds_ceil(1.0).count(), 1'000'000'000'000);
  EXPECT_EQ(duration_from_seconds_ceil(1e-12).count(), 1);
}

TEST(DurationFromSecondsCeil, RoundsUpFractionalPicoseconds) {
  // 1.5 ps -> 2 ps; 0.2 ps -> 1 ps: a completion is never early.
  EXPECT_EQ(duration_from_seconds_ceil(1.5e-12).count(), 2);
  EXPECT_EQ(duration_from_seconds_ceil(0.2e-12).count(), 1);
  // 1000.4 ps -> 1001 ps.
  EXPECT_EQ(duration_from_seconds_ceil(1000.4e-12).count(), 1001);
}

TEST(DurationFromSecondsCeil, RejectsNegativeNanAndOverflow) {
  EXPECT_THROW((void)duration_from_seconds_ceil(-1e-12), std::domain_error);
  EXPECT_THROW((void)duration_from_seconds_ceil(std::nan("")), std::domain_error);
  // 2^63 ps = 9.22e18 ps = 9.22e6 s (about 106 days); 1e7 s is beyond.
  EXPECT_THROW((void)duration_from_seconds_ceil(1e7), std::overflow_error);
  EXPECT_THROW((void)duration_from_seconds_ceil(std::numeric_limits<double>::infinity()), std::overflow_error);
  // 9e6 s = 9e18 ps fits.
  EXPECT_EQ(duration_from_seconds_ceil(9e6).count(), 9'000'000'000'000'000'000);
}

TEST(TransferTime, BytesOverRateRoundedUp) {
  // 64e6 B / 450e9 B/s = 1.42222...e-4 s = 142,222,222.2 ps -> 142,222,223 ps.
  EXPECT_EQ(transfer_time(Bytes(64e6), BytesPerSec(450e9)).count(), 142'222'223);
  // 50 GB/s moves 50 bytes per ns: 1000 B -> 20 ns = 20,000 ps exactly.
  EXPECT_EQ(transfer_time(Bytes(1000), BytesPerSec(50e9)).count(), 20'000);
  EXPECT_EQ(transfer_time(Bytes(0), BytesPerSec(1)).count(), 0);
}

// Disabled until sim/core/units.cc is fixed (reported to the lead): the
// "floating-point noise" snap in duration_from_seconds_ceil uses a relative
// tolerance of 1e-9, so any value within raw * 1e-9 ps of a whole picosecond is
// rounded DOWN: 1/3 s = 333,333,333,333.33 ps snaps to ...333 (0.33 ps early),
// and a 1 s transfer can complete up to 1 ns early. A tolerance of a few ulps
// (e.g. 1e-14 * raw) keeps 1e-6 s -> 1,000,000 ps exact and fixes these.
TEST(TransferTime, RoundsUpSubPicosecondFractionOfLongTransfers) {
  // 1 B at 3 B/s = 0.333.. s -> 333,333,333,334 ps.
  EXPECT_EQ(transfer_time(Bytes(1), BytesPerSec(3)).count(), 333'333'333'334);
  // 0.1 s + 0.4 ps = 100,000,000,000.4 ps -> 100,000,000,001 ps.
  EXPECT_EQ(duration_from_seconds_ceil(0.1 + 0.4e-12).count(), 100'000'000'001);
}

TEST(TransferTime, RejectsNonPositiveRate) {
  EXPECT_THROW((void)transfer_time(Bytes(1), BytesPerSec(0)), std::domain_error);
  EXPECT_THROW((void)transfer_time(Bytes(1), BytesPerSec(-5)), std::domain_error);
}

TEST(ComputeTime, FlopsOverRateRoundedUp) {
  // 1e15 FLOP at 1e15 FLOP/s = 1 s.
  EXPECT_EQ(compute_time(Flops(1e15), FlopsPerSec(1e15)).count(), 1'000'000'000'000);
  // 2 * 4096 * 7168 * 2048 FLOP = 1.2025e11 FLOP at 989.4e12 FLOP/s = 121.54 us:
  // 120,259,084,288 / 989.4e12 s = 121,547,487.7.. ps -> 121,547,488.
  EXPECT_EQ(compute_time(Flops(2.0 * 4096 * 7168 * 2048), FlopsPerSec(989.4e12)).count(), 121'547'488);
  EXPECT_THROW((void)compute_time(Flops(1), FlopsPerSec(0)), std::domain_error);
}

}  // namespace
}  // namespace moesim
