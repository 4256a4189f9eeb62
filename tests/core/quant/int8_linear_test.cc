#include "quantd/core/quant/int8_linear.h"

#include <cfloat>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/quant/weight_quantizer.h"

namespace quantd::core::quant {
namespace {

using ::testing::ElementsAre;

std::vector<int> Codes(const std::vector<float>& w, const Int8Params& p, Int8Type t) {
  std::vector<uint8_t> out(w.size());
  QuantizeInt8(w.data(), static_cast<int64_t>(w.size()), 1, p, t, out.data(), 1);
  std::vector<int> v;
  for (uint8_t b : out) v.push_back(t == Int8Type::kInt8 ? static_cast<int8_t>(b) : b);
  return v;
}

TEST(Int8ParamsTest, QInt8SymmetricHandComputed) {
  // a = 127 -> scale = 254 / 254 = 1, zp 0; ties round to even.
  Int8Params p = ComputeInt8Params(-100.0f, 127.0f, Int8Type::kInt8, false);
  EXPECT_EQ(p.scale, 1.0f);
  EXPECT_EQ(p.zero_point, 0);
  EXPECT_THAT(Codes({62.5f, -3.5f, 2.5f, 127.0f, -100.0f, 0.49f}, p, Int8Type::kInt8),
              ElementsAre(62, -4, 2, 127, -100, 0));
  // a = 2: scale = float(4 / 254) = 0.015748031; -1 / scale = -63.5 -> -64.
  p = ComputeInt8Params(-1.0f, 2.0f, Int8Type::kInt8, false);
  EXPECT_EQ(p.scale, static_cast<float>(4.0 / 254.0));
  EXPECT_THAT(Codes({-1.0f, 2.0f, 0.5f}, p, Int8Type::kInt8), ElementsAre(-64, 127, 32));
}

TEST(Int8ParamsTest, RangeAlwaysIncludesZero) {
  // All positive: rmin = 0.
  Int8Params p = ComputeInt8Params(2.0f, 127.0f, Int8Type::kInt8, false);
  EXPECT_EQ(p.scale, 1.0f);
  Int8Params u = ComputeInt8Params(2.0f, 255.0f, Int8Type::kUint8, false);
  EXPECT_EQ(u.scale, 1.0f);
  EXPECT_EQ(u.zero_point, 0);
}

TEST(Int8ParamsTest, ReduceRange) {
  // QInt8 reduced: [-64, 64]; a = 64 -> scale 1.
  Int8Params p = ComputeInt8Params(-64.0f, 10.0f, Int8Type::kInt8, true);
  EXPECT_EQ(p.scale, 1.0f);
  EXPECT_EQ(p.zero_point, 0);
  // QUInt8 reduced: [0, 127].
  Int8Params u = ComputeInt8Params(-27.0f, 100.0f, Int8Type::kUint8, true);
  EXPECT_EQ(u.scale, 1.0f);
  EXPECT_EQ(u.zero_point, 27);
}

TEST(Int8ParamsTest, QUInt8ZeroPointRoundsHalfToEvenInDouble) {
  // dr = 255 -> s64 = 1; zp = round_half_even(2.5) = 2.
  Int8Params u = ComputeInt8Params(-2.5f, 252.5f, Int8Type::kUint8, false);
  EXPECT_EQ(u.scale, 1.0f);
  EXPECT_EQ(u.zero_point, 2);
  // -3.5 -> zp 4.
  u = ComputeInt8Params(-3.5f, 251.5f, Int8Type::kUint8, false);
  EXPECT_EQ(u.zero_point, 4);
  EXPECT_THAT(Codes({-3.5f, 0.0f, 2.5f, 251.5f, 300.0f}, u, Int8Type::kUint8),
              ElementsAre(0, 4, 6, 255, 255));
}

TEST(Int8ParamsTest, QUInt8ScaleIsComputedInDoubleThenRounded) {
  // dr = float(0.3 - (-0.1)) then /255 in double, then float.
  const float lo = -0.1f, hi = 0.3f;
  Int8Params u = ComputeInt8Params(lo, hi, Int8Type::kUint8, false);
  const double s64 = static_cast<double>(hi - lo) / 255.0;
  EXPECT_EQ(u.scale, static_cast<float>(s64));
  EXPECT_EQ(u.zero_point, static_cast<int>(std::nearbyint(0.0 - static_cast<double>(lo) / s64)));
}

TEST(Int8ParamsTest, TinyRangeGivesScaleOneZeroPointZero) {
  for (Int8Type t : {Int8Type::kInt8, Int8Type::kUint8}) {
    Int8Params z = ComputeInt8Params(0.0f, 0.0f, t, false);
    EXPECT_EQ(z.scale, 1.0f);
    EXPECT_EQ(z.zero_point, 0);
    Int8Params tiny = ComputeInt8Params(-1e-37f, 1e-37f, t, false);
    EXPECT_EQ(tiny.scale, 1.0f);
    EXPECT_EQ(tiny.zero_point, 0);
  }
}

TEST(Int8MatrixTest, PerChannelUsesColumnsOfB) {
  // W[2, 3] row-major; column c has its own range.
  std::vector<float> w = {1.0f, -2.0f, 0.5f, -1.0f, 4.0f, 0.25f};
  MatrixSource s;
  s.bytes = {reinterpret_cast<const uint8_t*>(w.data()), w.size() * 4};
  s.k = 2;
  s.n = 3;
  s.row_stride = 3;
  s.col_stride = 1;
  Int8Options o;
  o.per_channel = true;
  o.out_row_stride = 3;
  o.out_col_stride = 1;
  TensorReport q;
  auto r = QuantizeInt8Matrix(s, o, RunContext(), &q);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->params.size(), 3u);
  EXPECT_EQ(r->params[0].scale, static_cast<float>(2.0 / 254.0));
  EXPECT_EQ(r->params[1].scale, static_cast<float>(8.0 / 254.0));
  EXPECT_EQ(r->params[2].scale, static_cast<float>(1.0 / 254.0));
  EXPECT_EQ(static_cast<int8_t>(r->data[0]), 127);   // 1 / (1/127)
  EXPECT_EQ(static_cast<int8_t>(r->data[3]), -127);  // -1
  EXPECT_EQ(static_cast<int8_t>(r->data[4]), 127);   // 4
  ASSERT_TRUE(q.sqnr_db.has_value());
  EXPECT_GT(*q.sqnr_db, 35.0);
  EXPECT_LT(*q.rel_output_error, 0.02);
}

}  // namespace
}  // namespace quantd::core::quant
