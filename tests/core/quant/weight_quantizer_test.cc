// Whole-matrix drivers: cancellation inside a tensor, thread count never
// changes the bytes, and the fused/sampled quality report against the
// separate whole-matrix pass.
#include "quantd/core/quant/weight_quantizer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quality_expect.h"
#include "quantd/core/base/cpu_features.h"
#include "quantd/core/base/half.h"
#include "quantd/core/base/thread_pool.h"
#include "quantd/core/quant/quality.h"
#include "quantd/core/run_context.h"
#include "test_models.h"

namespace quantd::core::quant {
namespace {

TEST(WeightQuantizerTest, CancelStopsInsideATensor) {
  std::vector<float> w = ::quantd::testing::RandomFloats(256 * 1024, 4, 0.1f);
  MatrixSource s;
  s.bytes = {reinterpret_cast<const uint8_t*>(w.data()), w.size() * 4};
  s.k = 256;
  s.n = 1024;
  s.row_stride = 1024;
  ThreadPool pool(1);
  CancelToken cancel;
  cancel.Cancel();
  RunContext cancelled;
  cancelled.pool = &pool;
  cancelled.parallelism = 2;
  cancelled.cancel = &cancel;
  Int4Options o;
  EXPECT_EQ(QuantizeInt4Matrix(s, o, cancelled, nullptr).status().code(),
            absl::StatusCode::kCancelled);
  Int8Options o8;
  EXPECT_EQ(QuantizeInt8Matrix(s, o8, cancelled, nullptr).status().code(),
            absl::StatusCode::kCancelled);
  CancelToken live;
  RunContext running = cancelled;
  running.cancel = &live;
  auto ok = QuantizeInt4Matrix(s, o, running, nullptr);
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST(WeightQuantizerTest, ThreadsDoNotChangeTheBytes) {
  std::vector<float> w = ::quantd::testing::RandomFloats(200 * 300, 5, 0.1f);
  MatrixSource s;
  s.bytes = {reinterpret_cast<const uint8_t*>(w.data()), w.size() * 4};
  s.k = 200;
  s.n = 300;
  s.row_stride = 300;
  ThreadPool pool(3);
  RunContext one_thread, three_threads, four_threads;
  three_threads.pool = four_threads.pool = &pool;
  three_threads.parallelism = 3;
  four_threads.parallelism = 4;
  for (Int4Layout layout : {Int4Layout::kMatMulNBits, Int4Layout::kQdq}) {
    Int4Options o;
    o.layout = layout;
    o.symmetric = false;
    auto one = QuantizeInt4Matrix(s, o, one_thread, nullptr);
    auto four = QuantizeInt4Matrix(s, o, four_threads, nullptr);
    ASSERT_TRUE(one.ok() && four.ok());
    EXPECT_EQ(one->packed, four->packed);
    EXPECT_EQ(one->scales, four->scales);
    EXPECT_EQ(one->zero_points, four->zero_points);
  }
  TensorReport a, b;
  Int8Options o8;
  o8.per_channel = true;
  o8.out_row_stride = 300;
  auto r1 = QuantizeInt8Matrix(s, o8, one_thread, &a);
  auto r3 = QuantizeInt8Matrix(s, o8, three_threads, &b);
  ASSERT_TRUE(r1.ok() && r3.ok());
  EXPECT_EQ(r1->data, r3->data);
  EXPECT_NEAR(*a.sqnr_db, *b.sqnr_db, 1e-9);
}

// One NaN or infinity in a weight: every driver refuses the tensor, naming
// the element (storage index), instead of writing an infinite scale.
TEST(WeightQuantizerTest, RefusesNonFiniteWeightsNamingTheElement) {
  const int64_t k = 96, n = 70;
  const float kValues[] = {std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::quiet_NaN()};
  const char* kNames[] = {"is Inf", "is -Inf", "is NaN"};
  ThreadPool pool(1);
  RunContext ctx;
  ctx.pool = &pool;
  ctx.parallelism = 2;
  for (int v = 0; v < 3; ++v) {
    for (int64_t bad : {int64_t{0}, int64_t{37 * n + 65}, k * n - 1}) {
      for (int type : {1, 10, 16}) {  // FLOAT, FLOAT16, BFLOAT16
        for (bool transposed : {false, true}) {
          std::vector<float> w = ::quantd::testing::RandomFloats(k * n, 7, 0.1f);
          w[bad] = kValues[v];
          std::vector<uint16_t> h(w.size());
          for (size_t i = 0; i < w.size(); ++i) {
            h[i] = type == 10 ? FloatToHalf(w[i])
                              : static_cast<uint16_t>(std::bit_cast<uint32_t>(w[i]) >> 16);
          }
          MatrixSource s;
          s.onnx_type = type;
          s.bytes = type != 1 ? absl::Span<const uint8_t>(
                                    reinterpret_cast<const uint8_t*>(h.data()), h.size() * 2)
                              : absl::Span<const uint8_t>(
                                    reinterpret_cast<const uint8_t*>(w.data()), w.size() * 4);
          s.k = k;
          s.n = n;
          s.row_stride = transposed ? 1 : n;
          s.col_stride = transposed ? k : 1;
          const std::string where =
              ::testing::PrintToString(std::vector<int64_t>{v, bad, type, transposed});
          const std::string element = "element " + std::to_string(bad) + " " + kNames[v];
          auto expect_refused = [&](const absl::Status& status, const TensorReport& q) {
            EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << where;
            EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr(element)) << where;
            EXPECT_FALSE(q.sqnr_db.has_value()) << where;
          };
          for (Int4Layout layout : {Int4Layout::kMatMulNBits, Int4Layout::kQdq}) {
            for (Int4Algorithm algorithm : {Int4Algorithm::kRtn, Int4Algorithm::kSearch}) {
              for (bool symmetric : {true, false}) {
                Int4Options o;
                o.layout = layout;
                o.algorithm = algorithm;
                o.symmetric = symmetric;
                TensorReport q;
                expect_refused(QuantizeInt4Matrix(s, o, ctx, &q).status(), q);
              }
            }
          }
          for (bool symmetric : {true, false}) {  // blockwise INT8 (MatMulNBits bits=8)
            TensorReport q;
            expect_refused(QuantizeBlockwise8Matrix(s, 32, symmetric, ctx, &q).status(), q);
          }
          if (type == 16) continue;  // the per-tensor/channel INT8 quantizer takes no BF16
          for (bool per_channel : {false, true}) {
            Int8Options o8;
            o8.per_channel = per_channel;
            o8.out_row_stride = n;
            TensorReport q;
            expect_refused(QuantizeInt8Matrix(s, o8, ctx, &q).status(), q);
          }
        }
      }
    }
  }
}

// The quality figures as the separate whole-matrix pass computes them (the
// report before it was fused into the tiles): every column gathered,
// dequantized by DequantizeInt4, X W over every column.
template <typename T>
TensorReport SeparatePassQuality(const std::vector<T>& w, int64_t k, int64_t n,
                                 const Int4Options& o, const Int4Result& r) {
  const T* scales = reinterpret_cast<const T*>(r.scales.data());
  const uint8_t* zps = o.symmetric ? nullptr : r.zero_points.data();
  QualityAccumulator acc(k);
  std::vector<float> wb(k * 64), qb(k * 64);
  for (int64_t c0 = 0; c0 < n; c0 += 64) {
    const int64_t c1 = std::min(n, c0 + 64);
    for (int64_t j = c0; j < c1; ++j) {
      for (int64_t i = 0; i < k; ++i)
        wb[(j - c0) * k + i] = ElementTraits<T>::ToFloat(w[i * n + j]);
    }
    DequantizeInt4(k, n, o, r.packed.data(), scales, zps, c0, c1, qb.data());
    acc.AddColumns(wb.data(), qb.data(), c1 - c0);
  }
  TensorReport q;
  acc.Fill(&q);
  return q;
}

// Every figure of the fused path at QualityLevel::kFull is the separate
// pass's (up to float summation order), on every CPU level, both layouts,
// both symmetries, FP32 and FP16, W stored by row or by column (the tiled
// path, and at AVX-512 the row path for by-column MatMulNBits of whole
// blocks), ragged and whole-block K; the bytes do not change with the
// report or the storage.
TEST(WeightQuantizerTest, FusedQualityIsTheSeparatePass) {
  const int64_t n = 300;
  RunContext ctx;
  for (int64_t k : {200, 256}) {
    std::vector<float> w = ::quantd::testing::RandomFloats(k * n, 11, 0.05f);
    std::vector<Half> h(w.size());
    for (size_t i = 0; i < w.size(); ++i) h[i] = Half{FloatToHalf(w[i])};
    const std::vector<float> wt = ::quantd::testing::StoredByColumn(w, k, n);
    const std::vector<Half> ht = ::quantd::testing::StoredByColumn(h, k, n);
    for (CpuLevel level : kAllCpuLevels) {
      if (HostCpuLevel() < level) continue;
      ScopedCpuLevelCap cap(level);
      for (bool fp16 : {false, true}) {
        for (Int4Layout layout : {Int4Layout::kMatMulNBits, Int4Layout::kQdq}) {
          for (bool symmetric : {true, false}) {
            for (int bs : {32, 128}) {
              Int4Options o;
              o.layout = layout;
              o.symmetric = symmetric;
              o.block_size = bs;
              std::optional<Int4Result> by_row;
              for (bool by_column : {false, true}) {
                MatrixSource s;
                s.onnx_type = fp16 ? 10 : 1;
                const void* data = fp16 ? (by_column ? static_cast<const void*>(ht.data())
                                                     : static_cast<const void*>(h.data()))
                                        : (by_column ? static_cast<const void*>(wt.data())
                                                     : static_cast<const void*>(w.data()));
                s.bytes = absl::Span<const uint8_t>(static_cast<const uint8_t*>(data),
                                                    w.size() * (fp16 ? 2 : 4));
                s.k = k;
                s.n = n;
                s.row_stride = by_column ? 1 : n;
                s.col_stride = by_column ? k : 1;
                const std::string where = ::testing::PrintToString(
                    std::vector<int>{static_cast<int>(k), static_cast<int>(level), fp16,
                                     static_cast<int>(layout), symmetric, bs, by_column});
                TensorReport fused;
                auto r = QuantizeInt4Matrix(s, o, ctx, &fused, QualityLevel::kFull);
                auto bare = QuantizeInt4Matrix(s, o, ctx, nullptr);
                ASSERT_TRUE(r.ok() && bare.ok()) << where;
                EXPECT_EQ(r->packed, bare->packed) << where;
                EXPECT_EQ(r->scales, bare->scales) << where;
                EXPECT_EQ(r->zero_points, bare->zero_points) << where;
                if (by_row) {
                  EXPECT_EQ(r->packed, by_row->packed) << where;
                  EXPECT_EQ(r->scales, by_row->scales) << where;
                  EXPECT_EQ(r->zero_points, by_row->zero_points) << where;
                } else {
                  by_row = *r;
                }
                const TensorReport ref = fp16 ? SeparatePassQuality(h, k, n, o, *r)
                                              : SeparatePassQuality(w, k, n, o, *r);
                ExpectSameFigures(fused, ref, where);
              }
            }
          }
        }
      }
    }
  }
}

TEST(QualityAccumulatorTest, SampleSizeForOnePercentAtNinetyNinePercent) {
  EXPECT_EQ(SampledProbeColumns(64), 64);
  EXPECT_EQ(SampledProbeColumns(2048), 1636);
  EXPECT_EQ(SampledProbeColumns(5632), 3327);
  EXPECT_EQ(SampledProbeColumns(32000), 6483);
  EXPECT_EQ(ProbeSampleThreshold(32000, QualityLevel::kFull), uint64_t{1} << 32);
  EXPECT_EQ(ProbeSampleThreshold(64, QualityLevel::kSampled), uint64_t{1} << 32);
  // The fixed-seed hash takes about the asked-for share of groups.
  const uint64_t t = ProbeSampleThreshold(32000 * 64, QualityLevel::kSampled);
  int taken = 0;
  for (int g = 0; g < 32000; ++g) taken += ProbeGroupSampled(g, t) ? 1 : 0;
  const double want = static_cast<double>(SampledProbeColumns(32000 * 64)) / 64;
  EXPECT_NEAR(taken, want, 4 * std::sqrt(want));
}

// The summary report (output error on the sampled columns) is within 1 % of
// the whole-matrix figures on model-shaped matrices (attention, MLP up,
// MLP down, LM head shapes; Gaussian weights), INT4 and INT8; SQNR, relative
// L2 and max error cover every weight and are the full figures.
TEST(WeightQuantizerTest, SummaryWithinOnePercentOfFull) {
  struct Shape {
    int64_t k, n;
  };
  ThreadPool pool(1);
  RunContext ctx;
  ctx.pool = &pool;
  ctx.parallelism = 2;
  for (Shape shape : {Shape{2048, 2048}, Shape{2048, 5632}, Shape{5632, 2048}, Shape{512, 32000}}) {
    const int64_t k = shape.k, n = shape.n;
    ASSERT_LT(SampledProbeColumns(n), n);  // a real sample
    std::vector<float> w = ::quantd::testing::RandomFloats(k * n, 23, 0.02f);
    MatrixSource s;
    s.bytes = {reinterpret_cast<const uint8_t*>(w.data()), w.size() * 4};
    s.k = k;
    s.n = n;
    s.row_stride = n;
    const std::string where = ::testing::PrintToString(std::vector<int64_t>{k, n});
    Int4Options o;
    TensorReport full, summary;
    auto a = QuantizeInt4Matrix(s, o, ctx, &full, QualityLevel::kFull);
    auto b = QuantizeInt4Matrix(s, o, ctx, &summary, QualityLevel::kSampled);
    ASSERT_TRUE(a.ok() && b.ok()) << where;
    EXPECT_EQ(a->packed, b->packed) << where;
    TensorReport ref = SeparatePassQuality(w, k, n, o, *a);
    EXPECT_LT(Relative(*summary.sqnr_db, *ref.sqnr_db), 1e-5) << where;
    EXPECT_LT(Relative(*summary.rel_l2_error, *ref.rel_l2_error), 1e-5) << where;
    EXPECT_EQ(*summary.max_abs_error, *ref.max_abs_error) << where;
    EXPECT_LT(Relative(*summary.rel_output_error, *ref.rel_output_error), 0.01) << where;
    EXPECT_NE(*summary.rel_output_error, *full.rel_output_error) << where;  // sampled

    Int8Options o8;
    o8.out_row_stride = n;
    TensorReport full8, summary8;
    auto c = QuantizeInt8Matrix(s, o8, ctx, &full8, QualityLevel::kFull);
    auto d = QuantizeInt8Matrix(s, o8, ctx, &summary8, QualityLevel::kSampled);
    ASSERT_TRUE(c.ok() && d.ok()) << where;
    EXPECT_EQ(c->data, d->data) << where;
    EXPECT_LT(Relative(*summary8.sqnr_db, *full8.sqnr_db), 1e-9) << where;
    EXPECT_EQ(*summary8.max_abs_error, *full8.max_abs_error) << where;
    EXPECT_LT(Relative(*summary8.rel_output_error, *full8.rel_output_error), 0.01) << where;
    EXPECT_NE(*summary8.rel_output_error, *full8.rel_output_error) << where;
  }
}

// The INT8 driver (tile gather, 16-row blocks plus a ragged tail) writes
// what the per-column kernel writes for each column read on its own.
TEST(WeightQuantizerTest, Int8MatrixIsThePerColumnKernel) {
  const int64_t n = 70;
  ThreadPool pool(1);
  RunContext ctx;
  ctx.pool = &pool;
  ctx.parallelism = 2;
  for (int64_t k : {int64_t{5}, int64_t{16}, int64_t{37}, int64_t{200}}) {
    std::vector<float> w = ::quantd::testing::RandomFloats(k * n, 31, 0.1f);
    MatrixSource s;
    s.bytes = {reinterpret_cast<const uint8_t*>(w.data()), w.size() * 4};
    s.k = k;
    s.n = n;
    s.row_stride = n;
    Int8Options o8;
    o8.per_channel = true;
    o8.out_row_stride = n;
    auto r = QuantizeInt8Matrix(s, o8, ctx, nullptr);
    ASSERT_TRUE(r.ok()) << r.status();
    std::vector<float> col(k);
    std::vector<uint8_t> codes(k);
    for (int64_t c = 0; c < n; ++c) {
      for (int64_t i = 0; i < k; ++i) col[i] = w[i * n + c];
      float mn = 0, mx = 0;
      MinMax(col.data(), k, 1, &mn, &mx);
      const Int8Params p = ComputeInt8Params(mn, mx, o8.type, o8.reduce_range);
      EXPECT_EQ(r->params[c].scale, p.scale) << k << " " << c;
      EXPECT_EQ(r->params[c].zero_point, p.zero_point) << k << " " << c;
      QuantizeInt8(col.data(), k, 1, p, o8.type, codes.data(), 1);
      for (int64_t i = 0; i < k; ++i) {
        ASSERT_EQ(r->data[i * n + c], codes[i]) << "k " << k << " row " << i << " col " << c;
      }
    }
  }
}

// MatMulNBits 8-bit blocks against their definition, written here
// independently: per column and block of k, the extremes in row order
// (std::min/std::max from the first value, so an all-zero block keeps its
// first zero's sign), symmetric scale = the extreme of larger magnitude /
// -128 with zero point 128, asymmetric scale = (max(mx, 0) - min(mn, 0)) /
// 255 with zero point round(-mn / scale), codes round(w * (1 / scale) + zp)
// clamped to [0, 255]. Blocks of signed zeros, blocks whose extreme is zero
// and a short last block are in the data; every byte is compared, scales
// bit for bit, at every CPU level, W stored by row and by column (at
// AVX-512 with whole blocks, the row path), whose quality figures agree.
TEST(WeightQuantizerTest, Blockwise8MatrixIsTheBlockDefinition) {
  const int64_t n = 70, bs = 32;
  ThreadPool pool(1);
  RunContext ctx;
  ctx.pool = &pool;
  ctx.parallelism = 2;
  for (int64_t k : {int64_t{64}, int64_t{100}}) {
    std::vector<float> w = ::quantd::testing::RandomFloats(k * n, 77, 0.2f);  // [k, n]
    for (int64_t i = 0; i < bs; ++i) {
      w[i * n + 0] = (i % 3 == 0) ? -0.0f : 0.0f;  // column 0, block 0: -0 first
      w[i * n + 1] = (i % 3 == 1) ? -0.0f : 0.0f;  // column 1: +0 first
      w[i * n + 2] = i == 5 ? 0.0f : std::fabs(w[i * n + 2]) + 0.01f;    // min exactly +0
      w[i * n + 3] = i == 9 ? -0.0f : -std::fabs(w[i * n + 3]) - 0.01f;  // max exactly -0
    }
    // The same matrix stored by column (a checkpoint's [out, in] weight:
    // at AVX-512 with whole blocks, the row path).
    const std::vector<float> wt = ::quantd::testing::StoredByColumn(w, k, n);
    const int64_t blocks = (k + bs - 1) / bs;
    for (CpuLevel level : kAllCpuLevels) {
      if (HostCpuLevel() < level) continue;
      ScopedCpuLevelCap cap(level);
      for (bool symmetric : {true, false}) {
        std::optional<TensorReport> by_row_quality;
        for (bool by_column : {false, true}) {
          SCOPED_TRACE(::testing::Message() << CpuLevelName(level) << " k " << k
                                            << (symmetric ? " symmetric" : " asymmetric")
                                            << (by_column ? " by column" : " by row"));
          MatrixSource s;
          s.bytes = {reinterpret_cast<const uint8_t*>(by_column ? wt.data() : w.data()),
                     w.size() * 4};
          s.k = k;
          s.n = n;
          s.row_stride = by_column ? 1 : n;
          s.col_stride = by_column ? k : 1;
          TensorReport quality;
          auto r = QuantizeBlockwise8Matrix(s, bs, symmetric, ctx, &quality, QualityLevel::kFull);
          ASSERT_TRUE(r.ok()) << r.status();
          ASSERT_EQ(r->codes.size(), static_cast<size_t>(n * blocks * bs));
          // The figures do not depend on the storage (up to summation order).
          if (!by_row_quality) {
            by_row_quality = quality;
          } else {
            ExpectSameFigures(quality, *by_row_quality, "by column vs by row");
          }
          for (int64_t c = 0; c < n; ++c) {
            for (int64_t b = 0; b < blocks; ++b) {
              const int64_t k0 = b * bs, rows = std::min(k, k0 + bs) - k0;
              float mn = w[k0 * n + c], mx = mn;
              for (int64_t i = 1; i < rows; ++i) {
                mn = std::min(mn, w[(k0 + i) * n + c]);
                mx = std::max(mx, w[(k0 + i) * n + c]);
              }
              float scale;
              int zp = 128;
              if (symmetric) {
                scale = (std::fabs(mx) > std::fabs(mn) ? mx : mn) / -128.0f;
              } else {
                mn = std::min(mn, 0.0f);
                mx = std::max(mx, 0.0f);
                scale = (mx - mn) / 255.0f;
                zp = scale != 0.0f
                         ? static_cast<int>(std::clamp(std::roundf(-mn / scale), 0.0f, 255.0f))
                         : 0;
                ASSERT_EQ(r->zero_points[c * blocks + b], zp) << "column " << c << " block " << b;
              }
              float got_scale;
              std::memcpy(&got_scale, r->scales.data() + (c * blocks + b) * 4, 4);
              ASSERT_EQ(std::signbit(got_scale), std::signbit(scale))
                  << "column " << c << " block " << b;
              ASSERT_EQ(got_scale, scale) << "column " << c << " block " << b;
              const float rcp = scale != 0.0f ? 1.0f / scale : 0.0f;
              for (int64_t i = 0; i < bs; ++i) {
                int want = 0;  // rows past k stay 0
                if (i < rows) {
                  const float x = std::roundf(w[(k0 + i) * n + c] * rcp + static_cast<float>(zp));
                  want = static_cast<int>(std::clamp(x, 0.0f, 255.0f));
                }
                ASSERT_EQ(r->codes[(c * blocks + b) * bs + i], want)
                    << "column " << c << " block " << b << " row " << i;
              }
            }
          }
        }
      }
    }
  }
}

// An exact result has no finite SQNR: the report leaves it out rather than
// printing a made-up figure.
// A BFLOAT16 source is the float32 matrix it widens to: the same codes,
// float32 scales and zero points, and the same quality figures, at every CPU
// level, stored by row and by column (a checkpoint's [out, in] weight), RTN
// and search, MatMulNBits and QDQ, symmetric or not, and blockwise INT8; a
// non-finite weight is refused with its index and value.
TEST(WeightQuantizerTest, Bfloat16SourceIsItsFloat32Widening) {
  const int64_t k = 96, n = 136;
  std::vector<float> f = ::quantd::testing::RandomFloats(k * n, 17, 0.05f);
  std::vector<uint16_t> b(f.size());
  for (size_t i = 0; i < f.size(); ++i) {
    b[i] = FloatToBfloat16(f[i]);
    f[i] = Bfloat16ToFloat(b[i]);
  }
  // W [k, n] stored by row or by column, as float32 or as bfloat16.
  auto source = [&](bool by_column, bool bf16) {
    MatrixSource s;
    s.k = k;
    s.n = n;
    s.row_stride = by_column ? 1 : n;
    s.col_stride = by_column ? k : 1;
    s.onnx_type = bf16 ? 16 : 1;
    s.bytes =
        bf16 ? absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(b.data()), b.size() * 2)
             : absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(f.data()), f.size() * 4);
    return s;
  };
  RunContext ctx;
  for (CpuLevel level : kAllCpuLevels) {
    if (HostCpuLevel() < level) continue;
    ScopedCpuLevelCap cap(level);
    for (bool by_column : {false, true}) {
      const MatrixSource s = source(by_column, false), s16 = source(by_column, true);
      for (Int4Layout layout : {Int4Layout::kMatMulNBits, Int4Layout::kQdq}) {
        for (bool symmetric : {true, false}) {
          for (Int4Algorithm algorithm : {Int4Algorithm::kRtn, Int4Algorithm::kSearch}) {
            Int4Options o;
            o.layout = layout;
            o.symmetric = symmetric;
            o.algorithm = algorithm;
            o.block_size = 32;
            const std::string where = ::testing::PrintToString(
                std::vector<int>{static_cast<int>(level), by_column, static_cast<int>(layout),
                                 symmetric, static_cast<int>(algorithm)});
            TensorReport q32, q16;
            auto r32 = QuantizeInt4Matrix(s, o, ctx, &q32, QualityLevel::kFull);
            auto r16 = QuantizeInt4Matrix(s16, o, ctx, &q16, QualityLevel::kFull);
            ASSERT_TRUE(r32.ok() && r16.ok()) << where << r16.status();
            EXPECT_EQ(r16->packed, r32->packed) << where;
            EXPECT_EQ(r16->scales, r32->scales) << where;
            EXPECT_EQ(r16->zero_points, r32->zero_points) << where;
            EXPECT_EQ(q16.sqnr_db, q32.sqnr_db) << where;
            EXPECT_EQ(q16.rel_l2_error, q32.rel_l2_error) << where;
            EXPECT_EQ(q16.max_abs_error, q32.max_abs_error) << where;
            EXPECT_EQ(q16.rel_output_error, q32.rel_output_error) << where;
          }
        }
        // Blockwise INT8 (MatMulNBits bits=8) likewise.
        for (bool symmetric : {true, false}) {
          TensorReport q32, q16;
          auto r32 = QuantizeBlockwise8Matrix(s, 32, symmetric, ctx, &q32, QualityLevel::kFull);
          auto r16 = QuantizeBlockwise8Matrix(s16, 32, symmetric, ctx, &q16, QualityLevel::kFull);
          ASSERT_TRUE(r32.ok() && r16.ok()) << r16.status();
          EXPECT_EQ(r16->codes, r32->codes) << by_column << symmetric;
          EXPECT_EQ(r16->scales, r32->scales) << by_column << symmetric;
          EXPECT_EQ(r16->zero_points, r32->zero_points) << by_column << symmetric;
          EXPECT_EQ(q16.sqnr_db, q32.sqnr_db) << by_column << symmetric;
          EXPECT_EQ(q16.rel_output_error, q32.rel_output_error) << by_column << symmetric;
        }
      }
    }
  }
  b[5 * n + 7] = 0x7f80;  // +inf at (5, 7), row-major
  const MatrixSource s16 = source(false, true);
  auto bad = QuantizeInt4Matrix(s16, Int4Options(), ctx, nullptr);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("element 687 is Inf"));
  // The other quantizers take FLOAT and FLOAT16 only.
  EXPECT_EQ(QuantizeInt8Matrix(s16, Int8Options(), ctx, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The error sums at every CPU level are the same bits (the AVX2 loop keeps
// the scalar loop's lanes and operations), over lengths with tails, values
// with NaN errors among them, with and without the probe.
TEST(QualityAccumulatorTest, CpuLevelsGiveTheSameFigures) {
  const int64_t k = 67;
  for (int64_t cols : {1, 5, 64}) {
    std::vector<float> w = ::quantd::testing::RandomFloats(k * cols, 3 + cols, 0.05f);
    std::vector<float> q = ::quantd::testing::RandomFloats(k * cols, 5 + cols, 0.05f);
    for (size_t i = 0; i < q.size(); ++i) q[i] = w[i] + q[i] * 0.01f;
    if (cols == 64) q[100] = std::numeric_limits<float>::quiet_NaN();
    std::optional<TensorReport> first;
    for (CpuLevel level : kAllCpuLevels) {
      if (HostCpuLevel() < level) continue;
      ScopedCpuLevelCap cap(level);
      for (bool probe : {false, true}) {
        QualityAccumulator acc(k);
        acc.AddColumns(w.data(), q.data(), cols, probe);
        TensorReport r;
        acc.Fill(&r);
        if (!probe) continue;
        if (!first) {
          first = r;
          continue;
        }
        EXPECT_EQ(r.sqnr_db, first->sqnr_db) << CpuLevelName(level) << " cols " << cols;
        EXPECT_EQ(r.rel_l2_error, first->rel_l2_error) << CpuLevelName(level);
        EXPECT_EQ(r.max_abs_error, first->max_abs_error) << CpuLevelName(level);
        EXPECT_EQ(r.rel_output_error, first->rel_output_error) << CpuLevelName(level);
      }
    }
    ASSERT_TRUE(first.has_value());
  }
}

TEST(QualityAccumulatorTest, ExactResultHasNoSqnr) {
  std::vector<float> w = ::quantd::testing::RandomFloats(32 * 4, 3, 0.1f);
  QualityAccumulator acc(32);
  acc.AddColumns(w.data(), w.data(), 4);
  TensorReport r;
  acc.Fill(&r);
  EXPECT_FALSE(r.sqnr_db.has_value());
  ASSERT_TRUE(r.rel_l2_error.has_value());
  EXPECT_EQ(*r.rel_l2_error, 0.0);
  ASSERT_TRUE(r.max_abs_error.has_value());
  EXPECT_EQ(*r.max_abs_error, 0.0);

  std::vector<float> zeros(w.size(), 0.0f);
  QualityAccumulator off(32);
  off.AddColumns(zeros.data(), w.data(), 4);  // all-zero weights: SQNR is -infinity
  TensorReport z;
  off.Fill(&z);
  EXPECT_FALSE(z.sqnr_db.has_value());
  EXPECT_EQ(*z.rel_l2_error, 1.0);
}

}  // namespace
}  // namespace quantd::core::quant
