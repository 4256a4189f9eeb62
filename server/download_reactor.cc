// DownloadArtifact: a server-streaming reactor that sends one artifact file
// from the requested offset in fixed-size chunks. The file is mapped and
// each message is a small prefix (the DownloadChunk's keys, lengths and
// offset, written by hand) followed by a slice that references the chunk's
// bytes in the mapping: the only copy is the kernel's, from the page cache
// into the socket. While one message is on its way, the next chunk's pages
// are faulted in (read from the disk if need be) on the I/O executor, so
// gRPC's threads never wait for the disk.
#include <grpcpp/impl/codegen/proto_utils.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>

#include "absl/strings/str_cat.h"
#include "quantd/api/wire.h"
#include "quantd/server/auth.h"
#include "quantd/server/executor.h"
#include "quantd/server/ids.h"
#include "quantd/server/translate.h"
#include "reactors.h"

namespace quantd::server {
namespace {

using api::wire::kLengthDelimited;
using api::wire::PutChunkFields;
using api::wire::PutKey;
using api::wire::PutVarint;

constexpr int kChunkFile = 1;    // DownloadChunk.file
constexpr int kChunkOffset = 2;  // DownloadChunk.offset
constexpr int kChunkData = 3;    // DownloadChunk.data

// What a message's data slice holds on to: the mapping, and the range whose
// pages it drops once gRPC is done with the slice (so the server's resident
// set does not grow with the file).
struct MappedRange {
  std::shared_ptr<const core::MappedFile> file;
  uint64_t offset;
  uint64_t length;
};

void ReleaseRange(void* p) {
  auto* range = static_cast<MappedRange*>(p);
  range->file->ReleasePages(range->offset, range->length);
  delete range;
}

// Faults in the pages of [p, p + n) (reading them from the disk if they are
// not cached). EFAULT means the file is shorter than the mapping now; a
// kernel without MADV_POPULATE_READ (before 5.14) leaves the faults to the
// socket write.
absl::Status Populate(const uint8_t* p, uint64_t n) {
#ifdef MADV_POPULATE_READ
  static const uintptr_t kPage = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p) / kPage * kPage;
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + n;
  if (n > 0 && ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_READ) != 0 &&
      errno == EFAULT) {
    return absl::DataLossError("the artifact file was cut short while being sent");
  }
#else
  (void)p;
  (void)n;
#endif
  return absl::OkStatus();
}

class DownloadReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  DownloadReactor(const ServiceContext* ctx, grpc::CallbackServerContext* context,
                  const grpc::ByteBuffer* request)
      : ctx_(ctx) {
    absl::Status st = Open(*context, request);
    if (!st.ok()) {
      Finish(ToGrpcStatus(st));
      return;
    }
    ctx_->io->Schedule([this] {
      absl::Status st = Fill(0);
      if (!st.ok()) {
        Finish(ToGrpcStatus(st));
        return;
      }
      WriteAndReadAhead();
    });
  }

  void OnWriteDone(bool ok) override {
    write_ok_ = ok;
    if (ok) ctx_->metrics->DownloadBytes(sizes_[current_]);
    StepEventDone();
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Open(const grpc::CallbackServerContext& context, const grpc::ByteBuffer* raw) {
    absl::Status st = ctx_->auth->Check(context);
    if (!st.ok()) return st;
    v1::DownloadArtifactRequest request;
    grpc::ByteBuffer copy(*raw);  // Deserialize takes its argument's slices
    if (!grpc::SerializationTraits<v1::DownloadArtifactRequest>::Deserialize(&copy, &request)
             .ok()) {
      return absl::InvalidArgumentError("malformed DownloadArtifactRequest");
    }
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
    info_ = (*reader)->info();
    if (request.offset() > info_.size_bytes()) {
      return absl::OutOfRangeError(absl::StrCat("offset ", request.offset(), " is beyond the ",
                                                info_.size_bytes(), "-byte file"));
    }
    auto mapped = (*reader)->Map();
    if (!mapped.ok()) return mapped.status();
    file_ = std::shared_ptr<const core::MappedFile>(std::move(*mapped));
    offset_ = request.offset();
    return absl::OkStatus();
  }

  // Makes messages_[slot] the chunk at offset_ (the first message also
  // carries the file's FileInfo) and faults its pages in.
  absl::Status Fill(int slot) {
    const uint64_t n = std::min<uint64_t>(ctx_->chunk_bytes, info_.size_bytes() - offset_);
    const uint8_t* data = file_->bytes().data() + offset_;
    absl::Status st = Populate(data, n);
    if (!st.ok()) return st;
    // DownloadChunk's fields in number order, as protobuf writes them.
    std::string prefix;
    if (first_) {
      const std::string info = info_.SerializeAsString();
      PutKey(kChunkFile, kLengthDelimited, &prefix);
      PutVarint(info.size(), &prefix);
      prefix += info;
      first_ = false;
    }
    PutChunkFields(kChunkOffset, kChunkData, offset_, n, &prefix);
    grpc::Slice slices[2] = {grpc::Slice(prefix)};
    int count = 1;
    if (n > 0) {
      grpc_slice bytes =
          grpc_slice_new_with_user_data(const_cast<uint8_t*>(data), static_cast<size_t>(n),
                                        &ReleaseRange, new MappedRange{file_, offset_, n});
      slices[count++] = grpc::Slice(bytes, grpc::Slice::STEAL_REF);
    }
    messages_[slot] = grpc::ByteBuffer(slices, static_cast<size_t>(count));
    sizes_[slot] = n;
    offset_ += n;
    return absl::OkStatus();
  }

  // On the I/O executor: sends messages_[current_] and, while it is on its
  // way, prepares the next chunk in the other message. The step ends when
  // both are done (StepEventDone), so the disk and the network overlap and
  // at most one task of this call runs at a time.
  //
  // Once the last write has started, this call may finish and delete the
  // reactor at any moment (OnWriteDone counts the step down on a gRPC
  // thread), so after StartWrite nothing here touches a member unless this
  // step still holds its own event.
  void WriteAndReadAhead() {
    const bool read_ahead = offset_ < info_.size_bytes();
    read_ahead_ = read_ahead;
    step_events_.store(read_ahead ? 2 : 1, std::memory_order_relaxed);
    StartWrite(&messages_[current_]);
    if (!read_ahead) return;
    read_status_ = Fill(1 - current_);
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
    messages_[current_].Clear();  // lets go of its slices
    current_ = 1 - current_;
    ctx_->io->Schedule([this] { WriteAndReadAhead(); });  // page faults off the callback thread
  }

  const ServiceContext* const ctx_;
  v1::FileInfo info_;
  std::shared_ptr<const core::MappedFile> file_;
  uint64_t offset_ = 0;  // of the next chunk to prepare
  bool first_ = true;    // the next message is the first
  // Two messages: one being sent, the next being prepared.
  grpc::ByteBuffer messages_[2];
  uint64_t sizes_[2] = {};  // their data bytes
  int current_ = 0;         // the message being sent
  // This step's state; written before its event is counted down, read by
  // whoever counts down last.
  bool read_ahead_ = false;
  bool write_ok_ = true;
  absl::Status read_status_;
  std::atomic<int> step_events_{0};
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* NewDownloadReactor(const ServiceContext* ctx,
                                                               grpc::CallbackServerContext* context,
                                                               const grpc::ByteBuffer* request) {
  return new DownloadReactor(ctx, context, request);
}

}  // namespace quantd::server
