// DownloadPipeline: where a download's bytes go between the socket and the
// disk. The receiving thread copies each chunk into a ring of 4 MiB
// buffers aligned to 4 KiB; a full buffer is hashed on one thread and
// written on another, in file order, so receiving, hashing and the disk's
// work overlap. Buffers are written with AtomicFileWriter::WriteUncached
// (O_DIRECT where the file system takes it): the bytes reach the disk
// from memory that is reused, never through freshly allocated page-cache
// pages (which cost more CPU than the rest of the receiving side together,
// docs/benchmarks.md).
//
// Every write is synchronous and in order, so the part file always holds
// a prefix of the download: what Finish wrote after an interrupted stream
// is resumed from as before. A buffer is handed over when full, or by the
// first Append after it has held bytes for kMaxHold, so a process killed
// outright loses only the bytes of its last moments (at most the buffers
// in flight) and a slow download reaches the file as it goes. Buffers end
// at file offsets that are multiples of their size (a buffer after a
// short one, or the first of a resumed download, is shorter), so full
// buffers go to the disk without the page cache.
//
// Thread safety: Append and Finish are for one thread (the owner); the
// writer is used only by the pipeline's thread until Finish returns.
// Not part of the API.
#ifndef QUANTD_CLIENT_DOWNLOAD_PIPELINE_H_
#define QUANTD_CLIENT_DOWNLOAD_PIPELINE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/base/sha256.h"

namespace quantd::client::internal {

class DownloadPipeline {
 public:
  static constexpr size_t kBufferBytes = 4u << 20;
  static constexpr int kBuffers = 6;
  static constexpr absl::Duration kMaxHold = absl::Milliseconds(200);

  // Appends to `out` (opened for resume, at out->offset()) and hashes into
  // `sha`; neither is owned, both must outlive the pipeline and are the
  // pipeline's until Finish returns. `buffer_bytes` (a multiple of 4 KiB)
  // is for tests.
  DownloadPipeline(core::AtomicFileWriter* out, core::Sha256* sha,
                   size_t buffer_bytes = kBufferBytes);
  // Finish(), its status dropped.
  ~DownloadPipeline();
  DownloadPipeline(const DownloadPipeline&) = delete;
  DownloadPipeline& operator=(const DownloadPipeline&) = delete;

  // Copies `bytes` in, waiting while every buffer is in use. Returns the
  // first write error so far (then nothing more is written: the caller
  // stops and calls Finish).
  absl::Status Append(absl::string_view bytes);
  // Hashes and writes everything appended (unless a write failed), stops
  // the threads and returns the first write error. Once it returns, `out`
  // holds every byte appended (when OK) and `sha` has hashed them all.
  absl::Status Finish();

 private:
  struct FreeDeleter {
    void operator()(char* p) const;
  };
  struct Buffer {
    std::unique_ptr<char, FreeDeleter> data;  // buffer_bytes_, aligned
    size_t size = 0;                          // bytes filled
  };

  // Hands the open buffer (index filling_ % kBuffers) to the threads.
  void Submit();
  // For a thread whose progress is `*count` (hashed_ or written_): waits
  // for the next buffer and returns its number in `k` and whether a write
  // failed; false once Finish was called and every buffer was taken.
  bool Next(uint64_t DownloadPipeline::*count, uint64_t* k, bool* failed);
  void HashLoop();
  void WriteLoop();

  core::AtomicFileWriter* const out_;
  core::Sha256* const sha_;
  const size_t buffer_bytes_;
  Buffer buffers_[kBuffers];
  // The owner's side: the number of the buffer being filled, whether it is
  // open (taken from the ring), how many bytes it takes in all, when it
  // was opened, and the file offset where it starts.
  uint64_t filling_ = 0;
  bool open_ = false;
  size_t capacity_ = 0;
  absl::Time opened_;
  uint64_t buffer_offset_;
  bool finished_ = false;

  absl::Mutex mu_;
  // Buffers are numbered 0, 1, ... in file order; buffer k uses slot
  // k % kBuffers. Those below submitted_ are full (or the last); a slot
  // is free for k once hashed_ and written_ both exceed k - kBuffers.
  uint64_t submitted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t hashed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t written_ ABSL_GUARDED_BY(mu_) = 0;
  bool done_ ABSL_GUARDED_BY(mu_) = false;          // no more submits
  absl::Status write_status_ ABSL_GUARDED_BY(mu_);  // the first write error
  std::thread hash_thread_;
  std::thread write_thread_;
};

}  // namespace quantd::client::internal

#endif  // QUANTD_CLIENT_DOWNLOAD_PIPELINE_H_
