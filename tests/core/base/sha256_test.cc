#include "quantd/core/base/sha256.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "quantd/testing/status_matchers.h"

namespace quantd::core {
namespace {
namespace fs = std::filesystem;
using ::quantd::testing::StatusIs;

// FIPS 180-2 test vectors.
constexpr char kEmpty[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbc[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr char kTwoBlocks[] = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";

std::string WriteTemp(const std::string& name, const std::string& bytes) {
  std::string path = (fs::path(::testing::TempDir()) / name).string();
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  return path;
}

TEST(Sha256Test, MatchesTheStandardVectors) {
  EXPECT_EQ(Sha256Hex(""), kEmpty);
  EXPECT_EQ(Sha256Hex("abc"), kAbc);
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"), kTwoBlocks);
}

TEST(Sha256Test, IncrementalUpdatesEqualOneShot) {
  Sha256 sha;
  sha.Update("a");
  sha.Update(std::string("b"));
  sha.Update("c", 1);
  EXPECT_EQ(sha.FinishHex(), kAbc);
}

TEST(Sha256Test, IsSha256HexTakesOnlyLowerCaseHexOfLength64) {
  EXPECT_TRUE(IsSha256Hex(kAbc));
  EXPECT_FALSE(IsSha256Hex(std::string(kAbc).substr(1)));
  EXPECT_FALSE(IsSha256Hex(std::string(kAbc) + "0"));
  std::string upper(kAbc);
  upper[0] = 'B';
  EXPECT_FALSE(IsSha256Hex(upper));
  EXPECT_FALSE(IsSha256Hex(std::string(64, 'g')));
}

TEST(Sha256Test, HashesFilesWholeAndByPrefixWithProgress) {
  const std::string bytes(3 << 20, 'x');  // several read blocks
  const std::string path = WriteTemp("sha256-file", bytes);
  std::vector<uint64_t> progress;
  auto whole = Sha256File(path, [&](uint64_t n) { progress.push_back(n); });
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(*whole, Sha256Hex(bytes));
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), bytes.size());

  Sha256 prefix;
  ASSERT_TRUE(HashFilePrefix(path, 100, &prefix).ok());
  EXPECT_EQ(prefix.FinishHex(), Sha256Hex(bytes.substr(0, 100)));
  Sha256 all;
  ASSERT_TRUE(HashFilePrefix(path, UINT64_MAX, &all).ok());
  EXPECT_EQ(all.FinishHex(), Sha256Hex(bytes));
}

TEST(Sha256Test, ShortAndMissingFilesAreErrors) {
  const std::string path = WriteTemp("sha256-short", "abc");
  Sha256 sha;
  EXPECT_THAT(HashFilePrefix(path, 4, &sha),
              StatusIs(absl::StatusCode::kDataLoss, "shorter than expected"));
  EXPECT_THAT(Sha256File(path + ".missing").status(),
              StatusIs(absl::StatusCode::kNotFound, "open "));
}

}  // namespace
}  // namespace quantd::core
