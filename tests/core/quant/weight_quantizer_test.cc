// Whole-matrix drivers: cancellation inside a tensor, and thread count
// never changes the bytes.
#include "quantd/core/quant/weight_quantizer.h"

#include <vector>

#include "gtest/gtest.h"
#include "quantd/core/base/thread_pool.h"
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

}  // namespace
}  // namespace quantd::core::quant
