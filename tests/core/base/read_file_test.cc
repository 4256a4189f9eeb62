#include "quantd/core/base/read_file.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "quantd/testing/status_matchers.h"

namespace quantd::core {
namespace {
namespace fs = std::filesystem;
using ::quantd::testing::StatusIs;

TEST(ReadFileUpToTest, ReadsAFileWithinTheBoundAndRefusesTheRest) {
  const fs::path dir = fs::path(::testing::TempDir()) / "read_file_up_to";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "config.json").string();
  std::ofstream(path, std::ios::binary) << std::string("{\"a\":\0}", 7);

  auto whole = ReadFileUpTo(path, 7, "JSON");
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(*whole, std::string("{\"a\":\0}", 7));  // bytes, NULs included

  EXPECT_THAT(ReadFileUpTo(path, 6, "JSON").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "7 bytes is larger than the 6-byte limit for JSON"));
  EXPECT_THAT(ReadFileUpTo((dir / "missing.json").string(), 100, "JSON").status(),
              StatusIs(absl::StatusCode::kNotFound, "no such file"));
  EXPECT_THAT(ReadFileUpTo(dir.string(), 100, "JSON").status(),  // a folder is not a file
              StatusIs(absl::StatusCode::kNotFound, "no such file"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace quantd::core
