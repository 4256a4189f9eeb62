// HashThread hashes every range added, in order, and WaitFor means done.
#include "hash_thread.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace quantd::client::internal {
namespace {

TEST(HashThreadTest, RangesAreHashedInOrderAndSlotsCanBeReusedAfterWaitFor) {
  // Four buffers in turn, as a download uses its messages: each is
  // overwritten only after WaitFor(its last ticket).
  std::string buffers[4];
  uint64_t tickets[4] = {};
  std::string all;
  core::Sha256 sha;
  {
    HashThread hasher(&sha);
    for (int i = 0; i < 200; ++i) {
      const int slot = i % 4;
      hasher.WaitFor(tickets[slot]);
      buffers[slot].assign(1000 + i * 37, static_cast<char>('a' + i % 26));
      all += buffers[slot];
      tickets[slot] = hasher.Add(buffers[slot]);
    }
    hasher.Finish();
    EXPECT_EQ(sha.FinishHex(), core::Sha256Hex(all));
  }
}

TEST(HashThreadTest, DestructorHashesWhatWasAdded) {
  core::Sha256 sha;
  const std::string data(1 << 20, 'x');
  {
    HashThread hasher(&sha);
    hasher.Add(data);
    hasher.Add(data);
  }
  EXPECT_EQ(sha.FinishHex(), core::Sha256Hex(data + data));
}

TEST(HashThreadTest, WaitForZeroReturnsAtOnce) {
  core::Sha256 sha;
  HashThread hasher(&sha);
  hasher.WaitFor(0);
}

}  // namespace
}  // namespace quantd::client::internal
