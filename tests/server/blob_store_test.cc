#include "quantd/server/blob_store.h"

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "quantd/core/base/output_digests.h"
#include "quantd/core/base/sha256.h"
#include "quantd/server/ids.h"

namespace quantd::server {
namespace {
namespace fs = std::filesystem;

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("blobstore-" + RandomHex(6))).string();
    options_.root = root_;
    options_.min_free_bytes = 0;
    auto store = BlobStore::Open(options_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string root_;
  BlobStoreOptions options_;
  std::unique_ptr<BlobStore> store_;
};

TEST_F(BlobStoreTest, ArtifactCommitOpenAndCleanup) {
  const std::string job = "job_0123456789abcdef0123";
  auto work = store_->CreateWorkDir(job);
  ASSERT_TRUE(work.ok());
  std::ofstream(*work + "/model.onnx") << "quantized";
  auto artifact = store_->CommitArtifact(job, {"model.onnx"});
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  EXPECT_EQ(artifact->files(0).sha256(), core::Sha256Hex("quantized"));
  auto reader = store_->OpenArtifactFile(job, "");
  ASSERT_TRUE(reader.ok());
  auto mapped = (*reader)->Map();
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  const absl::Span<const uint8_t> bytes = (*mapped)->bytes();
  EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "quantized");
  // A file shorter than its manifest is refused, not mapped short.
  fs::resize_file(root_ + "/artifacts/" + job + "/model.onnx", 4);
  auto cut = store_->OpenArtifactFile(job, "");
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ((*cut)->Map().status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(store_->OpenArtifactFile(job, "other").status().code(), absl::StatusCode::kNotFound);
  // A crash left a work dir and an artifact the journal does not know.
  ASSERT_TRUE(store_->CreateWorkDir("job_ffffffffffffffffffff").ok());
  store_->CleanupAfterRestart([](const std::string&) { return false; });
  EXPECT_TRUE(fs::is_empty(root_ + "/work"));
  EXPECT_FALSE(fs::exists(root_ + "/artifacts/" + job));
}

// The digests the core computed while writing are used as they are when
// the file has the size they were computed for (the manifest takes the
// digest given, so a made-up one shows the file was not read back), and a
// file without one, or whose size differs, is hashed.
TEST_F(BlobStoreTest, ArtifactDigestsComputedWhileWritingSkipTheReadBack) {
  const std::string job = "job_0123456789abcdef0123";
  auto work = store_->CreateWorkDir(job);
  ASSERT_TRUE(work.ok());
  std::ofstream(*work + "/model.onnx") << "quantized";
  std::ofstream(*work + "/model.onnx.data") << "weights";
  std::ofstream(*work + "/genai_config.json") << "{}";
  core::OutputDigests written;
  const std::string made_up(64, 'b');
  written.Record("/elsewhere/staging/model.onnx", 9, made_up);       // right size: used
  written.Record("/elsewhere/staging/model.onnx.data", 6, made_up);  // wrong size: hashed
  written.Record("/elsewhere/staging/genai_config.json", 2, "");     // unknown: hashed
  auto artifact =
      store_->CommitArtifact(job, {"model.onnx", "model.onnx.data", "genai_config.json"}, &written);
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  ASSERT_EQ(artifact->files_size(), 3);
  EXPECT_EQ(artifact->files(0).sha256(), made_up);
  EXPECT_EQ(artifact->files(1).sha256(), core::Sha256Hex("weights"));
  EXPECT_EQ(artifact->files(2).sha256(), core::Sha256Hex("{}"));
  EXPECT_EQ(artifact->size_bytes(), 9u + 7u + 2u);
}

// Two attempts of one job (a replica that lost its lease and the one that
// took over) work in separate directories; either commits to the job's
// artifact, and removing one attempt's directory leaves the other's.
TEST_F(BlobStoreTest, AttemptsOfAJobHaveTheirOwnWorkDirs) {
  const std::string job = "job_0123456789abcdef0123";
  EXPECT_EQ(WorkName(job, 1), job);
  EXPECT_EQ(WorkName(job, 2), job + ".a2");
  auto first = store_->CreateWorkDir(WorkName(job, 1));
  auto second = store_->CreateWorkDir(WorkName(job, 2));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(*first, *second);
  std::ofstream(*second + "/model.onnx") << "quantized";
  store_->RemoveWorkDir(WorkName(job, 1));
  EXPECT_TRUE(fs::exists(*second + "/model.onnx"));
  auto artifact = store_->CommitArtifact(WorkName(job, 2), {"model.onnx"});
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  EXPECT_TRUE(fs::exists(root_ + "/artifacts/" + job + "/model.onnx"));
  for (const char* bad : {".a1", ".a0", ".a", ".b2", ".a2x", ".a2.a3", "./../x"}) {
    EXPECT_EQ(store_->CreateWorkDir(job + bad).status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST_F(BlobStoreTest, RejectsUnsafeIds) {
  EXPECT_EQ(store_->GetModel("sha256:../../etc").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CreateWorkDir("../x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->OpenArtifactFile("../x", "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BlobStoreTest, CommitsAStagedModelDirectoryAndDeletesIt) {
  const std::string staging = root_ + "/staging";
  fs::create_directories(staging);
  std::ofstream(staging + "/model.onnx") << "model-bytes";
  v1::Model model;
  v1::FileInfo* f = model.add_files();
  f->set_name("model.onnx");
  f->set_size_bytes(11);
  f->set_sha256(core::Sha256Hex("model-bytes"));
  model.set_model_id(ModelIdFor(model.files()));
  model.set_size_bytes(11);
  store_->AddUsedBytes(11);
  auto committed = store_->CommitModelDir(staging, model);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_FALSE(fs::exists(staging));
  auto got = store_->GetModel(model.model_id());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->files(0).sha256(), f->sha256());
  ASSERT_TRUE(store_->DeleteModel(model.model_id()).ok());
  EXPECT_EQ(store_->GetModel(model.model_id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->DeleteModel(model.model_id()).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->used_bytes(), 0u);
}

TEST_F(BlobStoreTest, CheckRoomForNamesTheLimit) {
  options_.max_store_bytes = 100;
  auto store = BlobStore::Open(options_);
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE((*store)->CheckRoomFor(100).ok());
  absl::Status st = (*store)->CheckRoomFor(101);
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(std::string(st.message()).find("--max-store-bytes"), std::string::npos);
}

}  // namespace
}  // namespace quantd::server
