// Unit tests of quantctl's parts: exit codes, artifact file planning,
// progress rendering, flag parsing and ONNX external data. (The recipe
// translation it shares with the server is tested in tests/proto.)
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "exit_codes.h"
#include "flag_parser.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"
#include "onnx_files.h"
#include "progress.h"
#include "quantd/client/checkpoint_folder.h"
#include "transfer.h"

namespace quantd::quantctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

TEST(ExitCodeTest, EachFailureClassHasItsCode) {
  EXPECT_EQ(ExitCodeFor(absl::OkStatus()), 0);
  EXPECT_EQ(ExitCodeFor(absl::InternalError("x")), 1);
  EXPECT_EQ(ExitCodeFor(absl::ResourceExhaustedError("x")), 1);
  EXPECT_EQ(ExitCodeFor(absl::InvalidArgumentError("x")), 2);
  EXPECT_EQ(ExitCodeFor(absl::NotFoundError("x")), 2);
  EXPECT_EQ(ExitCodeFor(JobOutcome(absl::AbortedError("job failed"))), 3);
  EXPECT_EQ(ExitCodeFor(JobOutcome(absl::InvalidArgumentError("bad model"))), 3);
  EXPECT_EQ(ExitCodeFor(absl::UnavailableError("x")), 4);
  EXPECT_EQ(ExitCodeFor(absl::DeadlineExceededError("x")), 4);
  EXPECT_EQ(ExitCodeFor(absl::UnauthenticatedError("x")), 5);
  EXPECT_EQ(ExitCodeFor(absl::PermissionDeniedError("x")), 5);
  EXPECT_EQ(ExitCodeFor(absl::DataLossError("x")), 6);
  EXPECT_EQ(ExitCodeFor(absl::CancelledError("x")), 130);
  EXPECT_THAT(ExitCodesHelp(), HasSubstr("6    data or integrity error"));
}

v1::Artifact MakeArtifact(const std::vector<std::string>& names) {
  v1::Artifact a;
  for (const auto& n : names) a.add_files()->set_name(n);
  return a;
}

TEST(PlanArtifactTest, ExternalDataFollowsTheOutputName) {
  auto plan = PlanArtifact(MakeArtifact({"model.onnx", "model.onnx.data"}), "out/phone.onnx");
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].path, "out/phone.onnx");
  EXPECT_EQ(plan[1].path, "out/phone.onnx.data");
}

TEST(PlanArtifactTest, OtherFilesKeepTheirNamesBesideTheOutput) {
  auto plan = PlanArtifact(MakeArtifact({"m.onnx", "weights.bin"}), "/tmp/x/y.onnx");
  EXPECT_EQ(plan[0].path, "/tmp/x/y.onnx");
  EXPECT_EQ(plan[1].path, "/tmp/x/weights.bin");
  auto single = PlanArtifact(MakeArtifact({"model.gguf"}), "q.gguf");
  ASSERT_EQ(single.size(), 1u);
  EXPECT_EQ(single[0].path, "q.gguf");
}

std::string Render(ProgressRenderer::Mode mode, const std::function<void(ProgressRenderer&)>& fn) {
  FILE* f = std::tmpfile();
  {
    ProgressRenderer r(mode, f);
    fn(r);
  }
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

void Script(ProgressRenderer& r) {
  for (uint64_t b = 0; b <= 1000; b += 100) r.Transfer("upload", b, 1000);
  r.EndTransfer("upload: done");
  v1::Job job;
  job.set_job_id("job_1");
  job.set_state(v1::JOB_STATE_QUEUED);
  r.Job(job);
  job.set_state(v1::JOB_STATE_RUNNING);
  job.mutable_progress()->set_phase("convert");
  job.mutable_progress()->set_tensors_total(10);
  for (int i = 0; i <= 10; ++i) {
    job.mutable_progress()->set_tensors_done(i);
    r.Job(job);
  }
  job.set_state(v1::JOB_STATE_SUCCEEDED);
  r.Job(job);
  r.Line("a note");
}

TEST(ProgressRendererTest, PlainModeWritesOneLinePerPhaseAndNoControlCharacters) {
  std::string out = Render(ProgressRenderer::Mode::kPlain, Script);
  for (char c : out) {
    EXPECT_TRUE(c == '\n' || static_cast<unsigned char>(c) >= 0x20) << static_cast<int>(c);
  }
  EXPECT_EQ(out,
            "upload: 1000 B\n"
            "upload: done\n"
            "job job_1: QUEUED\n"
            "job job_1: RUNNING (convert) 0/10 tensors\n"
            "job job_1: SUCCEEDED 10/10 tensors\n"
            "a note\n");
}

TEST(ProgressRendererTest, TtyModeRedrawsInPlace) {
  std::string out = Render(ProgressRenderer::Mode::kTty, Script);
  EXPECT_THAT(out, HasSubstr("\r"));
  EXPECT_THAT(out, HasSubstr("\x1b[K"));
  EXPECT_THAT(out, HasSubstr("100%"));
  EXPECT_THAT(out, HasSubstr("10/10 tensors"));
  EXPECT_THAT(out, HasSubstr("SUCCEEDED"));
  EXPECT_THAT(out, HasSubstr("upload: done\n"));
}

TEST(ProgressRendererTest, NoneModeWritesNothing) {
  EXPECT_EQ(Render(ProgressRenderer::Mode::kNone, Script), "");
}

TEST(HumanTest, BytesAndSeconds) {
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(3ull << 30), "3.0 GiB");
  EXPECT_EQ(HumanSeconds(5), "5s");
  EXPECT_EQ(HumanSeconds(65), "1m05s");
  EXPECT_EQ(HumanSeconds(-1), "?");
}

TEST(FlagParserTest, ValuesBooleansRepeatsAndPositionals) {
  std::string out;
  int n = 0;
  bool b = false;
  std::vector<std::string> rep, pos;
  FlagParser p;
  p.String({"-o", "--output"}, &out);
  p.Int({"--n"}, &n);
  p.Bool({"--b"}, &b);
  p.Repeated({"--label"}, &rep);
  ASSERT_TRUE(p.Parse({"in", "-o", "x", "--n=3", "--b", "--label", "a=1", "--label=b=2", "--",
                       "--not-a-flag"},
                      &pos)
                  .ok());
  EXPECT_EQ(out, "x");
  EXPECT_EQ(n, 3);
  EXPECT_TRUE(b);
  EXPECT_THAT(rep, ElementsAre("a=1", "b=2"));
  EXPECT_THAT(pos, ElementsAre("in", "--not-a-flag"));
  std::vector<std::string> ignored;
  EXPECT_EQ(p.Parse({"--nope"}, &ignored).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.Parse({"--n", "x"}, &ignored).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.Parse({"-o"}, &ignored).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.Parse({"--b=1"}, &ignored).code(), absl::StatusCode::kInvalidArgument);
}

TEST(FlagWordTest, SplitsLongFlagsAtTheEqualsSignAndTakesTheNextWordOtherwise) {
  FlagWord inline_value("--server=h:1=2");
  EXPECT_EQ(inline_value.name, "--server");
  EXPECT_EQ(inline_value.value, "h:1=2");
  EXPECT_TRUE(inline_value.has_value);
  FlagWord short_flag("-o=x");  // only long flags split
  EXPECT_EQ(short_flag.name, "-o=x");
  EXPECT_FALSE(short_flag.has_value);

  const std::vector<std::string> args = {"--server", "h:1", "--token"};
  size_t i = 0;
  FlagWord next(args[i]);
  ASSERT_TRUE(next.TakeValue(args, &i).ok());
  EXPECT_EQ(next.value, "h:1");
  EXPECT_EQ(i, 1u);
  i = 2;
  FlagWord missing(args[i]);
  EXPECT_EQ(missing.TakeValue(args, &i).code(), absl::StatusCode::kInvalidArgument);
}

const std::string kLlama =
    std::string(QUANTD_TESTDATA) + "/onnx/genai-tiny-random-llama-fp16-extdata/model.onnx";

TEST(OnnxFilesTest, FindsExternalDataNextToTheModel) {
  auto files = OnnxExternalDataFiles(kLlama);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(*files, ElementsAre("model.onnx.data"));
  auto all = ModelFiles(kLlama, {});
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(all->paths, ElementsAre(kLlama, kLlama + ".data"));
  EXPECT_EQ(all->model_name, "");
  auto none = OnnxExternalDataFiles(std::string(QUANTD_TESTDATA) +
                                    "/onnx/genai-tiny-random-gpt2-fp32/past.onnx");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

void AddExternal(onnx::TensorProto* t, const std::string& name, const std::string& location) {
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->add_dims(1);
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = t->add_external_data();
  kv->set_key("location");
  kv->set_value(location);
  kv = t->add_external_data();
  kv->set_key("offset");
  kv->set_value("0");
}

TEST(OnnxFilesTest, ScanFindsLocationsInSubgraphsAttributesAndSparseTensors) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  onnx::GraphProto* g = m.mutable_graph();
  onnx::TensorProto* inline_weight = g->add_initializer();  // big, inline: skipped
  inline_weight->set_name("inline");
  inline_weight->set_raw_data(std::string(3 << 20, '\x7f'));
  AddExternal(g->add_initializer(), "w", "a.bin");
  onnx::NodeProto* node = g->add_node();
  node->set_op_type("If");
  onnx::AttributeProto* branch = node->add_attribute();
  branch->set_name("then_branch");
  AddExternal(branch->mutable_g()->add_initializer(), "w2", "b.bin");
  onnx::NodeProto* constant = g->add_node();
  constant->set_op_type("Constant");
  AddExternal(constant->add_attribute()->mutable_t(), "c", "c.bin");
  onnx::SparseTensorProto* sparse = g->add_sparse_initializer();
  AddExternal(sparse->mutable_values(), "sv", "d.bin");
  AddExternal(g->add_initializer(), "w3", "a.bin");  // duplicates are listed once

  auto dir = std::filesystem::temp_directory_path() / ("quantctl-scan-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  for (const char* f : {"a.bin", "b.bin", "c.bin", "d.bin"}) std::ofstream(dir / f) << "x";
  const std::string path = (dir / "m.onnx").string();
  {
    std::ofstream out(path, std::ios::binary);
    ASSERT_TRUE(m.SerializeToOstream(&out));
  }
  auto files = OnnxExternalDataFiles(path);
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(*files, UnorderedElementsAre("a.bin", "b.bin", "c.bin", "d.bin"));

  // Paths outside the model's folder are refused.
  g->mutable_initializer(1)->mutable_external_data(0)->set_value("../etc/passwd");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    ASSERT_TRUE(m.SerializeToOstream(&out));
  }
  EXPECT_EQ(OnnxExternalDataFiles(path).status().code(), absl::StatusCode::kInvalidArgument);
  // Not a model at all.
  std::ofstream(path, std::ios::trunc) << "GGUF and then some bytes";
  EXPECT_EQ(OnnxExternalDataFiles(path).status().code(), absl::StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

TEST(OnnxFilesTest, MissingDataFileIsADataError) {
  auto dir = std::filesystem::temp_directory_path() / ("quantctl-unit-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kLlama, dir / "model.onnx",
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_EQ(OnnxExternalDataFiles((dir / "model.onnx").string()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ModelFiles((dir / "model.onnx").string(), {}).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(ModelFiles((dir / "absent.onnx").string(), {}).status().code(),
            absl::StatusCode::kNotFound);

  // Relocation rewrites every location, atomically, and the result parses.
  std::filesystem::copy_file(kLlama + ".data", dir / "renamed.data",
                             std::filesystem::copy_options::overwrite_existing);
  ASSERT_TRUE(
      RelocateOnnxExternalData((dir / "model.onnx").string(), "model.onnx.data", "renamed.data")
          .ok());
  auto files = OnnxExternalDataFiles((dir / "model.onnx").string());
  ASSERT_TRUE(files.ok()) << files.status();
  EXPECT_THAT(*files, ElementsAre("renamed.data"));
  std::filesystem::remove_all(dir);
}

// A copy of a shared checkpoint plus files a conversion does not read.
class CheckpointFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("quantctl-ckpt-" + std::to_string(getpid())) /
           "llama-tiny-shared";
    std::filesystem::remove_all(dir_.parent_path());
    std::filesystem::create_directories(dir_);
    const std::string src = std::string(QUANTD_TESTDATA) + "/hf/checkpoints/llama-tiny-shared";
    for (const auto& e : std::filesystem::directory_iterator(src)) {
      std::filesystem::copy_file(e.path(), dir_ / e.path().filename());
    }
    std::ofstream(dir_ / "README.md") << "# model card";
    std::ofstream(dir_ / "pytorch_model.bin") << "pickle";
    std::ofstream(dir_ / "consolidated.safetensors") << "another layout";
    std::filesystem::create_directories(dir_ / ".git" / "objects");
  }
  void TearDown() override { std::filesystem::remove_all(dir_.parent_path()); }
  std::filesystem::path dir_;
};

TEST_F(CheckpointFolderTest, UploadsWhatAConversionReadsAndSaysWhatItSkips) {
  auto folder = client::SelectCheckpointFiles(dir_.string() + "/");
  ASSERT_TRUE(folder.ok()) << folder.status();
  EXPECT_EQ(folder->name, "llama-tiny-shared");
  std::vector<std::string> names;
  for (const auto& p : folder->files) names.push_back(std::filesystem::path(p).filename());
  EXPECT_THAT(names,
              ElementsAre("config.json", "generation_config.json", "model.safetensors.index.json",
                          "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                          "tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                          "special_tokens_map.json"));
  EXPECT_THAT(folder->skipped,
              ElementsAre(".git/", "README.md", "consolidated.safetensors", "pytorch_model.bin"));
  // quantctl's view: the same files, the folder's name, the skip list.
  auto input = ModelFiles(dir_.string(), {});
  ASSERT_TRUE(input.ok()) << input.status();
  EXPECT_EQ(input->paths, folder->files);
  EXPECT_EQ(input->model_name, "llama-tiny-shared");
  EXPECT_EQ(input->skipped.size(), 4u);
}

TEST_F(CheckpointFolderTest, MissingShardOrWeightsOrConfigAreRefusedLocally) {
  std::filesystem::remove(dir_ / "model-00002-of-00002.safetensors");
  auto missing = client::SelectCheckpointFiles(dir_.string());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("names shard model-00002-of-00002.safetensors, which is missing"));
  // An index that is not JSON is sent as is: the server's job says what is wrong.
  std::ofstream(dir_ / "model.safetensors.index.json", std::ios::trunc) << "{\"weight_map\": [[[";
  auto broken = client::SelectCheckpointFiles(dir_.string());
  ASSERT_TRUE(broken.ok()) << broken.status();
  EXPECT_EQ(std::filesystem::path(broken->files[2]).filename(), "model.safetensors.index.json");
  std::filesystem::remove(dir_ / "model.safetensors.index.json");
  EXPECT_EQ(client::SelectCheckpointFiles(dir_.string()).status().code(),
            absl::StatusCode::kNotFound);  // no weights at all
  std::filesystem::remove(dir_ / "config.json");
  EXPECT_EQ(client::SelectCheckpointFiles(dir_.string()).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A folder name that cannot be a model name needs --model-name.
  const auto odd = dir_.parent_path() / "two words";
  std::filesystem::create_directories(odd);
  std::filesystem::copy_file(dir_ / "generation_config.json", odd / "config.json");
  std::ofstream(odd / "model.safetensors") << "x";
  EXPECT_THAT(std::string(ModelFiles(odd.string(), {}).status().message()),
              HasSubstr("--model-name"));
}

}  // namespace
}  // namespace quantd::quantctl
