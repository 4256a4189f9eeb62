// PopulateParallel only faults pages in: what a buffer holds is unchanged,
// on one thread and on several, whatever the range's alignment and size.
// Recycled buffers come back zeroed, within the size and count limits.
#include "quantd/core/base/populate.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "quantd/core/base/thread_pool.h"

namespace quantd::core {
namespace {

TEST(PopulateTest, LeavesContentsAndFreshZerosAsTheyAre) {
  ThreadPool pool(1);
  RunContext parallel;
  parallel.pool = &pool;
  parallel.parallelism = 2;
  const RunContext inline_ctx;
  for (const RunContext* ctx : {&inline_ctx, static_cast<const RunContext*>(&parallel)}) {
    for (size_t bytes : {size_t{100}, (size_t{9} << 20) + 123, size_t{17} << 20}) {
      SCOPED_TRACE(::testing::Message() << bytes << " bytes, parallelism " << ctx->Parallelism());
      // Written before: unchanged, from an unaligned start to an unaligned end.
      std::unique_ptr<uint8_t[]> written(new uint8_t[bytes + 7]);
      for (size_t i = 0; i < bytes + 7; ++i) written[i] = static_cast<uint8_t>(i * 31 + i / 4096);
      PopulateParallel(written.get() + 3, bytes, *ctx);
      for (size_t i = 0; i < bytes + 7; ++i) {
        ASSERT_EQ(written[i], static_cast<uint8_t>(i * 31 + i / 4096)) << "at " << i;
      }
      // A fresh vector populated, then sized: all zeros, then writable.
      std::vector<uint8_t> fresh = PopulatedZeros(bytes, *ctx);
      ASSERT_EQ(fresh.size(), bytes);
      for (size_t i = 0; i < bytes; ++i) ASSERT_EQ(fresh[i], 0) << "at " << i;
      fresh[bytes - 1] = 9;
      EXPECT_EQ(fresh[bytes - 1], 9);
    }
  }
}

class RecycleTest : public ::testing::Test {
 protected:
  void SetUp() override { ReleaseRecycledBuffers(); }
  void TearDown() override { ReleaseRecycledBuffers(); }
  const RunContext ctx_;
};

TEST_F(RecycleTest, AKeptBufferServesTheNextRequestZeroed) {
  std::vector<uint8_t> a = PopulatedZeros(size_t{8} << 20, ctx_);
  std::fill(a.begin(), a.end(), 0xAB);
  const uint8_t* where = a.data();
  RecycleBuffer(std::move(a));
  EXPECT_EQ(RecycledBufferBytes(), size_t{8} << 20);
  const size_t want = (size_t{6} << 20) + 5;
  std::vector<uint8_t> b = PopulatedZeros(want, ctx_);
  EXPECT_EQ(b.data(), where);  // the same memory, taken back
  ASSERT_EQ(b.size(), want);
  for (size_t i = 0; i < want; ++i) ASSERT_EQ(b[i], 0) << "at " << i;
  EXPECT_EQ(RecycledBufferBytes(), 0u);
}

TEST_F(RecycleTest, PopulatedBufferReusesWithoutTheZeroFill) {
  std::vector<uint8_t> a = PopulatedBuffer(size_t{8} << 20, ctx_);  // fresh: zeros
  ASSERT_EQ(a.size(), size_t{8} << 20);
  for (size_t i = 0; i < a.size(); i += 4093) ASSERT_EQ(a[i], 0) << "at " << i;
  std::fill(a.begin(), a.end(), 0xAB);
  const uint8_t* where = a.data();
  RecycleBuffer(std::move(a));
  const size_t want = (size_t{6} << 20) + 5;
  std::vector<uint8_t> b = PopulatedBuffer(want, ctx_);
  EXPECT_EQ(b.data(), where);
  EXPECT_EQ(b.size(), want);  // the caller writes it whole
  // Grown past its old size: zeros there.
  RecycleBuffer(std::move(b));
  std::vector<uint8_t> c = PopulatedBuffer(size_t{8} << 20, ctx_);
  EXPECT_EQ(c.data(), where);
  ASSERT_EQ(c.size(), size_t{8} << 20);
  for (size_t i = want; i < c.size(); ++i) ASSERT_EQ(c[i], 0) << "at " << i;
}

TEST_F(RecycleTest, SmallAndHugeBuffersAreNotKept) {
  std::vector<uint8_t> small(size_t{1} << 20, 1);
  RecycleBuffer(std::move(small));
  EXPECT_EQ(small.size(), size_t{1} << 20);  // left to its owner
  std::vector<uint8_t> huge;
  huge.reserve(size_t{300} << 20);  // capacity only: no pages touched
  RecycleBuffer(std::move(huge));
  EXPECT_EQ(huge.capacity(), size_t{300} << 20);
  EXPECT_EQ(RecycledBufferBytes(), 0u);
}

TEST_F(RecycleTest, AtMostTwoKeptAndAMissFreesThem) {
  // Three alive at once (a request would take a kept one), then given back.
  std::vector<std::vector<uint8_t>> three;
  for (int i = 0; i < 3; ++i) three.push_back(PopulatedZeros(size_t{5} << 20, ctx_));
  for (auto& v : three) RecycleBuffer(std::move(v));
  EXPECT_EQ(RecycledBufferBytes(), size_t{10} << 20);
  // Larger than any kept one: they are freed, a fresh buffer is made.
  std::vector<uint8_t> big = PopulatedZeros(size_t{9} << 20, ctx_);
  EXPECT_EQ(big.size(), size_t{9} << 20);
  EXPECT_EQ(RecycledBufferBytes(), 0u);
  // The smallest kept buffer that holds a request is the one taken.
  std::vector<uint8_t> five = PopulatedZeros(size_t{5} << 20, ctx_);
  RecycleBuffer(std::move(big));
  RecycleBuffer(std::move(five));
  std::vector<uint8_t> c = PopulatedZeros(size_t{4} << 20, ctx_);
  EXPECT_EQ(c.capacity(), size_t{5} << 20);
  EXPECT_EQ(RecycledBufferBytes(), size_t{9} << 20);
  ReleaseRecycledBuffers();
  EXPECT_EQ(RecycledBufferBytes(), 0u);
}

TEST_F(RecycleTest, ThreadsTakeAndGiveBackZeroedBuffers) {
  auto work = [this](uint8_t mark) {
    for (int i = 0; i < 40; ++i) {
      const size_t n = (size_t{4} << 20) + static_cast<size_t>(i % 5) * 4096;
      std::vector<uint8_t> v = PopulatedZeros(n, ctx_);
      ASSERT_EQ(v.size(), n);
      for (size_t j = 0; j < n; j += 4093) ASSERT_EQ(v[j], 0) << "at " << j;
      ASSERT_EQ(v[n - 1], 0);
      std::fill(v.begin(), v.end(), mark);
      RecycleBuffer(std::move(v));
    }
  };
  std::thread t1(work, 1), t2(work, 2);
  t1.join();
  t2.join();
  EXPECT_LE(RecycledBufferBytes(), size_t{2} * ((size_t{4} << 20) + 4 * 4096));
}

}  // namespace
}  // namespace quantd::core
