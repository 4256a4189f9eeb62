#include "quantd/core/quant/int8_linear.h"

#include <cfloat>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/quant/int8_kernels.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quality_expect.h"
#include "quantd/core/base/cpu_features.h"
#include "quantd/core/base/half.h"
#include "quantd/core/base/thread_pool.h"
#include "quantd/core/base/transpose.h"
#include "quantd/core/quant/quality.h"
#include "quantd/core/quant/weight_quantizer.h"
#include "test_models.h"

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

// ---- The code kernel variants against the scalar one, bit for bit.

// Values that stress the code: random, exact .5 ties of the quotient at
// every code (power-of-two scales make w / scale exact), values one ulp
// either side of a tie, zeros of both signs, denormals, and magnitudes whose
// quotient overflows the clamp (or float).
std::vector<float> AdversarialValues(float scale, uint32_t seed) {
  std::vector<float> v = ::quantd::testing::RandomFloats(97, seed, 200.0f * scale);
  for (int m = -300; m <= 300; ++m) {
    const float tie = (static_cast<float>(m) + 0.5f) * scale;
    v.push_back(tie);
    v.push_back(std::nextafter(tie, FLT_MAX));
    v.push_back(std::nextafter(tie, -FLT_MAX));
  }
  for (float x : {0.0f, -0.0f, 1e-45f, -1e-45f, FLT_MIN, -FLT_MIN, FLT_MAX, -FLT_MAX, 3e38f, -3e38f,
                  1e20f, -1e20f, 511.5f * scale, -511.5f * scale, 512.5f * scale, 127.5f * scale,
                  -127.5f * scale, -128.5f * scale, 255.5f * scale}) {
    v.push_back(x);
  }
  return v;
}

class Int8CodeKernelTest : public ::testing::TestWithParam<std::tuple<Int8Type, bool>> {};

TEST_P(Int8CodeKernelTest, Avx2WritesTheScalarBytes) {
  if (HostCpuLevel() < CpuLevel::kAvx2) GTEST_SKIP() << "CPU lacks avx2";
  const auto [type, per_column] = GetParam();
  const int8::Int8Kernels& avx2 = int8::Int8KernelsFor(CpuLevel::kAvx2);
  ASSERT_EQ(avx2.level, CpuLevel::kAvx2);
  const int8::CodeRange range = int8::CodeRangeOf(type);
  const std::vector<float> zero_points =
      type == Int8Type::kInt8 ? std::vector<float>{0.0f, -3.0f, 5.0f}
                              : std::vector<float>{0.0f, 3.0f, 127.0f, 128.0f, 255.0f};
  int checked = 0;
  for (float base_scale : {1.0f, 0.25f, 0x1p-10f, 0.015748031f, 1e-30f, 1e30f, FLT_MIN}) {
    for (float zp0 : zero_points) {
      const std::vector<float> v = AdversarialValues(base_scale, 17);
      // Rows of `width` values (ld > width), widths around the vector sizes.
      for (int width : {1, 7, 8, 9, 31, 32, 33, 64, 70, 100}) {
        const int rows = static_cast<int>(v.size()) / (width + 3);
        const int64_t ld = width + 3;
        std::vector<float> scale(width), zp(width);
        for (int j = 0; j < width; ++j) {
          // Per column: scales of both kinds and zero points cycling.
          scale[j] = per_column && (j & 1) ? base_scale * 2.0f : base_scale;
          zp[j] = per_column ? zero_points[(j + static_cast<int>(zp0)) % zero_points.size()] : zp0;
        }
        const int64_t ldd = width + 5;
        std::vector<uint8_t> want(rows * ldd, 0xAB), got(rows * ldd, 0xAB);
        const int step = per_column ? 1 : 0;
        int8::CodeRowsScalar(v.data(), ld, rows, width, scale.data(), zp.data(), step, range,
                             want.data(), ldd);
        avx2.code_rows(v.data(), ld, rows, width, scale.data(), zp.data(), step, range, got.data(),
                       ldd);
        ASSERT_EQ(got, want) << "scale " << base_scale << " zp " << zp0 << " width " << width;
        checked += rows * width;
      }
    }
  }
  EXPECT_GT(checked, 10000);
}

INSTANTIATE_TEST_SUITE_P(
    TypesAndParams, Int8CodeKernelTest,
    ::testing::Combine(::testing::Values(Int8Type::kInt8, Int8Type::kUint8), ::testing::Bool()),
    [](const auto& info) {
      return std::string(std::get<0>(info.param) == Int8Type::kInt8 ? "Int8" : "Uint8") +
             (std::get<1>(info.param) ? "PerColumn" : "OneScale");
    });

// The AVX2 column gather the code tiles use (TransposeFloats, the transpose
// of weights stored [N, K] into a 64-wide tile) writes the scalar copy's tile
// on ragged shapes, and leaves the rest of the tile alone.
TEST(Int8CodeKernelTest, GatherColumnsAvx2IsTheScalarCopy) {
  if (HostCpuLevel() < CpuLevel::kAvx2) GTEST_SKIP() << "CPU lacks avx2";
  ScopedCpuLevelCap cap(CpuLevel::kAvx2);
  const int64_t col_stride = 77;
  const std::vector<float> src = ::quantd::testing::RandomFloats(64 * col_stride, 3, 1.0f);
  for (int rows : {1, 7, 8, 9, 17, 64}) {
    for (int tn : {1, 5, 8, 13, 64}) {
      std::vector<float> want(64 * 64, -1.0f), got(64 * 64, -1.0f);
      TransposeFloats_ref(src.data() + 3, tn, rows, col_stride, want.data(), 64);
      TransposeFloats(src.data() + 3, tn, rows, col_stride, got.data(), 64);
      ASSERT_EQ(got, want) << "rows " << rows << " tn " << tn;
      EXPECT_EQ(want[(rows - 1) * 64 + tn - 1], src[3 + (tn - 1) * col_stride + rows - 1]);
    }
  }
}

// The per-column API (QuantizeInt8, contiguous: the kernel of the active
// level) at every level gives the hand-written ORT formula's bytes.
TEST(Int8CodeKernelTest, QuantizeInt8AtEveryLevelIsTheFormula) {
  for (CpuLevel level : kAllCpuLevels) {
    if (HostCpuLevel() < level) continue;
    ScopedCpuLevelCap cap(level);
    for (Int8Type t : {Int8Type::kInt8, Int8Type::kUint8}) {
      const Int8Params p = t == Int8Type::kInt8 ? ComputeInt8Params(-1.0f, 2.0f, t, false)
                                                : ComputeInt8Params(-3.5f, 251.5f, t, false);
      const std::vector<float> v = AdversarialValues(p.scale, 5);
      std::vector<uint8_t> got(v.size());
      QuantizeInt8(v.data(), static_cast<int64_t>(v.size()), 1, p, t, got.data(), 1);
      for (size_t i = 0; i < v.size(); ++i) {
        float x = std::clamp(v[i] / p.scale, -512.0f, 512.0f);
        const float r = std::nearbyint(x);  // round half to even (default mode)
        const int q = std::clamp(static_cast<int>(r) + p.zero_point,
                                 t == Int8Type::kInt8 ? -128 : 0, t == Int8Type::kInt8 ? 127 : 255);
        ASSERT_EQ(got[i], static_cast<uint8_t>(q)) << level << " value " << v[i];
      }
    }
  }
}

// ---- The whole-matrix row-major path.

struct MatrixCase {
  int64_t k, n;
};

// QuantizeInt8Matrix on row-major W (rows streamed) and on the same W stored
// [n, k] (columns streamed; codes [k, n] or [n, k]) against the per-column
// reference: same params and bytes, at every CPU level, FP32 and FP16, both
// types, per channel and per tensor, reduce range, ragged shapes, an all-zero
// column, columns of +0 and -0 (the lane-wise min/max may keep the other
// zero) and a column of ties.
TEST(Int8MatrixTest, EveryLayoutIsThePerColumnReference) {
  ThreadPool pool(1);
  RunContext ctx;
  ctx.pool = &pool;
  ctx.parallelism = 2;
  for (MatrixCase mc : {MatrixCase{1, 9}, MatrixCase{5, 70}, MatrixCase{64, 64},
                        MatrixCase{65, 130}, MatrixCase{200, 300}}) {
    const int64_t k = mc.k, n = mc.n;
    std::vector<float> w = ::quantd::testing::RandomFloats(k * n, 41, 0.1f);
    for (int64_t i = 0; i < k; ++i) {
      w[i * n + n / 2] = 0.0f;                                              // all-zero column
      if (n > 3) w[i * n + 3] = (static_cast<float>(i % 9) - 4.0f) * 0.5f;  // ties
      if (n > 1) w[i * n + 1] = (i & 1) ? -0.0f : 0.0f;
      if (n > 5) w[i * n + 5] = (i % 3 == 0) ? -0.0f : -0.01f * static_cast<float>(i);
      if (n > 6) w[i * n + 6] = (i % 4 == 1) ? 0.0f : (i % 4 == 2 ? -0.0f : 0.02f * i);
    }
    std::vector<uint16_t> h(w.size());
    for (size_t i = 0; i < w.size(); ++i) h[i] = FloatToHalf(w[i]);
    for (bool fp16 : {false, true}) {
      // The values as the quantizer sees them, and W transposed ([n, k]).
      std::vector<float> wf(w.size());
      for (size_t i = 0; i < w.size(); ++i) wf[i] = fp16 ? HalfToFloat(h[i]) : w[i];
      const std::vector<float> wt = ::quantd::testing::StoredByColumn(w, k, n);
      const std::vector<uint16_t> ht = ::quantd::testing::StoredByColumn(h, k, n);
      // The weights as a MatrixSource, row-major [k, n] or stored [n, k].
      auto source_of = [&](bool transposed) {
        MatrixSource s;
        s.onnx_type = fp16 ? 10 : 1;
        if (fp16) {
          const auto& v = transposed ? ht : h;
          s.bytes =
              absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 2);
        } else {
          const auto& v = transposed ? wt : w;
          s.bytes =
              absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4);
        }
        s.k = k;
        s.n = n;
        s.row_stride = transposed ? 1 : n;
        s.col_stride = transposed ? k : 1;
        return s;
      };
      for (Int8Type type : {Int8Type::kInt8, Int8Type::kUint8}) {
        for (bool per_channel : {true, false}) {
          for (bool reduce : {false, true}) {
            Int8Options o;
            o.type = type;
            o.per_channel = per_channel;
            o.reduce_range = reduce;
            o.out_row_stride = n;
            o.out_col_stride = 1;
            // Reference: per column ranges, per element Int8Code.
            std::vector<float> mins(n), maxs(n);
            std::vector<float> col(k);
            for (int64_t c = 0; c < n; ++c) {
              for (int64_t i = 0; i < k; ++i) col[i] = wf[i * n + c];
              MinMax(col.data(), k, 1, &mins[c], &maxs[c]);
            }
            std::vector<Int8Params> params;
            if (per_channel) {
              for (int64_t c = 0; c < n; ++c) {
                params.push_back(ComputeInt8Params(mins[c], maxs[c], type, reduce));
              }
            } else {
              params.push_back(ComputeInt8Params(*std::min_element(mins.begin(), mins.end()),
                                                 *std::max_element(maxs.begin(), maxs.end()), type,
                                                 reduce));
            }
            const int8::CodeRange range = int8::CodeRangeOf(type);
            std::vector<uint8_t> want(k * n);
            for (int64_t i = 0; i < k; ++i) {
              for (int64_t c = 0; c < n; ++c) {
                const Int8Params& p = params[per_channel ? c : 0];
                want[i * n + c] =
                    int8::Int8Code(wf[i * n + c], p.scale, static_cast<float>(p.zero_point), range);
              }
            }
            for (CpuLevel level : kAllCpuLevels) {
              if (HostCpuLevel() < level) continue;
              ScopedCpuLevelCap cap(level);
              const std::string where = ::testing::PrintToString(
                  std::vector<int64_t>{k, n, fp16, static_cast<int>(type), per_channel, reduce,
                                       static_cast<int>(level)});
              for (bool transposed : {false, true}) {
                const MatrixSource s = source_of(transposed);
                TensorReport q;
                auto with_report = QuantizeInt8Matrix(s, o, ctx, &q);
                auto bare = QuantizeInt8Matrix(s, o, ctx, nullptr);
                ASSERT_TRUE(with_report.ok() && bare.ok()) << where;
                ASSERT_EQ(with_report->params.size(), params.size()) << where;
                for (size_t c = 0; c < params.size(); ++c) {
                  EXPECT_EQ(with_report->params[c].scale, params[c].scale) << where << c;
                  EXPECT_EQ(with_report->params[c].zero_point, params[c].zero_point) << where << c;
                }
                EXPECT_EQ(with_report->data, want) << where << " transposed " << transposed;
                EXPECT_EQ(bare->data, want) << where << " transposed " << transposed;
              }
              // Codes stored [n, k] (Conv and embedding layouts): the same
              // bytes, transposed, with and without the report.
              std::vector<uint8_t> want_t(k * n);
              for (int64_t i = 0; i < k; ++i) {
                for (int64_t c = 0; c < n; ++c) want_t[c * k + i] = want[i * n + c];
              }
              for (bool transposed : {false, true}) {
                const MatrixSource s = source_of(transposed);
                Int8Options ot = o;
                ot.out_row_stride = 1;
                ot.out_col_stride = k;
                TensorReport q;
                auto with_report = QuantizeInt8Matrix(s, ot, ctx, &q);
                auto bare = QuantizeInt8Matrix(s, ot, ctx, nullptr);
                ASSERT_TRUE(with_report.ok() && bare.ok()) << where;
                EXPECT_EQ(with_report->data, want_t) << where << " codes [n, k] " << transposed;
                EXPECT_EQ(bare->data, want_t) << where << " codes [n, k] " << transposed;
              }
            }
          }
        }
      }
    }
  }
}

// The quality figures of the separate whole-matrix pass (what the INT8
// report computed before its sums were fused into the code tiles): every
// column dequantized by DequantizeInt8, X W over every column.
TensorReport SeparatePassInt8Quality(const std::vector<float>& wf, int64_t k, int64_t n,
                                     const Int8Options& o, const Int8Result& r) {
  QualityAccumulator acc(k);
  std::vector<float> wb(k * 64), qb(k * 64);
  for (int64_t c0 = 0; c0 < n; c0 += 64) {
    const int64_t c1 = std::min(n, c0 + 64);
    for (int64_t c = c0; c < c1; ++c) {
      const Int8Params& p = r.params[o.per_channel ? c : 0];
      for (int64_t i = 0; i < k; ++i) {
        wb[(c - c0) * k + i] = wf[i * n + c];
        qb[(c - c0) * k + i] = DequantizeInt8(r.data[i * n + c], p, o.type);
      }
    }
    acc.AddColumns(wb.data(), qb.data(), c1 - c0);
  }
  TensorReport q;
  acc.Fill(&q);
  return q;
}

// The fused INT8 report at QualityLevel::kFull is the separate pass within
// the tolerances of the fused INT4 report (float sums per tile), on every
// CPU level, both types, per channel and per tensor, FP32 and FP16, W
// row-major and stored [n, k], ragged shapes and 1 or 3 threads.
TEST(Int8MatrixTest, FusedQualityIsTheSeparatePass) {
  const int64_t k = 200, n = 300;
  std::vector<float> w = ::quantd::testing::RandomFloats(k * n, 11, 0.05f);
  std::vector<uint16_t> h(w.size());
  std::vector<float> wh(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    h[i] = FloatToHalf(w[i]);
    wh[i] = HalfToFloat(h[i]);
  }
  const std::vector<float> wt = ::quantd::testing::StoredByColumn(w, k, n);  // W stored [n, k]
  const std::vector<uint16_t> ht = ::quantd::testing::StoredByColumn(h, k, n);
  ThreadPool pool(2);
  for (bool transposed : {false, true}) {
    for (int threads : {1, 3}) {
      RunContext ctx;
      ctx.pool = &pool;
      ctx.parallelism = threads;
      for (CpuLevel level : kAllCpuLevels) {
        if (HostCpuLevel() < level) continue;
        ScopedCpuLevelCap cap(level);
        for (bool fp16 : {false, true}) {
          for (Int8Type type : {Int8Type::kInt8, Int8Type::kUint8}) {
            for (bool per_channel : {true, false}) {
              Int8Options o;
              o.type = type;
              o.per_channel = per_channel;
              o.out_row_stride = n;
              const std::vector<uint16_t>& hs = transposed ? ht : h;
              const std::vector<float>& ws = transposed ? wt : w;
              MatrixSource s;
              s.onnx_type = fp16 ? 10 : 1;
              s.bytes = fp16 ? absl::Span<const uint8_t>(
                                   reinterpret_cast<const uint8_t*>(hs.data()), hs.size() * 2)
                             : absl::Span<const uint8_t>(
                                   reinterpret_cast<const uint8_t*>(ws.data()), ws.size() * 4);
              s.k = k;
              s.n = n;
              s.row_stride = transposed ? 1 : n;
              s.col_stride = transposed ? k : 1;
              const std::string where = ::testing::PrintToString(
                  std::vector<int>{transposed, threads, static_cast<int>(level), fp16,
                                   static_cast<int>(type), per_channel});
              TensorReport fused;
              auto r = QuantizeInt8Matrix(s, o, ctx, &fused, QualityLevel::kFull);
              ASSERT_TRUE(r.ok()) << where;
              const TensorReport ref = SeparatePassInt8Quality(fp16 ? wh : w, k, n, o, *r);
              ExpectSameFigures(fused, ref, where);
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace quantd::core::quant
