// Integration tests: the real quantd on a loopback port and the real client
// library — end-to-end jobs, uploads, errors, listing, dedup.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/client/client.h"
#include "server_process.h"
#include "test_util.h"

namespace quantd::testing {
namespace {
namespace fs = std::filesystem;

class ServiceTest : public ServerTest {};

TEST_F(ServiceTest, HealthIsServing) {
  auto health = client_->Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_TRUE(*health);
}

TEST_F(ServiceTest, ReflectionListsServices) {
  EXPECT_EQ(RunCommand(Python() + " " + SourceDir() + "/tests/integration/reflection_check.py " +
                       server_->target()),
            0);
}

TEST_F(ServiceTest, GgufQ4KMJob) {
  v1::Recipe recipe;
  recipe.set_gguf_type("Q4_K_M");
  auto result =
      client_->Quantize({TestData() + "/gguf/tiny-llama-f32.gguf"}, recipe, tmp_.path() + "/out");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->model.format(), v1::MODEL_FORMAT_GGUF);
  EXPECT_EQ(result->job.report().format(), "gguf");
  ASSERT_EQ(result->download.paths.size(), 1u);
  std::ifstream in(result->download.paths[0], std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  EXPECT_EQ(std::string(magic, 4), "GGUF");
  EXPECT_LT(fs::file_size(result->download.paths[0]),
            fs::file_size(TestData() + "/gguf/tiny-llama-f32.gguf") / 4);
  // A GGUF model with an ONNX-only recipe is refused at submit.
  auto job = client_->Submit(SubmitRequest(result->model.model_id(), Fp16Recipe()));
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << job.status();
}

// A dry run through the service: the job succeeds with the plan and the
// output size and no artifact; the real job (not deduplicated against it)
// writes exactly what was planned.
TEST_F(ServiceTest, GgufDryRunJobPlansAndWritesNothing) {
  v1::Recipe recipe;
  recipe.set_gguf_type("Q4_K_M");
  recipe.add_tensor_types("attn_k=q8_0");
  recipe.set_dry_run(true);
  const std::string out = tmp_.path() + "/out";
  auto dry = client_->Quantize({TestData() + "/gguf/tiny-llama-f32.gguf"}, recipe, out);
  ASSERT_TRUE(dry.ok()) << dry.status();
  const v1::Report& plan = dry->job.report();
  EXPECT_TRUE(plan.dry_run());
  EXPECT_TRUE(dry->job.recipe().dry_run());
  EXPECT_EQ(dry->job.artifact().files_size(), 0);
  EXPECT_TRUE(dry->download.paths.empty());
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(plan.output_files_size(), 1);
  ASSERT_EQ(static_cast<uint64_t>(plan.plan_size()), plan.tensors_total());
  EXPECT_GT(plan.output_file_bytes(), 0u);
  auto download = client_->Download(dry->job.job_id(), out);
  EXPECT_EQ(download.status().code(), absl::StatusCode::kFailedPrecondition) << download.status();
  EXPECT_THAT(download.status().message(), ::testing::HasSubstr("dry run"));
  // The server says the same to a client that asks for a file by name.
  v1::FileInfo named;
  named.set_name("tiny-llama-f32.gguf");
  named.set_size_bytes(plan.output_file_bytes());
  fs::create_directories(out);
  auto file = client_->DownloadFile(dry->job.job_id(), named, out + "/x.gguf");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kFailedPrecondition) << file.status();
  EXPECT_THAT(file.status().message(), ::testing::HasSubstr("was a dry run"));
  EXPECT_FALSE(fs::exists(out + "/x.gguf"));

  recipe.set_dry_run(false);
  auto real = client_->Quantize({TestData() + "/gguf/tiny-llama-f32.gguf"}, recipe, out);
  ASSERT_TRUE(real.ok()) << real.status();
  EXPECT_NE(real->job.job_id(), dry->job.job_id());
  EXPECT_FALSE(real->job.report().dry_run());
  ASSERT_EQ(real->download.paths.size(), 1u);
  EXPECT_EQ(fs::file_size(real->download.paths[0]), plan.output_file_bytes());
  ASSERT_EQ(real->job.report().plan_size(), plan.plan_size());
  bool any_q8 = false;
  for (int i = 0; i < plan.plan_size(); ++i) {
    const v1::PlanEntry& p = plan.plan(i);
    const v1::PlanEntry& r = real->job.report().plan(i);
    EXPECT_EQ(p.name(), r.name());
    EXPECT_EQ(p.type_after(), r.type_after()) << p.name();
    EXPECT_EQ(p.bytes_after(), r.bytes_after()) << p.name();
    any_q8 |= p.name().find("attn_k") != std::string::npos && p.type_after() == "Q8_0" &&
              p.rule() == "tensor_type[0]";
  }
  EXPECT_TRUE(any_q8);

  // ONNX conversions have no plan: refused at submit, naming what can be planned.
  auto onnx = client_->Upload({Gpt2Model()});
  ASSERT_TRUE(onnx.ok()) << onnx.status();
  v1::Recipe onnx_recipe = Fp16Recipe();
  onnx_recipe.set_dry_run(true);
  auto job = client_->Submit(SubmitRequest(onnx->model.model_id(), onnx_recipe));
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << job.status();
  EXPECT_THAT(job.status().message(), ::testing::HasSubstr("dry run plans GGUF outputs"));
}

TEST_F(ServiceTest, UploadFp16JobDownloadMatchesInOrt) {
  std::vector<v1::JobEvent> events;
  client::QuantizeOptions options;
  options.on_event = [&](const v1::JobEvent& e) { events.push_back(e); };
  options.labels["team"] = "it";
  const std::string out = tmp_.path() + "/out";
  auto result = client_->Quantize({Gpt2Model()}, Fp16Recipe(), out, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->job.state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_FALSE(events.empty());
  EXPECT_TRUE(events.back().final());
  EXPECT_EQ(result->job.report().precision(), "fp16");
  EXPECT_GT(result->job.report().tensors_converted(), 0u);
  EXPECT_EQ(result->job.labels().at("team"), "it");
  ASSERT_EQ(result->download.paths.size(), 1u);
  EXPECT_EQ(fs::path(result->download.paths[0]).filename(), "past.onnx");
  EXPECT_FALSE(fs::exists(out + "/past.onnx.part"));
  EXPECT_TRUE(OrtOutputsMatch(Gpt2Model(), result->download.paths[0], 0.99));
}

TEST_F(ServiceTest, Int8AndInt4JobsMatchInOrt) {
  for (v1::Precision p : {v1::PRECISION_INT8, v1::PRECISION_INT4}) {
    v1::Recipe recipe;
    recipe.set_precision(p);
    const std::string out = tmp_.path() + "/out-" + v1::Precision_Name(p);
    auto result = client_->Quantize({Gpt2Model()}, recipe, out);
    ASSERT_TRUE(result.ok()) << v1::Precision_Name(p) << ": " << result.status();
    EXPECT_GT(result->job.report().weights_quantized(), 0u) << v1::Precision_Name(p);
    EXPECT_TRUE(OrtOutputsMatch(Gpt2Model(), result->download.paths[0], 0.95))
        << v1::Precision_Name(p);
  }
}

TEST_F(ServiceTest, PresetRecipeRuns) {
  v1::Recipe recipe;
  recipe.set_preset("mobile-int4");
  auto result = client_->Quantize({Gpt2Model()}, recipe, tmp_.path() + "/out");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->job.recipe().precision(), v1::PRECISION_INT4);
  EXPECT_EQ(result->job.recipe().preset(), "mobile-int4");
}

TEST_F(ServiceTest, MultiFileUploadWithExternalData) {
  uint64_t last_done = 0, last_total = 0;
  client::UploadOptions upload_options;
  upload_options.on_progress = [&](uint64_t done, uint64_t total) {
    EXPECT_GE(done, last_done);
    last_done = done;
    last_total = total;
  };
  auto upload = client_->Upload(LlamaExtDataModel(), upload_options);
  ASSERT_TRUE(upload.ok()) << upload.status();
  EXPECT_EQ(last_done, upload->model.size_bytes());
  EXPECT_EQ(last_total, upload->model.size_bytes());
  ASSERT_EQ(upload->model.files_size(), 2);
  EXPECT_EQ(upload->model.files(0).name(), "model.onnx");
  EXPECT_EQ(upload->model.files(1).name(), "model.onnx.data");
  EXPECT_EQ(upload->model.format(), v1::MODEL_FORMAT_ONNX);
  auto digest = client::Sha256OfFile(LlamaExtDataModel()[1]);
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(upload->model.files(1).sha256(), *digest);

  v1::Recipe recipe;
  recipe.set_precision(v1::PRECISION_FP32);
  recipe.set_external_data(v1::EXTERNAL_DATA_ALWAYS);
  auto job = client_->Submit(SubmitRequest(upload->model.model_id(), recipe));
  ASSERT_TRUE(job.ok()) << job.status();
  auto done = client_->Watch(job->job_id(), nullptr, absl::Seconds(120));
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED) << done->error().message();
  ASSERT_EQ(done->artifact().files_size(), 2);
  uint64_t got = 0;
  client::DownloadOptions download_options;
  const uint64_t artifact_bytes = done->artifact().size_bytes();
  download_options.on_progress = [&](uint64_t d, uint64_t t) {
    got = d;
    EXPECT_EQ(t, artifact_bytes);
  };
  auto download = client_->Download(job->job_id(), tmp_.path() + "/out", download_options);
  ASSERT_TRUE(download.ok()) << download.status();
  EXPECT_EQ(got, done->artifact().size_bytes());
  ASSERT_EQ(download->paths.size(), 2u);
  EXPECT_TRUE(OrtOutputsMatch(LlamaExtDataModel()[0], download->paths[0], 0.99));
}

TEST_F(ServiceTest, SameContentUploadedTwiceGivesSameModelId) {
  auto a = client_->Upload({Gpt2Model()});
  auto b = client_->Upload({Gpt2Model()});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->model.model_id(), b->model.model_id());
  EXPECT_NE(a->upload_id, b->upload_id);
}

TEST_F(ServiceTest, KnownDigestsSkipAStoredModelAndDownloadFileTakesAPath) {
  auto digest = client::Sha256OfFile(Gpt2Model());
  ASSERT_TRUE(digest.ok()) << digest.status();
  client::UploadOptions options;
  options.sha256 = {*digest};
  auto first = client_->Upload({Gpt2Model()}, options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->skipped);
  v1::FileInfo info;
  info.set_name(fs::path(Gpt2Model()).filename().string());
  info.set_size_bytes(fs::file_size(Gpt2Model()));
  info.set_sha256(*digest);
  EXPECT_EQ(client::ModelIdOf({info}), first->model.model_id());
  uint64_t calls = 0;
  options.on_progress = [&](uint64_t, uint64_t) { ++calls; };
  auto again = client_->Upload({Gpt2Model()}, options);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->skipped);
  EXPECT_EQ(again->bytes_sent, 0u);
  EXPECT_EQ(calls, 0u);
  EXPECT_EQ(again->model.model_id(), first->model.model_id());

  auto job = client_->Submit(SubmitRequest(first->model.model_id(), Fp16Recipe()));
  ASSERT_TRUE(job.ok()) << job.status();
  auto done = client_->Watch(job->job_id(), nullptr, absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->state(), v1::JOB_STATE_SUCCEEDED) << done->error().message();
  const std::string path = tmp_.path() + "/chosen-name.onnx";
  uint64_t got = 0;
  client::DownloadOptions download_options;
  download_options.on_progress = [&](uint64_t d, uint64_t) { got = d; };
  auto file =
      client_->DownloadFile(job->job_id(), done->artifact().files(0), path, download_options);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->paths, std::vector<std::string>{path});
  EXPECT_EQ(got, done->artifact().files(0).size_bytes());
  auto out_digest = client::Sha256OfFile(path);
  ASSERT_TRUE(out_digest.ok());
  EXPECT_EQ(*out_digest, done->artifact().files(0).sha256());
  // A path that cannot be written is a local file error, not the server's.
  auto bad = client_->DownloadFile(job->job_id(), done->artifact().files(0),
                                   tmp_.path() + "/no-such-dir/x.onnx");
  EXPECT_FALSE(bad.ok());
  EXPECT_TRUE(client::IsLocalFileError(bad.status())) << bad.status();
}

TEST_F(ServiceTest, UploadOfStoredModelWithDigestsEndsAtOnce) {
  auto first = client_->Upload({Gpt2Model()});
  ASSERT_TRUE(first.ok());
  grpc::ClientContext ctx;
  v1::Model model;
  auto writer = client_->stub()->UploadModel(&ctx, &model);
  v1::UploadRequest req;
  *req.mutable_header()->add_files() = first->model.files(0);  // name, size, sha256
  writer->Write(req);
  writer->WritesDone();
  grpc::Status st = writer->Finish();
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(model.model_id(), first->model.model_id());
}

TEST_F(ServiceTest, InterruptedUploadResumes) {
  const auto files = LlamaExtDataModel();
  uint64_t total = fs::file_size(files[0]) + fs::file_size(files[1]);
  const std::string upload_id = "resume-test-0001";
  {
    // Send the header and the first ~1 MB, then drop the stream.
    grpc::ClientContext ctx;
    v1::Model model;
    auto writer = client_->stub()->UploadModel(&ctx, &model);
    v1::UploadRequest req;
    req.mutable_header()->set_upload_id(upload_id);
    for (const auto& f : files) {
      auto* info = req.mutable_header()->add_files();
      info->set_name(fs::path(f).filename().string());
      info->set_size_bytes(fs::file_size(f));
    }
    ASSERT_TRUE(writer->Write(req));
    std::ifstream in0(files[0], std::ios::binary);
    std::string f0((std::istreambuf_iterator<char>(in0)), {});
    std::ifstream in1(files[1], std::ios::binary);
    std::string f1((std::istreambuf_iterator<char>(in1)), {});
    std::string all = f0 + f1;
    v1::UploadRequest chunk;
    chunk.mutable_chunk()->set_offset(0);
    chunk.mutable_chunk()->set_data(all.substr(0, 1000000));
    ASSERT_TRUE(writer->Write(chunk));
    writer->WritesDone();
    grpc::Status st = writer->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  }
  auto status = client_->GetUploadStatus(upload_id);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->committed_bytes(), 1000000u);
  EXPECT_EQ(status->total_bytes(), total);
  EXPECT_FALSE(status->complete());

  client::UploadOptions options;
  options.upload_id = upload_id;
  auto resumed = client_->Upload(files, options);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->resumed_from, 1000000u);
  EXPECT_EQ(resumed->bytes_sent, total - 1000000u);
  auto fresh = client_->Upload(files);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(resumed->model.model_id(), fresh->model.model_id());
  auto done = client_->GetUploadStatus(upload_id);
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->complete());
  EXPECT_EQ(done->model_id(), fresh->model.model_id());
}

TEST_F(ServiceTest, WrongDigestIsDataLossAndServerKeepsServing) {
  grpc::ClientContext ctx;
  v1::Model model;
  auto writer = client_->stub()->UploadModel(&ctx, &model);
  v1::UploadRequest req;
  auto* info = req.mutable_header()->add_files();
  info->set_name("model.onnx");
  info->set_size_bytes(5);
  info->set_sha256(std::string(64, 'a'));
  ASSERT_TRUE(writer->Write(req));
  v1::UploadRequest chunk;
  chunk.mutable_chunk()->set_data("hello");
  ASSERT_TRUE(writer->Write(chunk));
  writer->WritesDone();
  grpc::Status st = writer->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS) << st.error_message();
  EXPECT_THAT(st.error_message(), ::testing::HasSubstr("sha256 mismatch"));
  auto health = client_->Health();
  ASSERT_TRUE(health.ok());
  auto ok = client_->Upload({Gpt2Model()});
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST_F(ServiceTest, BadUploadHeadersAreInvalidArgument) {
  for (const std::string name : {"../evil.onnx", "/etc/passwd", "a/b.onnx", "", ".hidden"}) {
    grpc::ClientContext ctx;
    v1::Model model;
    auto writer = client_->stub()->UploadModel(&ctx, &model);
    v1::UploadRequest req;
    auto* info = req.mutable_header()->add_files();
    info->set_name(name);
    info->set_size_bytes(4);
    writer->Write(req);
    writer->WritesDone();
    grpc::Status st = writer->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << name;
  }
  EXPECT_FALSE(fs::exists(tmp_.path() + "/evil.onnx"));
}

TEST_F(ServiceTest, TruncatedModelJobFailsWithMessage) {
  const std::string path = tmp_.path() + "/truncated.onnx";
  {
    std::ifstream in(Gpt2Model(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  auto upload = client_->Upload({path});
  ASSERT_TRUE(upload.ok()) << upload.status();
  auto job = client_->Submit(SubmitRequest(upload->model.model_id(), Fp16Recipe()));
  ASSERT_TRUE(job.ok()) << job.status();
  auto done = client_->Watch(job->job_id(), nullptr, absl::Seconds(60));
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::JOB_STATE_FAILED);
  EXPECT_FALSE(done->error().code().empty());
  EXPECT_FALSE(done->error().message().empty());
  // No artifact to download.
  auto download = client_->Download(job->job_id(), tmp_.path() + "/out");
  EXPECT_EQ(download.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ServiceTest, CorruptModelJobFailsAndOthersSucceed) {
  const std::string path = tmp_.path() + "/garbage.onnx";
  {
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 100000; ++i) out.put(static_cast<char>((i * 2654435761u) >> 13));
  }
  auto bad = client_->Upload({path});
  ASSERT_TRUE(bad.ok()) << bad.status();
  auto bad_job = client_->Submit(SubmitRequest(bad->model.model_id(), Fp16Recipe()));
  ASSERT_TRUE(bad_job.ok());
  auto good = client_->Quantize({Gpt2Model()}, Fp16Recipe(), tmp_.path() + "/out");
  ASSERT_TRUE(good.ok()) << good.status();
  auto done = client_->Watch(bad_job->job_id(), nullptr, absl::Seconds(60));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(done->error().code(), "INVALID_ARGUMENT") << done->error().message();
}

TEST_F(ServiceTest, AbsurdRecipesAreInvalidArgumentAtSubmit) {
  auto upload = client_->Upload({Gpt2Model()});
  ASSERT_TRUE(upload.ok());
  const std::string id = upload->model.model_id();
  std::vector<v1::Recipe> recipes(6);
  recipes[0].set_precision(v1::PRECISION_INT4);
  recipes[0].set_block_size(7);
  recipes[1].set_precision(v1::PRECISION_FP16);
  recipes[1].set_threads(100000);
  recipes[2].set_preset("no-such-preset");
  recipes[3].set_gguf_type("Q4_K_M");  // ONNX model
  recipes[4] = v1::Recipe();           // no target at all
  recipes[5].set_precision(static_cast<v1::Precision>(42));
  for (size_t i = 0; i < recipes.size(); ++i) {
    auto job = client_->Submit(SubmitRequest(id, recipes[i]));
    EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument) << i << ": " << job.status();
    EXPECT_FALSE(job.status().message().empty());
  }
  auto missing = client_->Submit(SubmitRequest("sha256:" + std::string(64, '0'), Fp16Recipe()));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  auto malformed = client_->Submit(SubmitRequest("../../etc", Fp16Recipe()));
  EXPECT_EQ(malformed.status().code(), absl::StatusCode::kInvalidArgument);
  v1::SubmitJobRequest prio = SubmitRequest(id, Fp16Recipe());
  prio.set_priority(1000);
  EXPECT_EQ(client_->Submit(prio).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ServiceTest, DedupAndIdempotencyReturnSameJob) {
  auto upload = client_->Upload({Gpt2Model()});
  ASSERT_TRUE(upload.ok());
  auto a = client_->Submit(SubmitRequest(upload->model.model_id(), Fp16Recipe()));
  v1::Recipe same = Fp16Recipe();
  same.set_threads(2);  // not part of the identity
  auto b = client_->Submit(SubmitRequest(upload->model.model_id(), same));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->job_id(), b->job_id());
  ASSERT_TRUE(client_->Watch(a->job_id(), nullptr, absl::Seconds(60)).ok());
  auto c = client_->Submit(SubmitRequest(upload->model.model_id(), Fp16Recipe()));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->job_id(), a->job_id());
  EXPECT_EQ(c->state(), v1::JOB_STATE_SUCCEEDED);

  v1::SubmitJobRequest keyed = SubmitRequest(upload->model.model_id(), Fp16Recipe());
  keyed.mutable_recipe()->set_keep_io_types(false);
  keyed.set_idempotency_key("build-42");
  auto k1 = client_->Submit(keyed);
  auto k2 = client_->Submit(keyed);
  ASSERT_TRUE(k1.ok() && k2.ok());
  EXPECT_EQ(k1->job_id(), k2->job_id());
  EXPECT_NE(k1->job_id(), a->job_id());
}

TEST_F(ServiceTest, WatchFinishedJobSendsFinalStateAtOnce) {
  auto result = client_->Quantize({Gpt2Model()}, Fp16Recipe(), tmp_.path() + "/out");
  ASSERT_TRUE(result.ok());
  int events = 0;
  auto job = client_->Watch(
      result->job.job_id(),
      [&](const v1::JobEvent& e) {
        ++events;
        EXPECT_TRUE(e.final());
      },
      absl::Seconds(5));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(events, 1);
  EXPECT_EQ(job->state(), v1::JOB_STATE_SUCCEEDED);
}

TEST_F(ServiceTest, ListJobsFiltersAndPages) {
  auto upload = client_->Upload({Gpt2Model()});
  ASSERT_TRUE(upload.ok());
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    v1::SubmitJobRequest req = SubmitRequest(upload->model.model_id(), Fp16Recipe());
    req.mutable_recipe()->add_node_block_list("no-such-node-" + std::to_string(i));
    (*req.mutable_labels())["batch"] = i % 2 == 0 ? "even" : "odd";
    auto job = client_->Submit(req);
    ASSERT_TRUE(job.ok()) << job.status();
    ids.push_back(job->job_id());
  }
  v1::ListJobsRequest list;
  list.set_page_size(2);
  std::vector<std::string> seen;
  for (int page = 0; page < 10; ++page) {
    auto resp = client_->ListJobs(list);
    ASSERT_TRUE(resp.ok()) << resp.status();
    for (const auto& j : resp->jobs()) seen.push_back(j.job_id());
    if (resp->next_page_token().empty()) break;
    list.set_page_token(resp->next_page_token());
  }
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen.front(), ids.back());  // newest first
  v1::ListJobsRequest by_label;
  (*by_label.mutable_labels())["batch"] = "even";
  auto even = client_->ListJobs(by_label);
  ASSERT_TRUE(even.ok());
  EXPECT_EQ(even->jobs_size(), 3);
  v1::ListJobsRequest bad;
  bad.set_page_token("garbage");
  EXPECT_EQ(client_->ListJobs(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ServiceTest, DeleteJobAndModel) {
  auto result = client_->Quantize({Gpt2Model()}, Fp16Recipe(), tmp_.path() + "/out");
  ASSERT_TRUE(result.ok());
  const std::string job_id = result->job.job_id();
  EXPECT_TRUE(fs::exists(tmp_.path() + "/data/artifacts/" + job_id));
  ASSERT_TRUE(client_->DeleteJob(job_id).ok());
  EXPECT_EQ(client_->GetJob(job_id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(tmp_.path() + "/data/artifacts/" + job_id));
  ASSERT_TRUE(client_->DeleteModel(result->model.model_id()).ok());
  EXPECT_EQ(client_->GetModel(result->model.model_id()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->DeleteModel(result->model.model_id()).code(), absl::StatusCode::kNotFound);
}

TEST_F(ServiceTest, DownloadResumesFromPartialFile) {
  auto result = client_->Quantize({Gpt2Model()}, Fp16Recipe(), tmp_.path() + "/out");
  ASSERT_TRUE(result.ok());
  const std::string dir = tmp_.path() + "/again";
  fs::create_directories(dir);
  {
    std::ifstream in(result->download.paths[0], std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(dir + "/past.onnx.part", std::ios::binary) << bytes.substr(0, 100000);
  }
  auto again = client_->Download(result->job.job_id(), dir);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->resumed_bytes, 100000u);
  auto a = client::Sha256OfFile(result->download.paths[0]);
  auto b = client::Sha256OfFile(again->paths[0]);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  // A corrupt partial file is caught by the digest check.
  { std::ofstream(dir + "/past.onnx.part", std::ios::binary) << std::string(5000, 'x'); }
  fs::remove(dir + "/past.onnx");
  auto bad = client_->Download(result->job.job_id(), dir);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(fs::exists(dir + "/past.onnx"));
  // Raw: offset past the end.
  grpc::ClientContext ctx;
  v1::DownloadArtifactRequest req;
  req.set_job_id(result->job.job_id());
  req.set_offset(1ull << 40);
  auto reader = client_->stub()->DownloadArtifact(&ctx, req);
  v1::DownloadChunk chunk;
  while (reader->Read(&chunk)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::OUT_OF_RANGE);
}

// The server sends an artifact's bytes from a mapping of the file: one cut
// short on the server's disk is DATA_LOSS (never a crash), a request that
// is not a DownloadArtifactRequest is INVALID_ARGUMENT, and the server
// keeps serving.
TEST_F(ServiceTest, CutShortArtifactIsDataLossAndMalformedDownloadRequestInvalid) {
  auto result = client_->Quantize({Gpt2Model()}, Fp16Recipe(), tmp_.path() + "/out");
  ASSERT_TRUE(result.ok()) << result.status();
  const std::string job_id = result->job.job_id();
  const std::string artifact =
      tmp_.path() + "/data/artifacts/" + job_id + "/" + result->job.artifact().files(0).name();
  ASSERT_TRUE(fs::exists(artifact));
  fs::resize_file(artifact, fs::file_size(artifact) / 2);
  auto cut = client_->Download(job_id, tmp_.path() + "/cut");
  EXPECT_EQ(cut.status().code(), absl::StatusCode::kDataLoss) << cut.status();
  EXPECT_THAT(std::string(cut.status().message()), ::testing::HasSubstr("its manifest says"));
  EXPECT_FALSE(fs::exists(tmp_.path() + "/cut/" + result->job.artifact().files(0).name()));

  auto channel = grpc::CreateChannel(server_->target(), grpc::InsecureChannelCredentials());
  const grpc::internal::RpcMethod method("/quantd.v1.Quantd/DownloadArtifact",
                                         grpc::internal::RpcMethod::SERVER_STREAMING);
  const std::string garbage = "\x0a\xff\xff\x03job";  // a length past the end
  grpc::Slice slice(garbage);
  const grpc::ByteBuffer request(&slice, 1);
  grpc::ClientContext ctx;
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(channel.get(), method, &ctx,
                                                                    request));
  grpc::ByteBuffer message;
  while (reader->Read(&message)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  auto health = client_->Health();
  EXPECT_TRUE(health.ok() && *health);
}

TEST(ServiceLimitsTest, UploadOverLimitIsResourceExhausted) {
  TempDir tmp;
  ServerProcess server(tmp.path() + "/data", {"--max-upload-bytes", "100K"});
  ASSERT_TRUE(server.Start().ok());
  auto c = server.NewClient();
  auto upload = c->Upload({Gpt2Model()});  // ~565 KiB
  EXPECT_EQ(upload.status().code(), absl::StatusCode::kResourceExhausted) << upload.status();
  auto health = c->Health();
  EXPECT_TRUE(health.ok() && *health);
}

TEST(ServiceLimitsTest, SecondServerOnSameDataDirRefusesToStart) {
  TempDir tmp;
  ServerProcess first(tmp.path() + "/data");
  ASSERT_TRUE(first.Start().ok());
  ServerProcess second(tmp.path() + "/data");
  absl::Status st = second.Start();
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("another quantd"));
  auto health = first.NewClient()->Health();
  EXPECT_TRUE(health.ok() && *health);
}

TEST(ServiceLimitsTest, FreeDiskReserveIsResourceExhausted) {
  TempDir tmp;
  ServerProcess server(tmp.path() + "/data", {"--min-free-bytes", "1000T"});
  ASSERT_TRUE(server.Start().ok());
  auto upload = server.NewClient()->Upload({Gpt2Model()});
  EXPECT_EQ(upload.status().code(), absl::StatusCode::kResourceExhausted) << upload.status();
  EXPECT_THAT(std::string(upload.status().message()), ::testing::HasSubstr("free disk"));
}

}  // namespace
}  // namespace quantd::testing
