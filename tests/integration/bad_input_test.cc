// The bad-input catalogue: distinct malformed, hostile or absurd requests
// through the real server, each with the exact status code it must get.
// After the whole catalogue the server still serves a good job, and the
// models and artifacts stored before it still verify (sha256 on download).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/base/sha256.h"
#include "test_util.h"

namespace quantd::testing {
namespace {
namespace fs = std::filesystem;
using absl::StatusCode;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

v1::FileInfo File(const std::string& name, uint64_t size, const std::string& sha = "") {
  v1::FileInfo f;
  f.set_name(name);
  f.set_size_bytes(size);
  f.set_sha256(sha);
  return f;
}

v1::UploadHeader Header(std::vector<v1::FileInfo> files, const std::string& id = "") {
  v1::UploadHeader h;
  h.set_upload_id(id);
  for (auto& f : files) *h.add_files() = f;
  return h;
}

v1::UploadRequest HeaderMsg(const v1::UploadHeader& h) {
  v1::UploadRequest r;
  *r.mutable_header() = h;
  return r;
}
v1::UploadRequest Chunk(uint64_t offset, const std::string& data) {
  v1::UploadRequest r;
  r.mutable_chunk()->set_offset(offset);
  r.mutable_chunk()->set_data(data);
  return r;
}
v1::UploadRequest Finish(std::vector<std::string> digests) {
  v1::UploadRequest r;
  r.mutable_finish();
  for (auto& d : digests) r.mutable_finish()->add_sha256(d);
  return r;
}

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(
        tmp_.path() + "/data", std::vector<std::string>{"--workers", "2", "--max-upload-bytes",
                                                        "64M", "--max-concurrent-uploads", "8"});
    ASSERT_TRUE(server_->Start().ok());
    client_ = server_->NewClient();
    ASSERT_NE(client_, nullptr);
  }
  void TearDown() override {
    if (HasFailure() && server_ != nullptr) std::cerr << server_->ReadLog();
  }

  // Sends `msgs` on one UploadModel stream and returns its status code.
  StatusCode Upload(const std::vector<v1::UploadRequest>& msgs) {
    grpc::ClientContext ctx;
    v1::Model model;
    auto writer = client_->stub()->UploadModel(&ctx, &model);
    for (const auto& m : msgs) {
      if (!writer->Write(m)) break;
    }
    writer->WritesDone();
    return static_cast<StatusCode>(writer->Finish().error_code());
  }

  // Uploads `bytes` as model file `name` and runs `recipe` on it: the job's
  // final error code ("" when it succeeded).
  std::string JobCode(const std::string& name, const std::string& bytes, const v1::Recipe& recipe) {
    const std::string path = tmp_.path() + "/in/" + name;
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
    auto up = client_->Upload({path});
    if (!up.ok()) return absl::StrCat("upload:", absl::StatusCodeToString(up.status().code()));
    auto job = client_->Submit(SubmitRequest(up->model.model_id(), recipe));
    if (!job.ok()) return absl::StrCat("submit:", absl::StatusCodeToString(job.status().code()));
    auto done = client_->Watch(job->job_id(), nullptr, absl::Seconds(60));
    if (!done.ok()) return "watch";
    (void)client_->DeleteJob(job->job_id());
    (void)client_->DeleteModel(up->model.model_id());
    return done->state() == v1::JOB_STATE_SUCCEEDED ? "" : done->error().code();
  }

  TempDir tmp_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(BadInputTest, EveryBadInputGetsItsExactCodeAndTheServerKeepsServing) {
  // Stored before the catalogue: a model and an artifact, verified after it.
  auto stored = client_->Upload({Gpt2Model()});
  ASSERT_TRUE(stored.ok()) << stored.status();
  auto stored_job = client_->Submit(SubmitRequest(stored->model.model_id(), Fp16Recipe()));
  ASSERT_TRUE(stored_job.ok());
  ASSERT_TRUE(client_->Watch(stored_job->job_id(), nullptr, absl::Seconds(60)).ok());

  const std::string body = "0123456789";
  const std::string sha = core::Sha256Hex(body);
  const std::string model_id = stored->model.model_id();
  const std::string gpt2 = ReadAll(Gpt2Model());
  int count = 0;
  auto expect = [&count](const std::string& what, StatusCode got, StatusCode want) {
    ++count;
    EXPECT_EQ(got, want) << what << ": got " << absl::StatusCodeToString(got);
  };
  auto expect_job = [&count](const std::string& what, const std::string& got,
                             const std::string& want) {
    ++count;
    EXPECT_EQ(got, want) << what;
  };

  // --- upload protocol ---
  expect("chunk before header", Upload({Chunk(0, body)}), StatusCode::kInvalidArgument);
  expect("empty message", Upload({v1::UploadRequest()}), StatusCode::kInvalidArgument);
  expect("finish before header", Upload({Finish({sha})}), StatusCode::kInvalidArgument);
  expect("no message at all", Upload({}), StatusCode::kInvalidArgument);
  expect("header twice",
         Upload({HeaderMsg(Header({File("m.onnx", 10)})), HeaderMsg(Header({File("m.onnx", 10)}))}),
         StatusCode::kInvalidArgument);
  expect("no files", Upload({HeaderMsg(Header({}))}), StatusCode::kInvalidArgument);
  {
    std::vector<v1::FileInfo> many;
    for (int i = 0; i < 65; ++i) many.push_back(File(absl::StrCat("f", i, ".bin"), 1));
    expect("65 files", Upload({HeaderMsg(Header(many))}), StatusCode::kInvalidArgument);
  }
  expect("duplicate names", Upload({HeaderMsg(Header({File("a.onnx", 1), File("a.onnx", 1)}))}),
         StatusCode::kInvalidArgument);
  for (const std::string& name :
       std::vector<std::string>{"../evil.onnx", "/etc/passwd", "a/b.onnx", "", ".hidden",
                                "manifest.pb", "x.tmp", std::string(200, 'n'), "a\nb", "..", "."}) {
    expect("file name " + name.substr(0, 20), Upload({HeaderMsg(Header({File(name, 4)}))}),
           StatusCode::kInvalidArgument);
  }
  expect("sha256 not hex", Upload({HeaderMsg(Header({File("m.onnx", 4, std::string(64, 'z'))}))}),
         StatusCode::kInvalidArgument);
  expect("sha256 upper case",
         Upload({HeaderMsg(Header({File("m.onnx", 4, std::string(64, 'A'))}))}),
         StatusCode::kInvalidArgument);
  expect("sha256 short", Upload({HeaderMsg(Header({File("m.onnx", 4, "abc")}))}),
         StatusCode::kInvalidArgument);
  expect("empty first file", Upload({HeaderMsg(Header({File("m.onnx", 0)}))}),
         StatusCode::kInvalidArgument);
  expect("larger than --max-upload-bytes", Upload({HeaderMsg(Header({File("m.onnx", 65 << 20)}))}),
         StatusCode::kResourceExhausted);
  expect("size 2^64-1", Upload({HeaderMsg(Header({File("m.onnx", UINT64_MAX)}))}),
         StatusCode::kResourceExhausted);
  expect("two files summing past 2^64",
         Upload({HeaderMsg(
             Header({File("m.onnx", UINT64_MAX / 2 + 2), File("d.bin", UINT64_MAX / 2 + 2)}))}),
         StatusCode::kResourceExhausted);
  expect("chunk at a wrong offset",
         Upload({HeaderMsg(Header({File("m.onnx", 10)})), Chunk(5, "01234")}),
         StatusCode::kInvalidArgument);
  expect("chunk past the declared size",
         Upload({HeaderMsg(Header({File("m.onnx", 10)})), Chunk(0, body + "x")}),
         StatusCode::kInvalidArgument);
  expect("stream ends early", Upload({HeaderMsg(Header({File("m.onnx", 10)})), Chunk(0, "01")}),
         StatusCode::kFailedPrecondition);
  expect("finish before all bytes",
         Upload({HeaderMsg(Header({File("m.onnx", 10)})), Chunk(0, "01"), Finish({sha})}),
         StatusCode::kFailedPrecondition);
  expect("finish with two digests for one file",
         Upload({HeaderMsg(Header({File("m.onnx", 10)})), Chunk(0, body), Finish({sha, sha})}),
         StatusCode::kInvalidArgument);
  expect("no digest anywhere",
         Upload({HeaderMsg(Header({File("m.onnx", 10)})), Chunk(0, body), Finish({})}),
         StatusCode::kInvalidArgument);
  expect("wrong digest",
         Upload({HeaderMsg(Header({File("m.onnx", 10)})), Chunk(0, body),
                 Finish({std::string(64, 'a')})}),
         StatusCode::kDataLoss);
  expect("header and finish digests differ",
         Upload({HeaderMsg(Header({File("m.onnx", 10, sha)})), Chunk(0, body),
                 Finish({std::string(64, 'b')})}),
         StatusCode::kInvalidArgument);
  expect("upload id with a path", Upload({HeaderMsg(Header({File("m.onnx", 10)}, "../../x"))}),
         StatusCode::kInvalidArgument);
  expect("1 MiB upload id",
         Upload({HeaderMsg(Header({File("m.onnx", 10)}, std::string(1 << 20, 'u')))}),
         StatusCode::kInvalidArgument);
  {
    v1::UploadHeader h = Header({File("model.safetensors", 4), File("config.json", 2)});
    h.set_format(v1::MODEL_FORMAT_HF_CHECKPOINT);
    h.set_model_name("tiny");
    expect("checkpoint without config.json first", Upload({HeaderMsg(h)}),
           StatusCode::kInvalidArgument);
    h = Header({File("config.json", 2), File("model.safetensors", 4)});
    expect("checkpoint without a model name", Upload({HeaderMsg(h)}), StatusCode::kInvalidArgument);
    h.set_model_name("../up");
    expect("checkpoint model name with a path", Upload({HeaderMsg(h)}),
           StatusCode::kInvalidArgument);
  }
  {
    v1::UploadHeader h = Header({File("m.onnx", 10)});
    for (int i = 0; i < 33; ++i) (*h.mutable_labels())[absl::StrCat("k", i)] = "v";
    expect("33 labels", Upload({HeaderMsg(h)}), StatusCode::kInvalidArgument);
    h = Header({File("m.onnx", 10)});
    (*h.mutable_labels())[""] = "v";
    expect("empty label key", Upload({HeaderMsg(h)}), StatusCode::kInvalidArgument);
    h = Header({File("m.onnx", 10)});
    (*h.mutable_labels())["k"] = std::string(300, 'v');
    expect("300-character label value", Upload({HeaderMsg(h)}), StatusCode::kInvalidArgument);
  }
  {
    v1::UploadHeader h = Header({File("m.onnx", 10)});
    h.set_format(v1::MODEL_FORMAT_GGUF);
    expect("format says GGUF, bytes are not", Upload({HeaderMsg(h), Chunk(0, body), Finish({sha})}),
           StatusCode::kInvalidArgument);
  }
  {
    // Resumable partial upload, then misuse of its id.
    expect("partial upload (setup)",
           Upload({HeaderMsg(Header({File("m.onnx", 10)}, "catalogue-partial")), Chunk(0, "012")}),
           StatusCode::kFailedPrecondition);
    expect("same upload id, different files",
           Upload({HeaderMsg(Header({File("m.onnx", 11)}, "catalogue-partial"))}),
           StatusCode::kInvalidArgument);
    expect("resume at a wrong offset",
           Upload({HeaderMsg(Header({File("m.onnx", 10)}, "catalogue-partial")), Chunk(0, body)}),
           StatusCode::kInvalidArgument);
    EXPECT_TRUE(client_->AbortUpload("catalogue-partial").ok());
    expect("abort twice", client_->AbortUpload("catalogue-partial").code(), StatusCode::kNotFound);
  }
  ASSERT_EQ(Upload({HeaderMsg(Header({File("m.onnx", 10)}, "catalogue-done")), Chunk(0, body),
                    Finish({sha})}),
            StatusCode::kOk);
  expect("upload id already completed",
         Upload({HeaderMsg(Header({File("m.onnx", 10)}, "catalogue-done"))}),
         StatusCode::kFailedPrecondition);
  expect("AbortUpload of a committed upload", client_->AbortUpload("catalogue-done").code(),
         StatusCode::kFailedPrecondition);
  // --- unary calls ---
  expect("GetUploadStatus malformed id", client_->GetUploadStatus("../x").status().code(),
         StatusCode::kInvalidArgument);
  expect("GetUploadStatus unknown id", client_->GetUploadStatus("never-uploaded").status().code(),
         StatusCode::kNotFound);
  expect("AbortUpload malformed id", client_->AbortUpload(std::string(5000, 'a')).code(),
         StatusCode::kInvalidArgument);
  expect("GetModel malformed id", client_->GetModel("abc").status().code(),
         StatusCode::kInvalidArgument);
  expect("GetModel upper-case hex",
         client_->GetModel("sha256:" + std::string(64, 'A')).status().code(),
         StatusCode::kInvalidArgument);
  expect("GetModel unknown", client_->GetModel("sha256:" + std::string(64, 'a')).status().code(),
         StatusCode::kNotFound);
  expect("DeleteModel malformed id", client_->DeleteModel("../../models").code(),
         StatusCode::kInvalidArgument);
  expect("GetJob empty id", client_->GetJob("").status().code(), StatusCode::kInvalidArgument);
  expect("GetJob 4 MiB id", client_->GetJob(std::string(4 << 20, 'j')).status().code(),
         StatusCode::kInvalidArgument);
  expect("GetJob malformed id", client_->GetJob("job_0000000000000000").status().code(),
         StatusCode::kInvalidArgument);
  expect("GetJob unknown", client_->GetJob("job_00000000000000000000").status().code(),
         StatusCode::kNotFound);
  expect("CancelJob unknown", client_->Cancel("job_00000000000000000000").status().code(),
         StatusCode::kNotFound);
  expect("DeleteJob unknown", client_->DeleteJob("job_00000000000000000000").code(),
         StatusCode::kNotFound);
  {
    v1::ListJobsRequest r;
    r.add_states(static_cast<v1::JobState>(99));
    expect("ListJobs unknown state", client_->ListJobs(r).status().code(),
           StatusCode::kInvalidArgument);
    r.clear_states();
    r.set_page_token("zz");
    expect("ListJobs foreign page token", client_->ListJobs(r).status().code(),
           StatusCode::kInvalidArgument);
    r.clear_page_token();
    r.set_page_size(-1);
    expect("ListJobs negative page size", client_->ListJobs(r).status().code(),
           StatusCode::kInvalidArgument);
  }
  expect("Download unknown job",
         client_->Download("job_00000000000000000000", tmp_.path() + "/dl").status().code(),
         StatusCode::kNotFound);
  // --- recipes and submissions ---
  auto submit = [&](const v1::Recipe& r, const std::string& id = "") {
    return client_->Submit(SubmitRequest(id.empty() ? model_id : id, r)).status().code();
  };
  expect("Submit unknown model", submit(Fp16Recipe(), "sha256:" + std::string(64, 'c')),
         StatusCode::kNotFound);
  expect("Submit malformed model id", submit(Fp16Recipe(), "model"), StatusCode::kInvalidArgument);
  {
    v1::Recipe r = Fp16Recipe();
    r.set_block_size(7);
    r.set_precision(v1::PRECISION_INT4);
    expect("block size 7", submit(r), StatusCode::kInvalidArgument);
    r = Fp16Recipe();
    r.set_precision(v1::PRECISION_INT4);
    r.set_accuracy_level(9);
    expect("accuracy level 9", submit(r), StatusCode::kInvalidArgument);
    r = Fp16Recipe();
    r.set_precision(static_cast<v1::Precision>(77));
    expect("unknown precision", submit(r), StatusCode::kInvalidArgument);
    r = Fp16Recipe();
    r.set_format(static_cast<v1::ModelFormat>(99));
    expect("unknown format", submit(r), StatusCode::kInvalidArgument);
    r = Fp16Recipe();
    r.set_precision(v1::PRECISION_INT8);
    r.add_exclude_regex("(");
    expect("regex that does not compile", submit(r), StatusCode::kInvalidArgument);
    r.clear_exclude_regex();
    r.add_exclude_regex(std::string(1 << 20, 'a'));
    expect("1 MiB regex", submit(r), StatusCode::kInvalidArgument);
    r.clear_exclude_regex();
    for (int i = 0; i < 10000; ++i) r.add_exclude_regex(absl::StrCat("n", i));
    expect("10,000 regexes", submit(r), StatusCode::kInvalidArgument);
    r.clear_exclude_regex();
    std::string nested;
    for (int i = 0; i < 30000; ++i) nested += "(";
    nested += "a";
    for (int i = 0; i < 30000; ++i) nested += ")";
    r.add_exclude_regex(nested);
    expect("30,000 nested groups", submit(r), StatusCode::kInvalidArgument);
    r = Fp16Recipe();
    r.set_gguf_type("Q9_9");
    r.set_format(v1::MODEL_FORMAT_GGUF);
    r.clear_precision();
    expect("unknown GGUF type", submit(r), StatusCode::kInvalidArgument);
    r = Fp16Recipe();
    r.set_preset("no-such-preset");
    expect("unknown preset", submit(r), StatusCode::kInvalidArgument);
    r = Fp16Recipe();
    r.set_bits(7);
    r.set_format(v1::MODEL_FORMAT_MLX);
    expect("MLX bits 7", submit(r), StatusCode::kInvalidArgument);
    r = Fp16Recipe();
    r.set_threads(-3);
    expect("negative threads", submit(r), StatusCode::kInvalidArgument);
  }
  {
    v1::SubmitJobRequest req = SubmitRequest(model_id, Fp16Recipe());
    req.set_priority(1000);
    expect("priority 1000", client_->Submit(req).status().code(), StatusCode::kInvalidArgument);
    req = SubmitRequest(model_id, Fp16Recipe());
    req.set_idempotency_key(std::string(1 << 20, 'k'));
    expect("1 MiB idempotency key", client_->Submit(req).status().code(),
           StatusCode::kInvalidArgument);
    req = SubmitRequest(model_id, Fp16Recipe());
    for (int i = 0; i < 33; ++i) (*req.mutable_labels())[absl::StrCat("l", i)] = "v";
    expect("33 job labels", client_->Submit(req).status().code(), StatusCode::kInvalidArgument);
  }
  // --- bad models: the upload succeeds, the job fails with its code ---
  v1::Recipe fp16 = Fp16Recipe();
  expect_job("truncated ONNX", JobCode("trunc.onnx", gpt2.substr(0, gpt2.size() / 2), fp16),
             "INVALID_ARGUMENT");
  expect_job("ONNX cut after 100 bytes", JobCode("trunc100.onnx", gpt2.substr(0, 100), fp16),
             "INVALID_ARGUMENT");
  {
    std::mt19937 rng(7);
    std::string random(4096, '\0');
    for (char& c : random) c = static_cast<char>(rng());
    expect_job("random bytes as ONNX", JobCode("random.onnx", random, fp16), "INVALID_ARGUMENT");
    std::string flipped = gpt2;
    for (int i = 0; i < 64; ++i) flipped[rng() % 2048] ^= static_cast<char>(1 << (rng() % 8));
    const std::string code = JobCode("flipped.onnx", flipped, fp16);
    ++count;
    EXPECT_THAT(code, ::testing::AnyOf("", "INVALID_ARGUMENT")) << "bit-flipped ONNX header";
  }
  {
    v1::Recipe q8;
    q8.set_gguf_type("Q8_0");
    expect_job("GGUF magic and garbage",
               JobCode("garbage.gguf", "GGUF" + std::string(60, '\x7f'), q8), "INVALID_ARGUMENT");
    const std::string gguf = ReadAll(TestData() + "/gguf/tiny-llama-f32.gguf");
    expect_job("truncated GGUF", JobCode("trunc.gguf", gguf.substr(0, gguf.size() / 3), q8),
               "INVALID_ARGUMENT");
    std::string absurd = gguf.substr(0, 24);
    // tensor count (bytes 8..15) = 2^62
    uint64_t huge = 1ull << 62;
    absurd.replace(8, 8, reinterpret_cast<const char*>(&huge), 8);
    expect_job("GGUF claiming 2^62 tensors", JobCode("absurd.gguf", absurd, q8),
               "INVALID_ARGUMENT");
    expect_job("GGUF version 99",
               JobCode("v99.gguf", std::string("GGUF\x63\0\0\0", 8) + gguf.substr(8, 4096), q8),
               "INVALID_ARGUMENT");
  }
  std::cerr << count << " bad inputs checked\n";
  EXPECT_GE(count, 60);

  // Still serving, and what was stored before still verifies.
  ASSERT_TRUE(client_->Health().ok());
  auto model = client_->GetModel(model_id);
  ASSERT_TRUE(model.ok()) << model.status();
  auto dl = client_->Download(stored_job->job_id(), tmp_.path() + "/stored-artifact");
  ASSERT_TRUE(dl.ok()) << dl.status();  // sha256-verified by the client
  auto again = client_->Upload({Gpt2Model()});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->model.model_id(), model_id);
  v1::Recipe int8;
  int8.set_precision(v1::PRECISION_INT8);
  auto good = client_->Submit(SubmitRequest(model_id, int8));
  ASSERT_TRUE(good.ok()) << good.status();
  auto done = client_->Watch(good->job_id(), nullptr, absl::Seconds(60));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED) << done->error().message();
  // Partial uploads are bounded (the streams that ended early keep their
  // bytes for a resume: a few bytes each), and no work directory is left.
  uint64_t partial_bytes = 0;
  for (const auto& e : fs::recursive_directory_iterator(tmp_.path() + "/data/uploads")) {
    if (e.is_regular_file() && e.path().filename().string().rfind("f", 0) == 0) {
      partial_bytes += e.file_size();
    }
  }
  EXPECT_LE(partial_bytes, 64u);
  EXPECT_TRUE(fs::is_empty(tmp_.path() + "/data/work"));
}

}  // namespace
}  // namespace quantd::testing
