// CoreJobRunner on a Hugging Face checkpoint: the stored files are linked
// into a folder named as the job's recipe says, the conversion's tensor
// progress reaches the job, the output equals core::Run on the original
// folder (quantd quantize), and failures leave no work directory behind.
#include "quantd/server/job_runner.h"

#include <filesystem>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/base/sha256.h"
#include "quantd/core/run.h"
#include "quantd/server/ids.h"
#include "quantd/server/translate.h"

namespace quantd::server {
namespace {
namespace fs = std::filesystem;

const std::string kCheckpoints = std::string(QUANTD_TESTDATA) + "/hf/checkpoints";

class JobRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("jobrunner-" + RandomHex(6))).string();
    BlobStoreOptions options;
    options.root = root_ + "/data";
    options.min_free_bytes = 0;
    auto blobs = BlobStore::Open(options);
    ASSERT_TRUE(blobs.ok()) << blobs.status();
    blobs_ = *std::move(blobs);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Stores the files of checkpoint folder `dir` (config.json first) as a model.
  v1::Model StoreCheckpoint(const std::string& dir, const std::string& name) {
    const std::string staging = root_ + "/staging";
    fs::create_directories(staging);
    v1::Model model;
    std::vector<std::string> names = {"config.json"};
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().filename() != "config.json") names.push_back(e.path().filename().string());
    }
    std::sort(names.begin() + 1, names.end());
    for (const std::string& n : names) {
      fs::copy_file(fs::path(dir) / n, fs::path(staging) / n);
      v1::FileInfo* f = model.add_files();
      f->set_name(n);
      f->set_size_bytes(fs::file_size(fs::path(dir) / n));
      f->set_sha256(*core::Sha256File((fs::path(dir) / n).string()));
    }
    model.set_model_id(ModelIdFor(model.files()));
    model.set_format(v1::MODEL_FORMAT_HF_CHECKPOINT);
    model.set_model_name(name);
    auto committed = blobs_->CommitModelDir(staging, model);
    EXPECT_TRUE(committed.ok()) << committed.status();
    return model;
  }

  v1::Job Job(const v1::Model& model, const std::string& gguf_type, const std::string& name) {
    v1::Job job;
    job.set_job_id(NewJobId());
    job.set_model_id(model.model_id());
    core::Recipe recipe;
    recipe.gguf_type = gguf_type;
    recipe.model_name = name;
    *job.mutable_recipe() = RecipeToProto(recipe);
    return job;
  }

  // Entries of the data directory's work/ folder.
  std::vector<std::string> WorkEntries() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(root_ + "/data/work")) {
      out.push_back(e.path().filename().string());
    }
    return out;
  }

  std::string root_;
  std::unique_ptr<BlobStore> blobs_;
};

TEST_F(JobRunnerTest, CheckpointJobMatchesTheOfflineConversionAndReportsTensors) {
  const std::string folder = kCheckpoints + "/phi3-tiny-shared";
  const v1::Model model = StoreCheckpoint(folder, "phi3-tiny-shared");
  CoreJobRunner runner(blobs_.get());
  std::vector<core::Progress> events;
  core::RunContext ctx;
  ctx.progress = [&](const core::Progress& p) { events.push_back(p); };
  const v1::Job job = Job(model, "F16", "phi3-tiny-shared");
  auto outcome = runner.Run(job, ctx);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(outcome->artifact.files_size(), 1);
  EXPECT_EQ(outcome->artifact.files(0).name(), "phi3-tiny-shared-f16.gguf");

  // The same bytes as `quantd quantize phi3-tiny-shared --gguf-type F16`,
  // which are the converter's (reference.json).
  core::Recipe offline;
  offline.gguf_type = "F16";
  const std::string local = root_ + "/offline.gguf";
  ASSERT_TRUE(core::Run(offline, folder, local, core::RunContext()).ok());
  EXPECT_EQ(outcome->artifact.files(0).sha256(), *core::Sha256File(local));
  std::ifstream ref_in(std::string(QUANTD_TESTDATA) + "/hf/reference.json");
  const auto ref = nlohmann::json::parse(ref_in);
  EXPECT_EQ(outcome->artifact.files(0).sha256(),
            ref["checkpoints"]["phi3-tiny-shared"]["gguf"]["f16"]["sha256"].get<std::string>());

  // Tensor progress: "convert" counts up to the total, and the store phase
  // keeps the final counts (the job's last progress says N/N).
  uint64_t total = 0, done = 0;
  for (const auto& p : events) {
    if (p.phase == "convert") {
      total = p.tensors_total;
      EXPECT_GE(p.tensors_done, done);
      done = p.tensors_done;
    }
  }
  EXPECT_GT(total, 0u);
  EXPECT_EQ(done, total);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().phase, "store");
  EXPECT_EQ(events.back().tensors_done, total);
  EXPECT_EQ(events.back().tensors_total, total);
  EXPECT_THAT(WorkEntries(), ::testing::IsEmpty());  // the linked folder is gone

  // Another name: general.name differs, so do the bytes.
  auto renamed = runner.Run(Job(model, "F16", "other-name"), core::RunContext());
  ASSERT_TRUE(renamed.ok()) << renamed.status();
  EXPECT_EQ(renamed->artifact.files(0).name(), "other-name-f16.gguf");
  EXPECT_NE(renamed->artifact.files(0).sha256(), outcome->artifact.files(0).sha256());
}

TEST_F(JobRunnerTest, CheckpointErrorsNameTheFolderNotServerPaths) {
  const std::string damaged = root_ + "/phi3-tiny-shared";
  fs::create_directories(damaged);
  for (const auto& e : fs::directory_iterator(kCheckpoints + "/phi3-tiny-shared")) {
    fs::copy_file(e.path(), fs::path(damaged) / e.path().filename());
  }
  fs::resize_file(fs::path(damaged) / "model.safetensors", 100000);  // truncated
  const v1::Model model = StoreCheckpoint(damaged, "phi3-tiny-shared");
  CoreJobRunner runner(blobs_.get());
  auto outcome = runner.Run(Job(model, "F16", "phi3-tiny-shared"), core::RunContext());
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kDataLoss) << outcome.status();
  EXPECT_THAT(std::string(outcome.status().message()),
              ::testing::StartsWith("phi3-tiny-shared/model.safetensors: truncated"));
  EXPECT_THAT(std::string(outcome.status().message()), ::testing::Not(::testing::HasSubstr(root_)));
  EXPECT_THAT(WorkEntries(), ::testing::IsEmpty());
}

}  // namespace
}  // namespace quantd::server
