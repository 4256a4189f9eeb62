// Integration tests: Hugging Face checkpoint folders through the real quantd
// and the real client library. Damaged checkpoints (a truncated or corrupt
// shard, a header that lies about offsets, a JSON bomb, a missing shard, a
// tokenizer larger than vocab_size, an unknown rope_scaling type) each fail
// their job with the precise canonical code and a message that names the
// file (and tensor / byte offset where it applies), leave no artifact, and
// the server goes on serving: a good checkpoint converts afterwards, to the
// converter's bytes.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/client/checkpoint_folder.h"
#include "quantd/client/client.h"
#include "quantd/core/base/sha256.h"
#include "server_process.h"
#include "test_util.h"

namespace quantd::testing {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteFile(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

std::string ReferenceSha256(const std::string& checkpoint, const std::string& outtype) {
  auto ref = nlohmann::json::parse(ReadFile(TestData() + "/hf/reference.json"));
  return ref["checkpoints"][checkpoint]["gguf"][outtype]["sha256"].get<std::string>();
}

class CheckpointServiceTest : public ServerTest {
 protected:
  // A writable copy of a shared checkpoint under `case_name`/, keeping its name.
  fs::path Copy(const std::string& checkpoint, const std::string& case_name) {
    const fs::path dst = fs::path(tmp_.path()) / case_name / checkpoint;
    fs::create_directories(dst);
    for (const auto& e : fs::directory_iterator(TestData() + "/hf/checkpoints/" + checkpoint)) {
      fs::copy_file(e.path(), dst / e.path().filename());
      fs::permissions(dst / e.path().filename(), fs::perms::owner_write, fs::perm_options::add);
    }
    return dst;
  }

  // Uploads every file of `dir` (config.json first) under the folder's name,
  // submits an F16 conversion and waits for the job to end.
  v1::Job RunFolder(const fs::path& dir) {
    std::vector<std::string> paths = {(dir / "config.json").string()};
    std::vector<std::string> rest;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().filename() != "config.json") rest.push_back(e.path().string());
    }
    std::sort(rest.begin(), rest.end());
    paths.insert(paths.end(), rest.begin(), rest.end());
    client::UploadOptions options;
    options.model_name = dir.filename().string();
    auto upload = client_->Upload(paths, options);
    EXPECT_TRUE(upload.ok()) << upload.status();
    if (!upload.ok()) return v1::Job();
    EXPECT_EQ(upload->model.format(), v1::MODEL_FORMAT_HF_CHECKPOINT);
    v1::Recipe recipe;
    recipe.set_gguf_type("F16");
    auto job = client_->Submit(SubmitRequest(upload->model.model_id(), recipe));
    EXPECT_TRUE(job.ok()) << job.status();
    if (!job.ok()) return v1::Job();
    EXPECT_EQ(job->recipe().model_name(), dir.filename().string());
    auto final_job = client_->Watch(job->job_id(), nullptr, absl::Seconds(120));
    EXPECT_TRUE(final_job.ok()) << final_job.status();
    return final_job.ok() ? *final_job : v1::Job();
  }

  // The job failed with `code`, a message containing each of `parts`, and
  // left nothing to download.
  void ExpectRefused(const v1::Job& job, const std::string& code,
                     const std::vector<std::string>& parts) {
    EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED) << job.DebugString();
    EXPECT_EQ(job.error().code(), code) << job.error().message();
    for (const auto& p : parts) EXPECT_THAT(job.error().message(), HasSubstr(p));
    EXPECT_EQ(job.artifact().files_size(), 0);
    auto download = client_->Download(job.job_id(), tmp_.path() + "/never");
    EXPECT_EQ(download.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_FALSE(fs::exists(tmp_.path() + "/never"));
  }
};

TEST_F(CheckpointServiceTest, DamagedCheckpointsAreRefusedPreciselyAndTheServerKeepsServing) {
  {  // A truncated shard: DATA_LOSS naming the file, the tensor and the bytes.
    fs::path d = Copy("phi3-tiny-shared", "truncated");
    fs::resize_file(d / "model.safetensors", 100000);
    ExpectRefused(RunFolder(d), "DATA_LOSS",
                  {"phi3-tiny-shared/model.safetensors: truncated", "lm_head.weight",
                   "the file ends at byte 100000"});
  }
  {  // A corrupt shard header.
    fs::path d = Copy("phi3-tiny-shared", "corrupt");
    std::string bytes = ReadFile(d / "model.safetensors");
    std::memcpy(bytes.data() + 8, "#garbage#", 9);
    WriteFile(d / "model.safetensors", bytes);
    ExpectRefused(RunFolder(d), "INVALID_ARGUMENT",
                  {"phi3-tiny-shared/model.safetensors: safetensors header (bytes 8..",
                   "not well-formed JSON"});
  }
  {  // A header whose data_offsets lie: the tensor claims more bytes than it has.
    fs::path d = Copy("phi3-tiny-shared", "offsets");
    std::string bytes = ReadFile(d / "model.safetensors");
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    auto header = nlohmann::json::parse(bytes.substr(8, n));
    auto& offsets = header["lm_head.weight"]["data_offsets"];
    offsets[1] = offsets[1].get<uint64_t>() + 4096;
    const std::string text = header.dump();
    const uint64_t len = text.size();
    WriteFile(d / "model.safetensors",
              std::string(reinterpret_cast<const char*>(&len), 8) + text + bytes.substr(8 + n));
    ExpectRefused(RunFolder(d), "INVALID_ARGUMENT",
                  {"phi3-tiny-shared/model.safetensors: tensor 'lm_head.weight': data_offsets",
                   "at file byte"});
  }
  {  // A JSON bomb as config.json: refused before it is parsed.
    fs::path d = Copy("phi3-tiny-shared", "bomb");
    WriteFile(d / "config.json", std::string(200000, '[') + std::string(200000, ']'));
    ExpectRefused(RunFolder(d), "INVALID_ARGUMENT",
                  {"phi3-tiny-shared/config.json: JSON nests deeper than"});
  }
  {  // A shard the index names is not in the model.
    fs::path d = Copy("llama-tiny-shared", "missing");
    fs::remove(d / "model-00002-of-00002.safetensors");
    ExpectRefused(RunFolder(d), "NOT_FOUND",
                  {"llama-tiny-shared/model-00002-of-00002.safetensors: shard named by "
                   "model.safetensors.index.json is missing"});
  }
  {  // An added token beyond config.json's vocab_size.
    fs::path d = Copy("phi3-tiny-shared", "tokenizer");
    auto config = nlohmann::json::parse(ReadFile(d / "tokenizer_config.json"));
    config["added_tokens_decoder"]["40000"] = {{"content", "<|extra|>"}, {"special", true}};
    WriteFile(d / "tokenizer_config.json", config.dump());
    ExpectRefused(RunFolder(d), "INVALID_ARGUMENT",
                  {"tokenizer_config.json: added token id 40000 does not fit config.json "
                   "vocab_size 32064"});
  }
  {  // An unknown rope_scaling type.
    fs::path d = Copy("phi3-tiny-shared", "rope");
    auto config = nlohmann::json::parse(ReadFile(d / "config.json"));
    config["rope_scaling"]["type"] = "dynamic";
    WriteFile(d / "config.json", config.dump());
    ExpectRefused(RunFolder(d), "INVALID_ARGUMENT",
                  {"config.json: rope_scaling type 'dynamic' is not supported"});
  }
  // No partial output anywhere in the server's work area.
  EXPECT_TRUE(fs::is_empty(tmp_.path() + "/data/work"));
  // Still serving: a good checkpoint converts to the converter's bytes, and
  // the final job state carries the tensor counts.
  auto health = client_->Health();
  ASSERT_TRUE(health.ok() && *health);
  const v1::Job good = RunFolder(Copy("phi3-tiny-shared", "good"));
  ASSERT_EQ(good.state(), v1::JOB_STATE_SUCCEEDED) << good.error().message();
  ASSERT_EQ(good.artifact().files_size(), 1);
  EXPECT_EQ(good.artifact().files(0).name(), "phi3-tiny-shared-f16.gguf");
  EXPECT_EQ(good.artifact().files(0).sha256(), ReferenceSha256("phi3-tiny-shared", "f16"));
  EXPECT_GT(good.progress().tensors_total(), 0u);
  EXPECT_EQ(good.progress().tensors_done(), good.progress().tensors_total());
}

TEST_F(CheckpointServiceTest, TheNameTravelsPerJobSoDedupNeverMixesNames) {
  const fs::path original = Copy("phi3-tiny-shared", "a");
  auto folder = client::SelectCheckpointFiles(original.string());
  ASSERT_TRUE(folder.ok()) << folder.status();
  client::UploadOptions options;
  options.model_name = folder->name;
  auto first = client_->Upload(folder->files, options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->model.model_name(), "phi3-tiny-shared");
  // The same files under another folder name are the same model (same id).
  const fs::path renamed = fs::path(tmp_.path()) / "b" / "tiny-renamed";
  fs::create_directories(renamed.parent_path());
  fs::rename(original, renamed);
  auto again = client::SelectCheckpointFiles(renamed.string());
  ASSERT_TRUE(again.ok());
  options.model_name = again->name;
  auto second = client_->Upload(again->files, options);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->model.model_id(), first->model.model_id());

  v1::Recipe recipe;
  recipe.set_gguf_type("F16");
  auto by_model = client_->Submit(SubmitRequest(first->model.model_id(), recipe));
  ASSERT_TRUE(by_model.ok()) << by_model.status();
  EXPECT_EQ(by_model->recipe().model_name(), "phi3-tiny-shared");  // the model's name
  recipe.set_model_name("tiny-renamed");
  auto by_recipe = client_->Submit(SubmitRequest(first->model.model_id(), recipe));
  ASSERT_TRUE(by_recipe.ok()) << by_recipe.status();
  EXPECT_NE(by_recipe->job_id(), by_model->job_id());  // not deduplicated across names
  EXPECT_NE(by_recipe->dedup_key(), by_model->dedup_key());
  recipe.set_model_name("phi3-tiny-shared");
  auto same = client_->Submit(SubmitRequest(first->model.model_id(), recipe));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->job_id(), by_model->job_id());  // same name: the same job

  auto a = client_->Watch(by_model->job_id(), nullptr, absl::Seconds(120));
  auto b = client_->Watch(by_recipe->job_id(), nullptr, absl::Seconds(120));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->state(), v1::JOB_STATE_SUCCEEDED) << a->error().message();
  ASSERT_EQ(b->state(), v1::JOB_STATE_SUCCEEDED) << b->error().message();
  EXPECT_EQ(a->artifact().files(0).sha256(), ReferenceSha256("phi3-tiny-shared", "f16"));
  EXPECT_EQ(b->artifact().files(0).name(), "tiny-renamed-f16.gguf");
  EXPECT_NE(b->artifact().files(0).sha256(), a->artifact().files(0).sha256());
  // Client::Quantize on a folder's files, named by the recipe.
  auto llama = client::SelectCheckpointFiles(Copy("llama-tiny-shared", "c").string());
  ASSERT_TRUE(llama.ok()) << llama.status();
  v1::Recipe q8;
  q8.set_gguf_type("Q8_0");
  q8.set_model_name(llama->name);
  auto quantized = client_->Quantize(llama->files, q8, tmp_.path() + "/q8");
  ASSERT_TRUE(quantized.ok()) << quantized.status();
  EXPECT_EQ(quantized->model.model_name(), "llama-tiny-shared");
  EXPECT_EQ(quantized->job.artifact().files(0).sha256(),
            ReferenceSha256("llama-tiny-shared", "q8_0"));
  // A checkpoint upload without a name is refused (general.name needs one).
  auto nameless = client_->Upload(folder->files, client::UploadOptions());
  EXPECT_FALSE(nameless.ok());
}

// The sha256 in an artifact's manifest (which the server takes from the
// core's writers, computed while they wrote) is that of the stored file, for
// a folder job (ONNX Runtime GenAI, INT4: computed and copied files), an
// ONNX INT4 job with external data and a GGUF job; each download checks it
// again on the client side.
TEST_F(CheckpointServiceTest, ArtifactDigestsAreThoseOfTheStoredFiles) {
  auto llama = client::SelectCheckpointFiles(Copy("llama-tiny-shared", "d").string());
  ASSERT_TRUE(llama.ok()) << llama.status();
  v1::Recipe genai;
  genai.set_format(v1::MODEL_FORMAT_ONNX);
  genai.set_precision(v1::PRECISION_INT4);
  genai.set_model_name(llama->name);
  v1::Recipe int4;
  int4.set_precision(v1::PRECISION_INT4);
  v1::Recipe gguf;
  gguf.set_gguf_type("Q4_K_M");
  struct Case {
    std::string what;
    std::vector<std::string> files;
    v1::Recipe recipe;
    size_t outputs;
  };
  const std::vector<Case> cases = {
      {"genai folder", llama->files, genai, 5},
      {"onnx int4", LlamaExtDataModel(), int4, 2},
      {"gguf", {TestData() + "/gguf/tiny-llama-f32.gguf"}, gguf, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string out = tmp_.path() + "/out-" + std::to_string(&c - cases.data());
    auto result = client_->Quantize(c.files, c.recipe, out);
    ASSERT_TRUE(result.ok()) << result.status();
    const v1::Artifact& artifact = result->job.artifact();
    EXPECT_GE(static_cast<size_t>(artifact.files_size()), c.outputs);
    for (const v1::FileInfo& f : artifact.files()) {
      SCOPED_TRACE(f.name());
      const std::string stored =
          tmp_.path() + "/data/artifacts/" + result->job.job_id() + "/" + f.name();
      auto digest = core::Sha256File(stored);
      ASSERT_TRUE(digest.ok()) << digest.status();
      EXPECT_EQ(f.sha256(), *digest);
      EXPECT_EQ(f.size_bytes(), fs::file_size(stored));
    }
  }
}

}  // namespace
}  // namespace quantd::testing
