#include "quantd/server/upload_store.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
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

// ---------------------------------------------------------------- space and failures

namespace fault {
// Open file descriptors of this process.
int OpenFds() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}
}  // namespace fault

TEST_F(UploadStoreTest, UploadsReserveTheirDeclaredSizeAtTheStart) {
  blob_options_.max_store_bytes = 100;
  Reopen();
  const std::string seventy(70, 'a');
  auto first = store_->OpenUpload(Header("upload-r1", {seventy}));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(blobs_->reserved_bytes(), 70u);
  // Nothing written yet, but the first upload was promised 70 of the 100.
  auto second = store_->OpenUpload(Header("upload-r2", {seventy}));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted) << second.status();
  // Bytes move from reserved to used as they arrive; the rest is released
  // by the commit.
  ASSERT_TRUE((*first)->Append(0, seventy.substr(0, 30)).ok());
  EXPECT_EQ(store_->ReservedFor("upload-r1"), 40u);
  EXPECT_EQ(blobs_->used_bytes(), 30u);
  ASSERT_TRUE((*first)->Append(30, seventy.substr(30)).ok());
  ASSERT_TRUE((*first)->Finish(Digests({seventy})).ok());
  EXPECT_EQ(blobs_->reserved_bytes(), 0u);
}

TEST_F(UploadStoreTest, AbortUploadRemovesThePartialAndReleasesItsRoom) {
  blob_options_.max_store_bytes = 100;
  Reopen();
  const std::string seventy(70, 'a');
  {
    auto w = store_->OpenUpload(Header("upload-a1", {seventy}));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(0, "abc").ok());
    // A stream still holds it.
    EXPECT_EQ(store_->AbortUpload("upload-a1").code(), absl::StatusCode::kAborted);
  }
  EXPECT_EQ(store_->OpenUpload(Header("upload-a2", {seventy})).status().code(),
            absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(store_->AbortUpload("upload-a1").ok());
  EXPECT_EQ(blobs_->reserved_bytes(), 0u);
  EXPECT_EQ(blobs_->used_bytes(), 0u);
  EXPECT_EQ(store_->GetUploadStatus("upload-a1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->AbortUpload("upload-a1").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->AbortUpload("../x").code(), absl::StatusCode::kInvalidArgument);
  auto w = store_->OpenUpload(Header("upload-a2", {seventy}));
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE((*w)->Append(0, seventy).ok());
  ASSERT_TRUE((*w)->Finish(Digests({seventy})).ok());
  w->reset();
  // A committed upload is not aborted: its model is deleted with DeleteModel.
  EXPECT_EQ(store_->AbortUpload("upload-a2").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(UploadStoreTest, ExpiredUploadsReleaseTheirRoom) {
  {
    auto w = store_->OpenUpload(Header("upload-e1", {"0123456789"}));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(0, "012").ok());
  }
  EXPECT_EQ(blobs_->reserved_bytes(), 7u);
  EXPECT_EQ(store_->ExpireUploads(-1), 1);
  EXPECT_EQ(blobs_->reserved_bytes(), 0u);
}

TEST_F(UploadStoreTest, RestartReclaimsOrphansAndReservesWhatResumableUploadsNeed) {
  {
    auto w = store_->OpenUpload(Header("upload-s1", {"0123456789", "abcdef"}));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(0, "0123").ok());
  }
  const std::string uploads = root_ + "/uploads";
  // A directory a crash left before its header, a stray file, a temp file
  // inside a live upload.
  fs::create_directories(uploads + "/0123456789abcdef0123456789abcdef");
  { std::ofstream(uploads + "/0123456789abcdef0123456789abcdef/f0") << "orphan bytes"; }
  { std::ofstream(uploads + "/stray") << "x"; }
  std::string live;
  for (const auto& e : fs::directory_iterator(uploads)) {
    if (fs::exists(e.path() / "header.pb")) live = e.path().string();
  }
  ASSERT_FALSE(live.empty());
  { std::ofstream(live + "/header.pb.tmp-abc") << "x"; }
  Reopen();
  EXPECT_EQ(store_->recovery().orphans_removed, 2);
  EXPECT_EQ(store_->recovery().resumable, 1);
  EXPECT_FALSE(fs::exists(uploads + "/stray"));
  EXPECT_FALSE(fs::exists(live + "/header.pb.tmp-abc"));
  EXPECT_EQ(store_->ReservedFor("upload-s1"), 12u);
  EXPECT_EQ(blobs_->reserved_bytes(), 12u);
  auto status = store_->GetUploadStatus("upload-s1");
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->committed_bytes(), 4u);
}

TEST_F(UploadStoreTest, RestartDropsIncompleteUploadsThatCanNoLongerFit) {
  blob_options_.max_store_bytes = 200;
  Reopen();
  const std::string seventy(70, 'a');
  for (const char* id : {"upload-d1", "upload-d2"}) {
    auto w = store_->OpenUpload(Header(id, {seventy}));
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Append(0, "abc").ok());
  }
  // Restarted with a smaller store: only one of the two can still finish.
  blob_options_.max_store_bytes = 100;
  Reopen();
  EXPECT_EQ(store_->recovery().resumable, 1);
  EXPECT_EQ(store_->recovery().dropped_for_room, 1);
  const bool d1 = store_->GetUploadStatus("upload-d1").ok();
  const bool d2 = store_->GetUploadStatus("upload-d2").ok();
  EXPECT_NE(d1, d2);
}

TEST_F(UploadStoreTest, CommitIsAllOrNothingWhenTheDiskIsFull) {
  const std::vector<std::string> files = {"onnx-bytes", "external-data-bytes"};
  for (const char* step : {"commit:part", "commit:record", "commit:model"}) {
    SCOPED_TRACE(step);
    std::string failing = step;
    upload_options_.inject_fault = [&failing](absl::string_view s) {
      return s == failing ? absl::ResourceExhaustedError("write: No space left on device")
                          : absl::OkStatus();
    };
    Reopen();
    const std::string id = absl::StrCat("upload-c-", std::string(1, step[7]));
    {
      auto w = store_->OpenUpload(Header(id, files));
      ASSERT_TRUE(w.ok()) << w.status();
      ASSERT_TRUE((*w)->Append(0, files[0] + files[1]).ok());
      auto model = (*w)->Finish(Digests(files));
      EXPECT_EQ(model.status().code(), absl::StatusCode::kResourceExhausted) << model.status();
    }
    // Nothing half-done: no model, no staging directory, every byte still
    // counted as received, so a retry needs no more space.
    auto status = store_->GetUploadStatus(id);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_FALSE(status->complete());
    EXPECT_EQ(status->committed_bytes(), 29u);
    for (const auto& e : fs::recursive_directory_iterator(root_ + "/uploads")) {
      EXPECT_NE(e.path().filename(), "model") << e.path();
      EXPECT_NE(e.path().filename(), "done.pending") << e.path();
    }
    EXPECT_TRUE(fs::is_empty(root_ + "/models"));
    // The retry (a new stream) commits.
    failing.clear();
    auto w = store_->OpenUpload(Header(id, files));
    ASSERT_TRUE(w.ok()) << w.status();
    EXPECT_EQ((*w)->committed_bytes(), 29u);
    auto model = (*w)->Finish(Digests(files));
    ASSERT_TRUE(model.ok()) << model.status();
    w->reset();
    EXPECT_TRUE(store_->GetUploadStatus(id)->complete());
    ASSERT_TRUE(blobs_->DeleteModel(model->model_id()).ok());
  }
}

TEST_F(UploadStoreTest, RestartUndoesACommitInterruptedBeforeItsCommitPoint) {
  const std::vector<std::string> files = {"onnx-bytes", "external-data-bytes"};
  std::string dir;
  {
    auto w = store_->OpenUpload(Header("upload-i1", files));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(0, files[0] + files[1]).ok());
  }
  for (const auto& e : fs::directory_iterator(root_ + "/uploads")) dir = e.path().string();
  // As a crash leaves it: the first part moved into the staging directory.
  fs::create_directories(dir + "/model");
  fs::rename(dir + "/f0", dir + "/model/model.onnx");
  Reopen();
  EXPECT_EQ(store_->recovery().commits_undone, 1);
  EXPECT_EQ(store_->GetUploadStatus("upload-i1")->committed_bytes(), 29u);
  auto w = store_->OpenUpload(Header("upload-i1", files));
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE((*w)->Finish(Digests(files)).ok());
}

TEST_F(UploadStoreTest, AStreamHoldsAtMostOneOpenFile) {
  v1::UploadHeader h;
  h.set_upload_id("upload-fd1");
  std::string all;
  for (int i = 0; i < 64; ++i) {
    auto* f = h.add_files();
    f->set_name(absl::StrCat("file", i, ".bin"));
    f->set_size_bytes(4);
    all += absl::StrCat(1000 + i);
  }
  h.mutable_files(0)->set_name("model.onnx");
  const int before = fault::OpenFds();
  auto w = store_->OpenUpload(h);
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_LE(fault::OpenFds(), before + 1);
  ASSERT_TRUE((*w)->Append(0, all.substr(0, 130)).ok());  // 32 files and a half
  EXPECT_LE(fault::OpenFds(), before + 1);
  ASSERT_TRUE((*w)->Append(130, all.substr(130)).ok());
  EXPECT_LE(fault::OpenFds(), before + 1);
  v1::UploadFinish fin;
  for (int i = 0; i < 64; ++i) fin.add_sha256(Sha256Hex(all.substr(4 * i, 4)));
  EXPECT_TRUE((*w)->Finish(fin).ok());
}

}  // namespace
}  // namespace quantd::server
