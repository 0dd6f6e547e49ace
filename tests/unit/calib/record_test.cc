// The strict reader of harness records (sim/calib/record.h).
#include "sim/calib/record.h"

#include <gtest/gtest.h>

#include <cmath>

#include "sim/config/error.h"

namespace moesim::calib {
namespace {

const char* kGood =
    R"({"gpu":"NVIDIA H200","sm_clock_mhz":1980,"driver":"580.1","cuda":"13.0","cublas":"13.1.0","nccl":"2.27.3",)"
    R"("date":"2026-11-22T00:00:00Z","kernel":"gemm","dtype":"bf16","shape":{"m":64,"n":4096,"k":7168},)"
    R"("median_us":12.5,"p10_us":12.0,"p90_us":13.0,"reps":50,"check_rel_err":0.0017,"flops":3.7e9,"bytes":5.9e7,)"
    R"("impl":"cublasLt","extra_member":[1,2]})";

std::string with_shape(const std::string& shape) {
  std::string s = kGood;
  const auto a = s.find("\"shape\":");
  const auto b = s.find('}', a);
  return s.substr(0, a) + "\"shape\":" + shape + s.substr(b + 1);
}

TEST(RecordReader, ReadsAGoodLineAndToleratesExtraMembers) {
  const auto rs = parse_records(std::string(kGood) + "\n\n", "d.jsonl");
  ASSERT_EQ(rs.size(), 1u);
  const Record& r = rs[0];
  EXPECT_EQ(r.where(), "d.jsonl:1");
  EXPECT_EQ(r.kernel, "gemm");
  EXPECT_EQ(r.dtype, "bf16");
  EXPECT_EQ(r.impl, "cublasLt");
  EXPECT_EQ(r.shape.m, 64);
  EXPECT_EQ(r.shape.n, 4096);
  EXPECT_EQ(r.shape.k, 7168);
  EXPECT_DOUBLE_EQ(r.median_us, 12.5);
  EXPECT_EQ(r.reps, 50);
  EXPECT_EQ(r.environment, "driver 580.1, CUDA 13.0, cuBLAS 13.1.0, NCCL 2.27.3");
  EXPECT_FALSE(r.check_failed);
}

TEST(RecordReader, BadShapeMemberNamesFileLineAndPointer) {
  const std::string text = std::string(kGood) + "\n" + with_shape(R"({"m":"abc","n":4096,"k":7168})") + "\n";
  try {
    parse_records(text, "validate/data/x/single.jsonl");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "validate/data/x/single.jsonl:2: /shape/m: expected an integer, found a string (\"abc\")");
  }
}

TEST(RecordReader, MalformedJsonAndMissingMembers) {
  try {
    parse_records("{\"gpu\":", "f.jsonl");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "f.jsonl:1: malformed JSON line (byte 8)");
  }
  std::string no_median = kGood;
  no_median.replace(no_median.find("\"median_us\""), 11, "\"medianus\"");
  try {
    parse_records(no_median, "f.jsonl");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "f.jsonl:1: /median_us: missing member \"median_us\"");
  }
  try {
    parse_records(with_shape(R"({"m":64,"n":4096,"k":7168.5})"), "f.jsonl");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "f.jsonl:1: /shape/k: expected an integer, found 7168.5");
  }
}

TEST(RecordReader, CheckFailuresAndNullErrorsAreKeptApart) {
  const std::string failed =
      R"({"gpu":"NVIDIA H200","status":"check_failed","kernel":"gemm","dtype":"fp8","shape":{"m":1,"n":2,"k":3},)"
      R"("check_rel_err":0.5,"check_tol":0.01})";
  std::string null_err = kGood;
  null_err.replace(null_err.find("0.0017"), 6, "null");
  const auto rs = parse_records(failed + "\n" + null_err, "f.jsonl");
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_TRUE(rs[0].check_failed);
  EXPECT_FALSE(rs[1].check_failed);
  EXPECT_TRUE(std::isinf(rs[1].check_rel_err));
  EXPECT_FALSE(rs[1].check_rel_err <= check_tolerance("gemm"));
}

TEST(RecordReader, GroupedGemmTokensMustSumToTotal) {
  std::string g = with_shape(
      R"({"n":4096,"k":7168,"experts":2,"tokens":[3,4],"routing":"uniform","total_tokens":8})");
  g.replace(g.find("\"gemm\""), 6, "\"grouped_gemm\"");
  try {
    parse_records(g, "f.jsonl");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "f.jsonl:1: /shape/total_tokens: expected the sum of \"tokens\" (7), found 8");
  }
}

}  // namespace
}  // namespace moesim::calib
