#include "quantd/server/blob_store.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/server/digest.h"

namespace quantd::server {
namespace {
namespace fs = std::filesystem;

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("blobstore-" + RandomHex(6))).string();
    options_.root = root_;
    options_.min_free_bytes = 0;
    auto store = BlobStore::Open(options_, &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  void TearDown() override { fs::remove_all(root_); }

  v1::UploadHeader Header(const std::string& id, const std::vector<std::string>& contents) {
    v1::UploadHeader h;
    h.set_upload_id(id);
    for (size_t i = 0; i < contents.size(); ++i) {
      auto* f = h.add_files();
      f->set_name(i == 0 ? "model.onnx" : "model.onnx.data");
      f->set_size_bytes(contents[i].size());
    }
    return h;
  }
  static v1::UploadFinish Digests(const std::vector<std::string>& contents) {
    v1::UploadFinish fin;
    for (const auto& c : contents) fin.add_sha256(Sha256Hex(c));
    return fin;
  }

  FakeClock clock_;
  std::string root_;
  BlobStoreOptions options_;
  std::unique_ptr<BlobStore> store_;
};

TEST_F(BlobStoreTest, CommitsVerifiedMultiFileModel) {
  std::vector<std::string> files = {"onnx-bytes", "external-data-bytes"};
  auto w = store_->OpenUpload(Header("upload-0001", files));
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->Append(0, files[0] + files[1].substr(0, 3)).ok());
  ASSERT_TRUE((*w)->Append(13, files[1].substr(3)).ok());
  auto model = (*w)->Finish(Digests(files));
  ASSERT_TRUE(model.ok()) << model.status();
  // The documented identity formula (Model.model_id in quantd.proto).
  const std::string manifest = "quantd-model-v1\nmodel.onnx\n10\n" + Sha256Hex(files[0]) +
                               "\nmodel.onnx.data\n19\n" + Sha256Hex(files[1]) + "\n";
  EXPECT_EQ(model->model_id(), "sha256:" + Sha256Hex(manifest));
  EXPECT_EQ(model->files(1).sha256(), Sha256Hex(files[1]));
  auto path = store_->ModelInputPath(model->model_id());
  ASSERT_TRUE(path.ok());
  EXPECT_TRUE(fs::exists(*path));
  EXPECT_TRUE(fs::exists(fs::path(*path).parent_path() / "model.onnx.data"));
  auto status = store_->GetUploadStatus("upload-0001");
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(status->complete());
  EXPECT_EQ(status->model_id(), model->model_id());
}

TEST_F(BlobStoreTest, DigestMismatchIsDataLossAndDiscardsUpload) {
  std::vector<std::string> files = {"abc"};
  auto w = store_->OpenUpload(Header("upload-0002", files));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(0, "abd").ok());
  auto model = (*w)->Finish(Digests(files));
  EXPECT_EQ(model.status().code(), absl::StatusCode::kDataLoss);
  w->reset();
  EXPECT_EQ(store_->GetUploadStatus("upload-0002").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(BlobStoreTest, ResumesAfterWriterIsDropped) {
  std::vector<std::string> files = {"0123456789", "abcdef"};
  {
    auto w = store_->OpenUpload(Header("upload-0003", files));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(0, "0123456789abc").ok());
  }
  auto status = store_->GetUploadStatus("upload-0003");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->committed_bytes(), 13u);
  auto w = store_->OpenUpload(Header("upload-0003", files));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->committed_bytes(), 13u);
  EXPECT_EQ((*w)->Append(0, "x").code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*w)->Append(13, "def").ok());
  auto model = (*w)->Finish(Digests(files));
  EXPECT_TRUE(model.ok()) << model.status();
}

TEST_F(BlobStoreTest, SecondWriterIsAborted) {
  std::vector<std::string> files = {"abc"};
  auto w1 = store_->OpenUpload(Header("upload-0004", files));
  ASSERT_TRUE(w1.ok());
  auto w2 = store_->OpenUpload(Header("upload-0004", files));
  EXPECT_EQ(w2.status().code(), absl::StatusCode::kAborted);
}

TEST_F(BlobStoreTest, RejectsUnsafeNamesAndIds) {
  for (const char* name : {"../x", "a/b", "", ".x", "x.tmp", "manifest.pb"}) {
    v1::UploadHeader h = Header("upload-0005", {"abc"});
    h.mutable_files(0)->set_name(name);
    EXPECT_EQ(store_->OpenUpload(h).status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  EXPECT_EQ(store_->OpenUpload(Header("../../x", {"a"})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetModel("sha256:../../etc").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateWorkDir("../x").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(BlobStoreTest, LimitsAreResourceExhausted) {
  options_.max_upload_bytes = 4;
  auto store = BlobStore::Open(options_, &clock_);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->OpenUpload(Header("upload-0006", {"12345"})).status().code(),
            absl::StatusCode::kResourceExhausted);
  options_.max_upload_bytes = 1000;
  options_.min_free_bytes = 1ull << 62;
  store = BlobStore::Open(options_, &clock_);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->OpenUpload(Header("upload-0007", {"12345"})).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(BlobStoreTest, ArtifactCommitOpenAndCleanup) {
  const std::string job = "job_0123456789abcdef0123";
  auto work = store_->CreateWorkDir(job);
  ASSERT_TRUE(work.ok());
  std::ofstream(*work + "/model.onnx") << "quantized";
  auto artifact = store_->CommitArtifact(job, {"model.onnx"});
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  EXPECT_EQ(artifact->files(0).sha256(), Sha256Hex("quantized"));
  auto reader = store_->OpenArtifactFile(job, "");
  ASSERT_TRUE(reader.ok());
  std::string data;
  ASSERT_TRUE((*reader)->ReadAt(2, 100, &data).ok());
  EXPECT_EQ(data, "antized");
  EXPECT_EQ(store_->OpenArtifactFile(job, "other").status().code(), absl::StatusCode::kNotFound);
  // A crash left a work dir and an artifact the journal does not know.
  ASSERT_TRUE(store_->CreateWorkDir("job_ffffffffffffffffffff").ok());
  store_->CleanupAfterRestart([](const std::string&) { return false; });
  EXPECT_TRUE(fs::is_empty(root_ + "/work"));
  EXPECT_FALSE(fs::exists(root_ + "/artifacts/" + job));
}

TEST_F(BlobStoreTest, ExpireUploadsSkipsOpenAndRecentUploads) {
  {
    auto w = store_->OpenUpload(Header("upload-old1", {"abc"}));
    ASSERT_TRUE(w.ok());
  }
  auto open = store_->OpenUpload(Header("upload-open", {"abc"}));
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(store_->ExpireUploads(60 * 60 * 1000), 0);  // all recent
  EXPECT_EQ(store_->ExpireUploads(-1), 1);              // all old; the open one stays
  EXPECT_EQ(store_->GetUploadStatus("upload-old1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetUploadStatus("upload-open").ok());
}

}  // namespace
}  // namespace quantd::server
