#include "quantd/server/upload_store.h"

#include <filesystem>

#include "gtest/gtest.h"
#include "quantd/core/base/sha256.h"
#include "quantd/server/blob_store.h"
#include "quantd/server/ids.h"
#include "quantd/testing/fake_clock.h"

namespace quantd::server {
namespace {
namespace fs = std::filesystem;
using core::Sha256Hex;

class UploadStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("uploadstore-" + RandomHex(6))).string();
    blob_options_.root = root_;
    blob_options_.min_free_bytes = 0;
    Reopen();
  }
  void TearDown() override { fs::remove_all(root_); }

  void Reopen() {
    store_.reset();
    blobs_.reset();
    auto blobs = BlobStore::Open(blob_options_);
    ASSERT_TRUE(blobs.ok()) << blobs.status();
    blobs_ = *std::move(blobs);
    auto store = UploadStore::Open(blobs_.get(), upload_options_, &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

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

  testing::FakeClock clock_;
  std::string root_;
  BlobStoreOptions blob_options_;
  UploadStoreOptions upload_options_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<UploadStore> store_;
};

TEST_F(UploadStoreTest, CommitsVerifiedMultiFileModel) {
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
  auto path = blobs_->ModelInputPath(model->model_id());
  ASSERT_TRUE(path.ok());
  EXPECT_TRUE(fs::exists(*path));
  EXPECT_TRUE(fs::exists(fs::path(*path).parent_path() / "model.onnx.data"));
  auto status = store_->GetUploadStatus("upload-0001");
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(status->complete());
  EXPECT_EQ(status->model_id(), model->model_id());
}

TEST_F(UploadStoreTest, DigestMismatchIsDataLossAndDiscardsUpload) {
  std::vector<std::string> files = {"abc"};
  auto w = store_->OpenUpload(Header("upload-0002", files));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(0, "abd").ok());
  auto model = (*w)->Finish(Digests(files));
  EXPECT_EQ(model.status().code(), absl::StatusCode::kDataLoss);
  w->reset();
  EXPECT_EQ(store_->GetUploadStatus("upload-0002").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(UploadStoreTest, ResumesAfterWriterIsDropped) {
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

TEST_F(UploadStoreTest, SecondWriterIsAborted) {
  std::vector<std::string> files = {"abc"};
  auto w1 = store_->OpenUpload(Header("upload-0004", files));
  ASSERT_TRUE(w1.ok());
  auto w2 = store_->OpenUpload(Header("upload-0004", files));
  EXPECT_EQ(w2.status().code(), absl::StatusCode::kAborted);
}

TEST_F(UploadStoreTest, ExpireUploadsSkipsOpenAndRecentUploads) {
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

TEST_F(UploadStoreTest, RejectsUnsafeNamesAndIds) {
  for (const char* name : {"../x", "a/b", "", ".x", "x.tmp", "manifest.pb"}) {
    v1::UploadHeader h = Header("upload-0005", {"abc"});
    h.mutable_files(0)->set_name(name);
    EXPECT_EQ(store_->OpenUpload(h).status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
  EXPECT_EQ(store_->OpenUpload(Header("../../x", {"a"})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(UploadStoreTest, LimitsAreResourceExhausted) {
  upload_options_.max_upload_bytes = 4;
  Reopen();
  EXPECT_EQ(store_->OpenUpload(Header("upload-0006", {"12345"})).status().code(),
            absl::StatusCode::kResourceExhausted);
  upload_options_.max_upload_bytes = 1000;
  blob_options_.min_free_bytes = 1ull << 62;
  Reopen();
  EXPECT_EQ(store_->OpenUpload(Header("upload-0007", {"12345"})).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(UploadStoreTest, PartBytesCountInTheBlobStoreAcrossRestarts) {
  {
    auto w = store_->OpenUpload(Header("upload-0008", {"0123456789"}));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(0, "01234").ok());
  }
  EXPECT_EQ(blobs_->used_bytes(), 5u);
  Reopen();
  EXPECT_GT(blobs_->used_bytes(), 5u);  // the part and the header, counted on open
  EXPECT_EQ(store_->ExpireUploads(-1), 1);
  EXPECT_EQ(blobs_->used_bytes(), 0u);
}

TEST_F(UploadStoreTest, SameModelTwiceKeepsTheFirstAndItsBytesOnce) {
  const std::vector<std::string> files = {"same-bytes"};
  for (const char* id : {"upload-0009", "upload-0010"}) {
    auto w = store_->OpenUpload(Header(id, files));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(0, files[0]).ok());
    auto model = (*w)->Finish(Digests(files));
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ(model->upload_id(), "upload-0009");
  }
  v1::UploadHeader known = Header("upload-0011", files);
  known.mutable_files(0)->set_sha256(Sha256Hex(files[0]));
  auto found = store_->FindCommittedModel(known);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->model_id(), ModelIdFor(found->files()));
}

TEST_F(UploadStoreTest, CheckpointUploadListsConfigFirstAndCarriesItsName) {
  const std::vector<std::string> contents = {"{}", "weights"};
  v1::UploadHeader h;
  h.set_upload_id("ckpt-upload-1");
  h.add_files()->set_name("config.json");
  h.mutable_files(0)->set_size_bytes(2);
  h.add_files()->set_name("model.safetensors");
  h.mutable_files(1)->set_size_bytes(7);
  // The name is required (general.name derives from it) and must be plain.
  EXPECT_EQ(store_->OpenUpload(h).status().code(), absl::StatusCode::kInvalidArgument);
  h.set_model_name("../up");
  EXPECT_EQ(store_->OpenUpload(h).status().code(), absl::StatusCode::kInvalidArgument);
  h.set_model_name("phi3-tiny-shared");
  // A checkpoint header whose first file is not config.json is refused.
  v1::UploadHeader swapped = h;
  swapped.set_format(v1::MODEL_FORMAT_HF_CHECKPOINT);
  std::swap(*swapped.mutable_files(0), *swapped.mutable_files(1));
  EXPECT_EQ(store_->OpenUpload(swapped).status().code(), absl::StatusCode::kInvalidArgument);
  auto w = store_->OpenUpload(h);
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->Append(0, contents[0] + contents[1]).ok());
  auto model = (*w)->Finish(Digests(contents));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->format(), v1::MODEL_FORMAT_HF_CHECKPOINT);
  EXPECT_EQ(model->model_name(), "phi3-tiny-shared");
  // The id is the files' digest: the name is not part of it.
  EXPECT_EQ(model->model_id(), ModelIdFor(model->files()));
  auto stored = blobs_->GetModel(model->model_id());
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->model_name(), "phi3-tiny-shared");
}

}  // namespace
}  // namespace quantd::server
