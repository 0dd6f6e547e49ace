#include "sim/core/quantity.h"

#include <gtest/gtest.h>

namespace moesim {
namespace {

TEST(ParseQuantity, DecimalPrefixesArePowersOfThousand) {
  auto q = parse_quantity("4.8 TB/s");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->dim, Dim::kBytesPerSec);
  EXPECT_DOUBLE_EQ(q->si, 4.8e12);
  EXPECT_DOUBLE_EQ(parse_quantity("141 GB")->si, 141e9);
  EXPECT_DOUBLE_EQ(parse_quantity("989.4 TFLOP/s")->si, 989.4e12);
}

TEST(ParseQuantity, BinaryPrefixesArePowersOf1024) {
  EXPECT_DOUBLE_EQ(parse_quantity("60 MiB")->si, 60.0 * 1048576);
  EXPECT_DOUBLE_EQ(parse_quantity("139.8 GiB")->si, 139.8 * 1073741824.0);
}

TEST(ParseQuantity, BitsPerSecondAreEighthsOfBytes) {
  // A 400 Gb/s NIC moves 50 GB/s (specs.md B.2: CX7 400G = 50 GB/s/dir).
  auto q = parse_quantity("400 Gb/s");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->dim, Dim::kBytesPerSec);
  EXPECT_DOUBLE_EQ(q->si, 50e9);
}

TEST(ParseQuantity, TimesPowerAndPrice) {
  EXPECT_DOUBLE_EQ(parse_quantity("2 us")->si, 2e-6);
  EXPECT_EQ(parse_quantity("2 us")->dim, Dim::kSeconds);
  EXPECT_DOUBLE_EQ(parse_quantity("10.2 kW")->si, 10200);
  EXPECT_EQ(parse_quantity("2.10 USD/h")->dim, Dim::kUsdPerHour);
  EXPECT_DOUBLE_EQ(parse_quantity("700W")->si, 700);  // the space is optional
}

TEST(ParseQuantity, RejectsUnknownUnitsAndMissingNumbers) {
  EXPECT_FALSE(parse_quantity("4.8 TB/sec"));
  EXPECT_FALSE(parse_quantity("GB/s"));
  EXPECT_FALSE(parse_quantity("141"));
  EXPECT_FALSE(parse_quantity("141  GB"));  // one space at most
  EXPECT_FALSE(parse_quantity(""));
}

TEST(FormatSi, PicksThePrefix) {
  EXPECT_EQ(format_si(4.8e12, "B/s"), "4.8 TB/s");
  EXPECT_EQ(format_si(450e9, "B/s"), "450 GB/s");
  EXPECT_EQ(format_si(2e-6, "s"), "2 us");
}

}  // namespace
}  // namespace moesim
