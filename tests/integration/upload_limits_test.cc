// Upload streams under pressure through the real server: room reserved at
// the start of an upload, AbortUpload, the cap on concurrent streams, the
// idle-stream timeout, and a low open-file limit.
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace quantd::testing {
namespace {
namespace fs = std::filesystem;

// One raw UploadModel stream (the client library would resume and retry).
struct RawUpload {
  grpc::ClientContext ctx;
  v1::Model model;
  std::unique_ptr<grpc::ClientWriter<v1::UploadRequest>> writer;

  RawUpload(client::Client* c, const v1::UploadHeader& header) {
    writer = c->stub()->UploadModel(&ctx, &model);
    v1::UploadRequest req;
    *req.mutable_header() = header;
    writer->Write(req);
  }
  bool Send(uint64_t offset, const std::string& data) {
    v1::UploadRequest req;
    req.mutable_chunk()->set_offset(offset);
    req.mutable_chunk()->set_data(data);
    return writer->Write(req);
  }
  grpc::Status End() {
    writer->WritesDone();
    return writer->Finish();
  }
};

v1::UploadHeader Header(const std::string& id, uint64_t size, int files = 1) {
  v1::UploadHeader h;
  h.set_upload_id(id);
  for (int i = 0; i < files; ++i) {
    auto* f = h.add_files();
    f->set_name(i == 0 ? "model.onnx" : absl::StrCat("part", i, ".bin"));
    f->set_size_bytes(size);
  }
  return h;
}

class UploadLimitsTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> args) {
    server_ = std::make_unique<ServerProcess>(tmp_.path() + "/data", std::move(args));
    ASSERT_TRUE(server_->Start().ok());
    client_ = server_->NewClient();
    ASSERT_NE(client_, nullptr);
  }
  void TearDown() override {
    if (HasFailure() && server_ != nullptr) std::cerr << server_->ReadLog();
  }
  // A small job still runs end to end.
  void ExpectServesAGoodJob() {
    auto up = client_->Upload({Gpt2Model()});
    ASSERT_TRUE(up.ok()) << up.status();
    auto job = client_->Submit(SubmitRequest(up->model.model_id(), Fp16Recipe()));
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_TRUE(WaitForJob(client_.get(), job->job_id(),
                           [](const v1::Job& j) { return j.state() == v1::JOB_STATE_SUCCEEDED; }));
  }

  TempDir tmp_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(UploadLimitsTest, SecondUploadThatWouldNotFitIsRefusedAtItsStartAndAbortFreesTheRoom) {
  Start({"--max-store-bytes", "4M"});
  const uint64_t big = 3 << 20;  // 75 % of the store, each
  RawUpload first(client_.get(), Header("room-upload-1", big));
  ASSERT_TRUE(first.Send(0, std::string(1000, 'x')));
  grpc::Status st = first.End();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  RawUpload second(client_.get(), Header("room-upload-2", big));
  st = second.End();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  // The way out without an operator: discard the partial upload.
  ASSERT_TRUE(client_->AbortUpload("room-upload-1").ok());
  EXPECT_EQ(client_->GetUploadStatus("room-upload-1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->AbortUpload("room-upload-1").code(), absl::StatusCode::kNotFound);
  RawUpload third(client_.get(), Header("room-upload-3", big));
  ASSERT_TRUE(third.Send(0, std::string(1000, 'y')));
  st = third.End();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  // After a kill, the restarted server still holds the room for the
  // resumable upload (so a new 3 MiB upload is refused), and AbortUpload
  // still frees it.
  server_->Kill();
  ASSERT_TRUE(server_->Start().ok());
  client_ = server_->NewClient();
  RawUpload fourth(client_.get(), Header("room-upload-4", big));
  EXPECT_EQ(fourth.End().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_TRUE(client_->AbortUpload("room-upload-3").ok());
  ExpectServesAGoodJob();
}

TEST_F(UploadLimitsTest, StreamsBeyondTheCapAreResourceExhausted) {
  Start({"--max-concurrent-uploads", "2"});
  auto a = std::make_unique<RawUpload>(client_.get(), Header("cap-upload-a", 10));
  auto b = std::make_unique<RawUpload>(client_.get(), Header("cap-upload-b", 10));
  // Both streams are open on the server before the third starts.
  ASSERT_TRUE(a->Send(0, "0123"));
  ASSERT_TRUE(b->Send(0, "0123"));
  for (int i = 0; i < 100 && client_->GetUploadStatus("cap-upload-b").status().ok() == false; ++i) {
    usleep(20 * 1000);
  }
  RawUpload c(client_.get(), Header("cap-upload-c", 10));
  grpc::Status st = c.End();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_THAT(st.error_message(), ::testing::HasSubstr("--max-concurrent-uploads"));
  EXPECT_EQ(a->End().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  a.reset();
  b->End();
  b.reset();
  ExpectServesAGoodJob();
}

TEST_F(UploadLimitsTest, IdleStreamsAreCancelledAndTheirBytesKept) {
  Start({"--upload-idle-seconds", "1", "--max-concurrent-uploads", "1"});
  RawUpload idle(client_.get(), Header("idle-upload-1", 10));
  ASSERT_TRUE(idle.Send(0, "01234"));
  sleep(4);  // longer than the timeout plus the server's one-second sweep
  grpc::Status st = idle.End();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::CANCELLED) << st.error_message();
  // The slot is free again and the bytes are there for a resume.
  auto status = client_->GetUploadStatus("idle-upload-1");
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->committed_bytes(), 5u);
  ExpectServesAGoodJob();
}

TEST_F(UploadLimitsTest, ManyFilesPerStreamDoNotExhaustOpenFiles) {
  // The server inherits this process's limit: 256 open files (systemd's
  // default is 1024). Ten idle streams declaring 64 files each would need
  // 640 descriptors if every declared file were opened up front.
  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
  struct rlimit low = old;
  low.rlim_cur = 256;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  Start({});
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
  std::vector<std::unique_ptr<RawUpload>> streams;
  for (int i = 0; i < 10; ++i) {
    streams.push_back(
        std::make_unique<RawUpload>(client_.get(), Header(absl::StrCat("fd-upload-", i), 8, 64)));
    ASSERT_TRUE(streams.back()->Send(0, "0123"));
  }
  for (int i = 0; i < 10; ++i) {
    auto status = client_->GetUploadStatus(absl::StrCat("fd-upload-", i));
    for (int t = 0; t < 100 && (!status.ok() || status->committed_bytes() != 4); ++t) {
      usleep(20 * 1000);
      status = client_->GetUploadStatus(absl::StrCat("fd-upload-", i));
    }
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_EQ(status->committed_bytes(), 4u);
  }
  ExpectServesAGoodJob();
  for (auto& s : streams) s->End();
}

}  // namespace
}  // namespace quantd::testing
