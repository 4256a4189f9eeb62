#include "quantd/server/ids.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "quantd/core/base/sha256.h"

namespace quantd::server {
namespace {

TEST(IdsTest, FileNamesArePlainAndNotReserved) {
  for (const char* ok : {"model.onnx", "model.onnx.data", "a", "A_b-c.1"}) {
    EXPECT_TRUE(ValidateFileName(ok).ok()) << ok;
  }
  for (const char* bad :
       {"", "../x", "a/b", ".x", "-x", "x.tmp", "x.tmp-12", "manifest.pb", "a b"}) {
    EXPECT_EQ(ValidateFileName(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(ValidateFileName(std::string(128, 'a')).ok());
  EXPECT_FALSE(ValidateFileName(std::string(129, 'a')).ok());
}

TEST(IdsTest, ModelHexTakesOnlySha256Ids) {
  const std::string hex(64, 'a');
  auto got = ModelHex("sha256:" + hex);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, hex);
  const std::vector<std::string> bad_ids = {hex, "sha256:" + std::string(63, 'a'),
                                            "sha256:../../etc", "sha256:" + std::string(64, 'A'),
                                            "md5:" + hex};
  for (const std::string& bad : bad_ids) {
    EXPECT_EQ(ModelHex(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(IdsTest, JobIdsAreMadeInTheFormTheyAreCheckedIn) {
  const std::string id = NewJobId();
  EXPECT_TRUE(ValidateJobId(id).ok()) << id;
  EXPECT_NE(NewJobId(), id);
  for (const char* bad : {"", "job_", "job_0123456789abcdef012", "job_0123456789abcdef012g",
                          "JOB_0123456789abcdef0123", "../0123456789abcdef0123"}) {
    EXPECT_EQ(ValidateJobId(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(IdsTest, UploadIdsAreShortAndPlain) {
  EXPECT_TRUE(ValidateUploadId("upload-0001").ok());
  EXPECT_TRUE(ValidateUploadId(std::string(64, 'x')).ok());
  const std::vector<std::string> bad_ids = {"short", std::string(65, 'x'), "../../etc/x",
                                            "upload 01"};
  for (const std::string& bad : bad_ids) {
    EXPECT_EQ(ValidateUploadId(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(IdsTest, ModelIdForFollowsTheDocumentedFormula) {
  google::protobuf::RepeatedPtrField<v1::FileInfo> files;
  v1::FileInfo* f = files.Add();
  f->set_name("model.onnx");
  f->set_size_bytes(10);
  f->set_sha256(std::string(64, 'b'));
  EXPECT_EQ(ModelIdFor(files), "sha256:" + core::Sha256Hex("quantd-model-v1\nmodel.onnx\n10\n" +
                                                           std::string(64, 'b') + "\n"));
}

// A 4 MiB id is shown cut to its first bytes, not echoed whole.
TEST(IdsTest, MalformedIdsAreQuotedShort) {
  const std::string huge(4 << 20, 'a');
  for (const absl::Status& st : {ValidateJobId(huge), ValidateUploadId(huge),
                                 ValidateFileName(huge), ModelHex(huge).status()}) {
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_LT(st.message().size(), 300u) << st.message().substr(0, 300);
  }
}

}  // namespace
}  // namespace quantd::server
