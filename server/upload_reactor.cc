// UploadModel: a client-streaming reactor on raw messages. Receives the next
// messages while the ones received are appended, in order, to the upload's
// part files through an UploadWriter on the I/O executor; a chunk's bytes
// are hashed and written from the slices they arrived in.
#include <grpcpp/impl/codegen/proto_utils.h>

#include <deque>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "quantd/api/chunk_view.h"
#include "quantd/server/auth.h"
#include "quantd/server/executor.h"
#include "quantd/server/translate.h"
#include "quantd/server/upload_streams.h"
#include "reactors.h"

namespace quantd::server {
namespace {

std::string UploadFailureReason(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kDataLoss:
      return "digest_mismatch";
    case absl::StatusCode::kResourceExhausted:
      return "resource_exhausted";
    case absl::StatusCode::kInvalidArgument:
      return "invalid_argument";
    case absl::StatusCode::kFailedPrecondition:
      return "incomplete";
    case absl::StatusCode::kUnauthenticated:
      return "unauthenticated";
    case absl::StatusCode::kCancelled:
      return "cancelled";
    case absl::StatusCode::kAborted:
      return "aborted";
    default:
      break;
  }
  return "internal";
}

class UploadReactor final : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  UploadReactor(const ServiceContext* ctx, grpc::CallbackServerContext* context,
                grpc::ByteBuffer* response)
      : ctx_(ctx), context_(context), response_(response) {
    // Every stream is counted from its start, so refusals before the header
    // is accepted (auth, limits, bad names) pair up with End() as failures.
    ctx_->metrics->UploadStarted();
    absl::Status st = ctx_->auth->Check(*context);
    if (st.ok() && ctx_->draining != nullptr && ctx_->draining->load()) {
      st = absl::UnavailableError("the server is shutting down; resume the upload later");
    }
    if (st.ok() && ctx_->upload_streams != nullptr) {
      st = ctx_->upload_streams->Add(context);
      registered_ = st.ok();
    }
    if (!st.ok()) {
      End(st);
      return;
    }
    absl::MutexLock lock(&mu_);
    for (int i = kSlots - 1; i >= 0; --i) free_.push_back(i);
    StartNextReadLocked();
  }

  // Receiving and storing overlap: the next message is read (into another
  // of kSlots messages) while the I/O executor writes and hashes the ones
  // received. The messages are processed in order by one drain task at a
  // time, so file writes, digests and the commit's fsync stay off gRPC's
  // threads and at most one task per upload runs.
  void OnReadDone(bool ok) override {
    if (registered_) ctx_->upload_streams->Touch(context_, /*busy=*/true);
    bool schedule = false;
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return;  // ended while this read was in flight
      received_.push_back(ok ? reading_ : kEndOfStream);
      reading_ = -1;
      if (ok) {
        StartNextReadLocked();
      } else {
        end_seen_ = true;
      }
      schedule = !draining_;
      draining_ = true;
    }
    if (schedule) ctx_->io->Schedule([this] { Drain(); });
  }

  void OnDone() override {
    if (registered_) ctx_->upload_streams->Remove(context_);
    delete this;
  }

 private:
  static constexpr int kSlots = 4;
  static constexpr int kEndOfStream = -1;
  static constexpr int kNone = -2;

  // Starts the next read when a message is free and the stream goes on.
  void StartNextReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (reading_ >= 0 || free_.empty() || end_seen_) return;
    reading_ = free_.back();
    free_.pop_back();
    StartRead(&requests_[reading_]);
  }

  // On the I/O executor: processes the messages received, in order, until
  // none is left or the stream ends.
  void Drain() {
    bool idle_marked = false;
    for (;;) {
      int slot;
      {
        absl::MutexLock lock(&mu_);
        if (received_.empty() && idle_marked) {
          // The last use of this object by this task: once draining_ is
          // false, another drain may end the stream and OnDone delete it.
          draining_ = false;
          return;
        }
        if (!received_.empty()) {
          slot = received_.front();
          received_.pop_front();
          idle_marked = false;
        } else {
          slot = kNone;
        }
      }
      if (slot == kNone) {
        // Nothing left: not busy (while still the drain task, so the
        // stream cannot end meanwhile); then look once more.
        if (registered_) ctx_->upload_streams->Touch(context_, /*busy=*/false);
        idle_marked = true;
        continue;
      }
      absl::Status st;
      bool end = false;
      if (slot == kEndOfStream) {
        // Cancelled (by the client, or by the server as idle): the bytes
        // received stay for a resume.
        end = true;
        st = context_->IsCancelled() ? absl::CancelledError(
                                           "the upload stream was cancelled "
                                           "(by the client, or idle for longer "
                                           "than --upload-idle-seconds)")
                                     : EndOfStream();
      } else {
        st = Handle(&requests_[slot]);
        end = !st.ok() || done_;
      }
      if (end) {
        {
          absl::MutexLock lock(&mu_);
          stopped_ = true;  // draining_ stays set: no other drain starts
        }
        End(st);  // the last use of this object: OnDone may follow at once
        return;
      }
      absl::MutexLock lock(&mu_);
      free_.push_back(slot);
      StartNextReadLocked();
    }
  }

  // A chunk is hashed and written straight from the slices it arrived in;
  // other messages go through the protobuf parser.
  absl::Status Handle(grpc::ByteBuffer* message) {
    slices_.clear();
    if (message->Dump(&slices_).ok() && api::ParseUploadChunk(slices_, &chunk_)) {
      if (writer_ == nullptr) {
        return absl::InvalidArgumentError("the first message must be the upload header");
      }
      absl::Status st = writer_->Append(chunk_.offset, chunk_.data);
      if (st.ok()) ctx_->metrics->UploadBytes(chunk_.size);
      slices_.clear();
      message->Clear();
      return st;
    }
    slices_.clear();
    v1::UploadRequest request;
    if (!grpc::SerializationTraits<v1::UploadRequest>::Deserialize(message, &request).ok()) {
      return absl::InvalidArgumentError("an UploadModel message does not parse as UploadRequest");
    }
    return Handle(request);
  }

  absl::Status Handle(const v1::UploadRequest& request) {
    switch (request.kind_case()) {
      case v1::UploadRequest::kHeader: {
        if (writer_ != nullptr) return absl::InvalidArgumentError("the header was sent twice");
        // Content-addressed: a model the server already has needs no bytes.
        auto existing = ctx_->uploads->FindCommittedModel(request.header());
        if (existing.ok()) {
          model_ = *std::move(existing);
          done_ = true;
          ctx_->logger->Info("upload skipped: model already stored",
                             {{"model_id", model_.model_id()}});
          return absl::OkStatus();
        }
        auto writer = ctx_->uploads->OpenUpload(request.header());
        if (!writer.ok()) return writer.status();
        writer_ = *std::move(writer);
        ctx_->logger->Info("upload opened",
                           {{"upload_id", writer_->upload_id()},
                            {"committed_bytes", absl::StrCat(writer_->committed_bytes())},
                            {"total_bytes", absl::StrCat(writer_->total_bytes())}});
        return absl::OkStatus();
      }
      case v1::UploadRequest::kChunk: {
        if (writer_ == nullptr) {
          return absl::InvalidArgumentError("the first message must be the upload header");
        }
        const auto& chunk = request.chunk();
        absl::Status st = writer_->Append(chunk.offset(), chunk.data());
        if (st.ok()) ctx_->metrics->UploadBytes(chunk.data().size());
        return st;
      }
      case v1::UploadRequest::kFinish:
        return Commit(request.finish());
      case v1::UploadRequest::KIND_NOT_SET:
        break;
    }
    return absl::InvalidArgumentError("empty upload message");
  }

  absl::Status Commit(const v1::UploadFinish& finish) {
    if (writer_ == nullptr) {
      return absl::InvalidArgumentError("the first message must be the upload header");
    }
    auto model = writer_->Finish(finish);
    if (!model.ok()) return model.status();
    model_ = *std::move(model);
    done_ = true;
    ctx_->metrics->SetStoreBytes(ctx_->blobs->used_bytes(), ctx_->blobs->FreeDiskBytes());
    ctx_->logger->Info("model committed", {{"upload_id", writer_->upload_id()},
                                           {"model_id", model_.model_id()},
                                           {"bytes", absl::StrCat(model_.size_bytes())}});
    return absl::OkStatus();
  }

  // The client closed its side without a finish message.
  absl::Status EndOfStream() {
    if (writer_ == nullptr) return absl::InvalidArgumentError("no upload header received");
    if (writer_->committed_bytes() == writer_->total_bytes()) {
      return Commit(v1::UploadFinish());  // digests came in the header
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "upload ", writer_->upload_id(), " incomplete: ", writer_->committed_bytes(), " of ",
        writer_->total_bytes(), " bytes received; resume from GetUploadStatus().committed_bytes"));
  }

  void End(const absl::Status& st) {
    ctx_->metrics->UploadFinished(st.ok(), st.ok() ? "" : UploadFailureReason(st));
    if (!st.ok()) {
      ctx_->logger->Info("upload ended", {{"upload_id", writer_ ? writer_->upload_id() : ""},
                                          {"status", st.ToString()}});
    }
    writer_.reset();  // releases the upload for a resume
    grpc::Status status = ToGrpcStatus(st);
    bool own_buffer = false;
    if (status.ok()) {
      status = grpc::SerializationTraits<v1::Model>::Serialize(model_, response_, &own_buffer);
    }
    Finish(status);
  }

  const ServiceContext* const ctx_;
  grpc::CallbackServerContext* const context_;
  grpc::ByteBuffer* const response_;  // model_, serialized at the end
  v1::Model model_;
  bool registered_ = false;  // counted in ctx_->upload_streams
  // Messages being read or waiting to be processed, used in turn (free_).
  grpc::ByteBuffer requests_[kSlots];
  std::vector<grpc::Slice> slices_;       // of the message being handled (drain task only)
  api::ChunkView chunk_;                  // its chunk, pointing into slices_ (drain task only)
  std::unique_ptr<UploadWriter> writer_;  // used by the drain task only
  bool done_ = false;                     // used by the drain task only
  absl::Mutex mu_;
  std::vector<int> free_ ABSL_GUARDED_BY(mu_);     // messages free to read into
  std::deque<int> received_ ABSL_GUARDED_BY(mu_);  // to process, in order
  int reading_ ABSL_GUARDED_BY(mu_) = -1;          // the message being read
  bool draining_ ABSL_GUARDED_BY(mu_) = false;     // a drain task runs
  bool end_seen_ ABSL_GUARDED_BY(mu_) = false;     // a read failed: no more messages
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;      // End was called
};

}  // namespace

grpc::ServerReadReactor<grpc::ByteBuffer>* NewUploadReactor(const ServiceContext* ctx,
                                                            grpc::CallbackServerContext* context,
                                                            grpc::ByteBuffer* response) {
  return new UploadReactor(ctx, context, response);
}

}  // namespace quantd::server
