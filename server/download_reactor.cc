// DownloadArtifact: a server-streaming reactor that sends one artifact file
// from the requested offset in fixed-size chunks, one write in flight while
// the next chunk is read from disk.
#include <atomic>
#include <memory>

#include "absl/strings/str_cat.h"
#include "quantd/server/auth.h"
#include "quantd/server/executor.h"
#include "quantd/server/ids.h"
#include "quantd/server/translate.h"
#include "reactors.h"

namespace quantd::server {
namespace {

class DownloadReactor final : public grpc::ServerWriteReactor<v1::DownloadChunk> {
 public:
  DownloadReactor(const ServiceContext* ctx, grpc::CallbackServerContext* context,
                  const v1::DownloadArtifactRequest* request)
      : ctx_(ctx) {
    absl::Status st = Open(*context, *request);
    if (!st.ok()) {
      Finish(ToGrpcStatus(st));
      return;
    }
    *chunks_[0].mutable_file() = reader_->info();
    ctx_->io->Schedule([this] {
      absl::Status st = Fill(&chunks_[0]);
      if (!st.ok()) {
        Finish(ToGrpcStatus(st));
        return;
      }
      WriteAndReadAhead();
    });
  }

  void OnWriteDone(bool ok) override {
    write_ok_ = ok;
    if (ok) ctx_->metrics->DownloadBytes(chunks_[current_].data().size());
    StepEventDone();
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Open(const grpc::CallbackServerContext& context,
                    const v1::DownloadArtifactRequest& request) {
    absl::Status st = ctx_->auth->Check(context);
    if (!st.ok()) return st;
    st = ValidateJobId(request.job_id());
    if (!st.ok()) return st;
    auto job = ctx_->jobs->Get(request.job_id());
    if (!job.ok()) return job.status();
    if (job->state() != v1::JOB_STATE_SUCCEEDED) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", request.job_id(), " is ", v1::JobState_Name(job->state()),
                       "; artifacts exist once it SUCCEEDED (WatchJob to wait)"));
    }
    if (job->report().dry_run()) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", request.job_id(),
                       " was a dry run: nothing was written; its report holds the plan"));
    }
    auto reader = ctx_->blobs->OpenArtifactFile(request.job_id(), request.file_name());
    if (!reader.ok()) return reader.status();
    reader_ = *std::move(reader);
    if (request.offset() > reader_->info().size_bytes()) {
      return absl::OutOfRangeError(absl::StrCat("offset ", request.offset(), " is beyond the ",
                                                reader_->info().size_bytes(), "-byte file"));
    }
    offset_ = request.offset();
    return absl::OkStatus();
  }

  // Reads the chunk at offset_ into `chunk` (reusing its buffer).
  absl::Status Fill(v1::DownloadChunk* chunk) {
    absl::Status st = reader_->ReadAt(offset_, ctx_->chunk_bytes, chunk->mutable_data());
    if (st.ok() && chunk->data().empty() && offset_ < reader_->info().size_bytes()) {
      st = absl::DataLossError("the artifact file is shorter than its manifest");
    }
    if (!st.ok()) return st;
    chunk->set_offset(offset_);
    offset_ += chunk->data().size();
    return absl::OkStatus();
  }

  // On the I/O executor: sends chunks_[current_] and, while it is on its
  // way, reads the next chunk into the other message. The step ends when
  // both are done (StepEventDone), so the disk and the network overlap and
  // at most one task of this call runs at a time.
  //
  // Once the last write has started, this call may finish and delete the
  // reactor at any moment (OnWriteDone counts the step down on a gRPC
  // thread), so after StartWrite nothing here touches a member unless this
  // step still holds its own event.
  void WriteAndReadAhead() {
    const bool read_ahead = offset_ < reader_->info().size_bytes();
    read_ahead_ = read_ahead;
    step_events_.store(read_ahead ? 2 : 1, std::memory_order_relaxed);
    StartWrite(&chunks_[current_]);
    if (!read_ahead) return;
    read_status_ = Fill(&chunks_[1 - current_]);
    StepEventDone();
  }

  // The write or the read ahead of this step is done; the later of the two
  // moves on.
  void StepEventDone() {
    if (step_events_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (!write_ok_) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    if (!read_status_.ok()) {
      Finish(ToGrpcStatus(read_status_));
      return;
    }
    if (!read_ahead_) {
      Finish(grpc::Status::OK);
      return;
    }
    chunks_[current_].clear_file();
    current_ = 1 - current_;
    ctx_->io->Schedule([this] { WriteAndReadAhead(); });  // file reads off the callback thread
  }

  const ServiceContext* const ctx_;
  std::unique_ptr<ArtifactReader> reader_;
  uint64_t offset_ = 0;  // of the next chunk to read
  // Two messages: one being sent, the next being read. Their buffers are
  // reused for every chunk.
  v1::DownloadChunk chunks_[2];
  int current_ = 0;  // the message being sent
  // This step's state; written before its event is counted down, read by
  // whoever counts down last.
  bool read_ahead_ = false;
  bool write_ok_ = true;
  absl::Status read_status_;
  std::atomic<int> step_events_{0};
};

}  // namespace

grpc::ServerWriteReactor<v1::DownloadChunk>* NewDownloadReactor(
    const ServiceContext* ctx, grpc::CallbackServerContext* context,
    const v1::DownloadArtifactRequest* request) {
  return new DownloadReactor(ctx, context, request);
}

}  // namespace quantd::server
