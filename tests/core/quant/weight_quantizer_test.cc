// Whole-matrix drivers: cancellation inside a tensor, and thread count
// never changes the bytes.
#include "quantd/core/quant/weight_quantizer.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
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
      for (bool fp16 : {false, true}) {
        for (bool transposed : {false, true}) {
          std::vector<float> w = ::quantd::testing::RandomFloats(k * n, 7, 0.1f);
          w[bad] = kValues[v];
          std::vector<uint16_t> h(w.size());
          for (size_t i = 0; i < w.size(); ++i) h[i] = FloatToHalf(w[i]);
          MatrixSource s;
          s.onnx_type = fp16 ? 10 : 1;
          s.bytes = fp16 ? absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(h.data()),
                                                     h.size() * 2)
                         : absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(w.data()),
                                                     w.size() * 4);
          s.k = k;
          s.n = n;
          s.row_stride = transposed ? 1 : n;
          s.col_stride = transposed ? k : 1;
          const std::string where =
              ::testing::PrintToString(std::vector<int64_t>{v, bad, fp16, transposed});
          const std::string element = "element " + std::to_string(bad) + " " + kNames[v];
          for (Int4Layout layout : {Int4Layout::kMatMulNBits, Int4Layout::kQdq}) {
            for (Int4Algorithm algorithm : {Int4Algorithm::kRtn, Int4Algorithm::kSearch}) {
              for (bool symmetric : {true, false}) {
                Int4Options o;
                o.layout = layout;
                o.algorithm = algorithm;
                o.symmetric = symmetric;
                TensorReport q;
                auto r = QuantizeInt4Matrix(s, o, ctx, &q);
                EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << where;
                EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr(element))
                    << where;
                EXPECT_FALSE(q.sqnr_db.has_value()) << where;
              }
            }
          }
          for (bool per_channel : {false, true}) {
            Int8Options o8;
            o8.per_channel = per_channel;
            o8.out_row_stride = n;
            TensorReport q;
            auto r = QuantizeInt8Matrix(s, o8, ctx, &q);
            EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << where;
            EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr(element)) << where;
            EXPECT_FALSE(q.sqnr_db.has_value()) << where;
          }
        }
      }
    }
  }
}

// An exact result has no finite SQNR: the report leaves it out rather than
// printing a made-up figure.
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
