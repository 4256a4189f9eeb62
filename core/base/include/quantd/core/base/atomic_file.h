// AtomicFileWriter: writes a file so that a crash leaves either the old file
// or the complete new one, never a torn one. Every file Quantd writes (core
// outputs, the server's manifests and artifacts, quantctl's downloads and
// rewritten files) goes through it.
//
// Two ways to open one:
//  - Create(path): bytes go to "<path>.tmp-<random>" in the same directory
//    (buffered: small writes are gathered in a 4 MiB buffer, spans of
//    16 KiB or more go to write(2) straight from the caller's memory, so
//    large outputs are copied once, into the page cache, from memory the
//    caller has just written and is likely still in cache; WriteUncached
//    and WriteUncachedAsync send large aligned spans to the disk with
//    O_DIRECT instead). Destroying a writer that was not committed removes
//    the temp file.
//  - OpenForResume(path): bytes go to "<path>.part" (or a part path the
//    caller names), appended after what an earlier, interrupted writer left
//    there (offset() starts at its size).
//    Writes are not buffered, so the part file always holds every byte
//    written so far; destroying the writer without Commit keeps it for the
//    next resume (Discard() removes it).
// Commit() flushes, fsyncs, renames over `path` and fsyncs the directory.
//
// Hashing: a writer created with an OutputDigests keeps a running sha256 of
// the bytes in file order as the Write* calls hand them over (from the
// caller's memory: a span WriteUncachedAsync queues is hashed before it is
// queued, so bytes sent to the disk with O_DIRECT never need reading back),
// and Commit records the file's size and digest there (only when the bytes
// hashed are all of the file: its size is checked). A write that does not
// continue the hashed bytes (WriteAt, a failed write) makes the digest
// unknown, which Commit records too (the caller then hashes the file
// itself): the digest never depends on a writer writing in order. Writers
// opened for resume do not hash.
//
// Errors follow ErrnoToStatus (quantd/core/base/errno_status.h).
//
// Thread safety: not thread-safe; one writer per thread.
#ifndef QUANTD_CORE_BASE_ATOMIC_FILE_H_
#define QUANTD_CORE_BASE_ATOMIC_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace quantd::core {

class OutputDigests;  // quantd/core/base/output_digests.h
class Sha256;         // quantd/core/base/sha256.h

class AtomicFileWriter {
 public:
  // `digests` (optional, must outlive the writer): hash the bytes while
  // writing and record the file's digest there at Commit (see above).
  static absl::StatusOr<std::unique_ptr<AtomicFileWriter>> Create(const std::string& path,
                                                                  OutputDigests* digests = nullptr);

  // Opens "<path>.part" for appending, keeping its content. When it holds
  // more than `max_keep` bytes it is emptied first (a stale or foreign part).
  static absl::StatusOr<std::unique_ptr<AtomicFileWriter>> OpenForResume(
      const std::string& path, uint64_t max_keep = UINT64_MAX);
  // The same with the part file at `part_path` (same file system as `path`;
  // its directory must exist, `path`'s only by Commit).
  static absl::StatusOr<std::unique_ptr<AtomicFileWriter>> OpenForResume(
      const std::string& path, const std::string& part_path, uint64_t max_keep);

  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  // Appends bytes (buffered unless opened for resume).
  absl::Status Write(absl::Span<const uint8_t> bytes);
  absl::Status Write(const void* data, size_t size) {
    return Write(absl::Span<const uint8_t>(static_cast<const uint8_t*>(data), size));
  }
  // Appends bytes like Write, sending the largest part that can go straight
  // to the disk (O_DIRECT, bypassing the page cache) that way: a run of
  // whole 4 KiB blocks at a file offset that is a multiple of 4 KiB, read
  // from memory aligned to 4 KiB (a file mapping at an aligned offset). The
  // disk reads such bytes without the CPU copying them into the page cache
  // (a 262 MB tensor: 5 ms of CPU instead of about 100 ms), but the call
  // returns only once the disk has them. The rest, and everything where the
  // file system refuses O_DIRECT, is written as by Write. For large spans
  // that the caller does not write itself (input bytes passed through).
  absl::Status WriteUncached(absl::Span<const uint8_t> bytes);
  // As WriteUncached, for memory that stays unchanged until Commit or
  // Discard returns (a read-only mapping of a file nobody writes): the
  // aligned block run from aligned memory is queued to the disk (Linux
  // native AIO, O_DIRECT, up to 32 writes of 16 MiB in flight) and the call
  // returns without waiting for it; Commit waits and reports its errors.
  // Queued writes need the file's size set first, so they are used only
  // within the space Reserve took (the file then has the reserved size until
  // Commit cuts it to offset()); elsewhere, and where native AIO is missing,
  // this is WriteUncached.
  absl::Status WriteUncachedAsync(absl::Span<const uint8_t> bytes);
  // Bytes WriteUncached / WriteUncachedAsync sent straight to the disk so far.
  uint64_t uncached_bytes() const { return uncached_bytes_; }

  // Overwrites bytes already written, [offset, offset + bytes.size()) with
  // offset + bytes.size() <= offset() (a header completed once the data
  // behind it is known); offset() does not change. Waits for queued writes
  // first. A hashing writer's digest becomes unknown.
  absl::Status WriteAt(uint64_t offset, absl::Span<const uint8_t> bytes);

  // Appends zero bytes until the file size is a multiple of `alignment`.
  absl::Status PadTo(uint64_t alignment);
  // Bytes in the file so far (for a resumed writer, including the bytes it
  // found).
  uint64_t offset() const { return offset_; }

  // Starts write-back of the bytes written since the last call (without
  // waiting), so that Commit's fsync has little left to do. Optional.
  void StartWriteBack();
  // Calls StartWriteBack by itself whenever `bytes` more have reached the
  // file since the last write-back (0: never, the default). For long
  // outputs: the disk works while the caller computes.
  void set_write_back_interval(uint64_t bytes) { write_back_interval_ = bytes; }
  // Staged writing: Write copies its bytes into a ring of 4 MiB aligned
  // buffers, each sent to the disk with O_DIRECT when full (queued with
  // native AIO inside the space Reserve took, else synchronously), so the
  // bytes take one copy in user space instead of a copy into freshly
  // allocated page-cache pages. For large outputs computed front to back and
  // not read back soon. The partial 4 KiB blocks at either end of a run of
  // staged bytes, and everything where the file system refuses O_DIRECT, go
  // through the page cache. Off by default; not for resumable writers.
  // Turning it off writes out what the open stage holds.
  absl::Status SetStaged(bool on);

  // Allocates disk space for a file of `total_bytes` (fallocate, keeping
  // the file size as written), so writes skip block reservation and a full
  // disk is reported before any work (ResourceExhausted). A no-op where the
  // file system cannot preallocate. Optional; the bytes written decide the
  // file's content and size either way (Commit frees space reserved beyond
  // them, so an upper bound is fine).
  absl::Status Reserve(uint64_t total_bytes);

  // Flushes, fsyncs and renames into place; a hashing writer then records
  // the file in its OutputDigests. REQUIRES: called once.
  absl::Status Commit();

  // Closes and removes the temp or part file without committing.
  void Discard();

  const std::string& path() const { return path_; }
  // Where the bytes go until Commit.
  const std::string& temp_path() const { return tmp_path_; }

 private:
  AtomicFileWriter(std::string path, std::string tmp_path, int fd, bool resumable, uint64_t offset);
  absl::Status Flush();
  // Hashes `bytes`, about to be appended at offset_, when they continue the
  // hashed bytes; else gives the digest up.
  void HashAppend(absl::Span<const uint8_t> bytes);
  // Write, WriteUncached and WriteUncachedAsync without hashing (each falls
  // back on the ones before it).
  absl::Status AppendBuffered(absl::Span<const uint8_t> bytes);
  // AppendBuffered without staging: into the buffer, or the page cache.
  absl::Status AppendToPageCache(absl::Span<const uint8_t> bytes);
  absl::Status AppendUncached(absl::Span<const uint8_t> bytes);
  absl::Status AppendUncachedAsync(absl::Span<const uint8_t> bytes);
  // After the first `done` bytes of `bytes` went to the disk uncached:
  // moves the offsets past them and appends the rest buffered.
  absl::Status AppendRestBuffered(absl::Span<const uint8_t> bytes, uint64_t done);
  // The public writes: hash, then `append`; a failed append gives the
  // digest up.
  using AppendFn = absl::Status (AtomicFileWriter::*)(absl::Span<const uint8_t>);
  absl::Status HashAndAppend(absl::Span<const uint8_t> bytes, AppendFn append);
  // Opens direct_fd_ if needed; false (and uncached_failed_) when refused.
  bool OpenDirect();
  // Sets up the AIO context (the file takes its reserved size); false when
  // native AIO is missing (aio_failed_).
  bool StartAio();
  // Queues an O_DIRECT write of n bytes at `at`; `stage` + 1 tags a
  // staging buffer's write (0: none).
  absl::Status SubmitAio(const uint8_t* p, size_t n, uint64_t at, int stage);
  // Waits for at least `min_events` queued writes (0: takes those already
  // done); the first error of any.
  absl::Status ReapAio(long min_events);
  // set_staged: copies into the open stage; SubmitStage writes what it holds
  // and moves to the next stage.
  absl::Status AppendStaged(absl::Span<const uint8_t> bytes);
  absl::Status SubmitStage();
  // pwrite(2) of all n bytes at `at`.
  absl::Status PwriteAll(int fd, const uint8_t* p, size_t n, uint64_t at);
  // O_DIRECT pwrite(2) of whole blocks [p, p + n) at `at`, synchronously:
  // the bytes written, fewer than n after a short write, 0 when O_DIRECT is
  // refused (uncached_failed_ already, or now: direct_fd_ does not open, or
  // the writer's first such write fails with EINVAL). The caller writes the
  // rest.
  absl::StatusOr<uint64_t> PwriteDirect(const uint8_t* p, uint64_t n, uint64_t at);
  // Waits for every queued write and closes the AIO context.
  absl::Status FinishAio();
  // Closes the AIO context, waiting for writes in flight, ignoring errors.
  void DestroyAio();
  // DestroyAio, then closes direct_fd_ (the commit, discard and destructor
  // all end the uncached writes this way).
  void CloseDirect();
  absl::Status WriteAll(const uint8_t* p, size_t size);

  const std::string path_;
  const std::string tmp_path_;
  const bool resumable_;  // keep the temp file when not committed; no buffer
  int fd_;
  uint64_t offset_ = 0;
  uint64_t written_back_ = 0;  // StartWriteBack has covered [0, written_back_)
  uint64_t write_back_interval_ = 0;
  uint64_t reserved_ = 0;  // Reserve's total_bytes
  std::vector<uint8_t> buffer_;
  bool committed_ = false;
  // A second descriptor of the same file opened with O_DIRECT on the first
  // WriteUncached (-1: not yet, or `uncached_failed_`).
  int direct_fd_ = -1;
  bool uncached_failed_ = false;  // O_DIRECT refused: WriteUncached writes as Write
  uint64_t uncached_bytes_ = 0;
  uint64_t aio_context_ = 0;  // aio_context_t of WriteUncachedAsync (0: none)
  bool aio_failed_ = false;   // no native AIO: WriteUncachedAsync writes synchronously
  long aio_in_flight_ = 0;
  absl::Status aio_status_;  // first error of a queued write
  // set_staged: kStages buffers of kStageBytes (one aligned allocation).
  // The open stage holds the file's bytes [stage_first_, offset_), the
  // byte at file offset f at f - base in its buffer, base being stage_first_
  // rounded down to 4 KiB (memory and file offsets agree modulo 4 KiB); a
  // stage is full 4 MiB after its base.
  struct FreeDeleter {
    void operator()(uint8_t* p) const;
  };
  static constexpr int kStages = 4;
  std::unique_ptr<uint8_t, FreeDeleter> stages_;
  bool staged_ = false;
  bool stage_open_ = false;
  int stage_ = 0;
  uint64_t stage_first_ = 0;
  bool stage_busy_[kStages] = {};  // its O_DIRECT write is in flight
  // Hashing (Create with an OutputDigests): the sha256 of bytes [0, hashed_)
  // of the file, reset when the digest is given up.
  OutputDigests* digests_ = nullptr;
  std::unique_ptr<Sha256> sha_;
  uint64_t hashed_ = 0;
};

// Writes `bytes` to `path` atomically (recording its digest in `digests`
// when given, as AtomicFileWriter::Create).
absl::Status WriteFileAtomically(const std::string& path, absl::Span<const uint8_t> bytes,
                                 OutputDigests* digests = nullptr);
inline absl::Status WriteFileAtomically(const std::string& path, const std::string& bytes,
                                        OutputDigests* digests = nullptr) {
  return WriteFileAtomically(
      path, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
      digests);
}

// Copies the file `from` to `to` atomically (NotFound / DataLoss on read),
// recording the copy's digest in `digests` when given.
absl::Status CopyFileAtomically(const std::string& from, const std::string& to,
                                OutputDigests* digests = nullptr);

// fsyncs the directory that holds `path` (makes a rename durable).
absl::Status SyncParentDirectory(const std::string& path);

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_ATOMIC_FILE_H_
