#include "quantd/core/base/errno_status.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "quantd/testing/status_matchers.h"

namespace quantd::core {
namespace {
using ::quantd::testing::StatusIs;

TEST(ErrnoStatusTest, MapsEachErrnoClassToItsCode) {
  EXPECT_EQ(ErrnoToStatusCode(ENOSPC), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoToStatusCode(EDQUOT), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoToStatusCode(EMFILE), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoToStatusCode(ENFILE), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrnoToStatusCode(EACCES), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoToStatusCode(EPERM), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoToStatusCode(EROFS), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrnoToStatusCode(ENOENT), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoToStatusCode(ENOTDIR), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrnoToStatusCode(EIO), absl::StatusCode::kInternal);
  EXPECT_EQ(ErrnoToStatusCode(EBADF), absl::StatusCode::kInternal);
}

TEST(ErrnoStatusTest, MessageNamesTheOperationThePathAndTheError) {
  absl::Status st = ErrnoToStatus(ENOSPC, "write", "/data/x");
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kResourceExhausted,
                           std::string("write /data/x: ") + std::strerror(ENOSPC)));
}

}  // namespace
}  // namespace quantd::core
