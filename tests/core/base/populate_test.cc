// PopulateParallel only faults pages in: what a buffer holds is unchanged,
// on one thread and on several, whatever the range's alignment and size.
#include "quantd/core/base/populate.h"

#include <cstdint>
#include <cstdlib>
#include <memory>
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

}  // namespace
}  // namespace quantd::core
