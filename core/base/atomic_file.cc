#include "quantd/core/base/atomic_file.h"

#include <fcntl.h>
#include <linux/aio_abi.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "quantd/core/base/errno_status.h"
#include "quantd/core/base/output_digests.h"
#include "quantd/core/base/sha256.h"
#include "quantd/core/base/status_macros.h"

namespace quantd::core {
namespace {

constexpr size_t kBufferSize = 4 << 20;
// Spans at least this long are written from the caller's memory: a second
// copy through the buffer costs more than the extra system call (measured
// on GGUF Q4_0, 36 KiB chunks: copying them into page cache from the 4 MiB
// buffer took 25 % of the run, from the chunk itself 2 %).
constexpr size_t kDirectWriteMin = 16 << 10;
// WriteUncached: block size and alignment of O_DIRECT writes (a multiple of
// every common logical block size) and the largest single write.
constexpr uint64_t kUncachedBlock = 4096;
constexpr size_t kUncachedChunk = 16 << 20;
// WriteUncachedAsync: O_DIRECT writes (of kUncachedChunk) in flight at most.
constexpr long kAioDepth = 32;
// set_staged: bytes per staging buffer, a multiple of kUncachedBlock.
constexpr uint64_t kStageBytes = 4 << 20;
// A queued write's aio_data: its length, and in the bits above, 1 + the
// staging buffer it reads (0: none).
constexpr int kAioTagShift = 48;
constexpr uint64_t kAioLengthMask = (uint64_t{1} << kAioTagShift) - 1;

uint64_t AlignDown(uint64_t v) { return v / kUncachedBlock * kUncachedBlock; }
uint64_t AlignUp(uint64_t v) { return AlignDown(v + kUncachedBlock - 1); }

}  // namespace

absl::StatusOr<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::Create(const std::string& path,
                                                                           OutputDigests* digests) {
  std::random_device rd;
  std::string tmp = absl::StrFormat("%s.tmp-%08x%08x", path, rd(), rd());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "cannot create", tmp);
  std::unique_ptr<AtomicFileWriter> writer(
      new AtomicFileWriter(path, std::move(tmp), fd, /*resumable=*/false, 0));
  if (digests != nullptr) {
    writer->digests_ = digests;
    writer->sha_ = std::make_unique<Sha256>();
  }
  return writer;
}

absl::StatusOr<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::OpenForResume(
    const std::string& path, uint64_t max_keep) {
  return OpenForResume(path, path + ".part", max_keep);
}

absl::StatusOr<std::unique_ptr<AtomicFileWriter>> AtomicFileWriter::OpenForResume(
    const std::string& path, const std::string& part, uint64_t max_keep) {
  int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoToStatus(errno, "open", part);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoToStatus(err, "stat", part);
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size > max_keep) {
    if (::ftruncate(fd, 0) != 0) {
      int err = errno;
      ::close(fd);
      return ErrnoToStatus(err, "truncate", part);
    }
    size = 0;
  }
  if (::lseek(fd, static_cast<off_t>(size), SEEK_SET) < 0) {
    int err = errno;
    ::close(fd);
    return ErrnoToStatus(err, "seek", part);
  }
  return std::unique_ptr<AtomicFileWriter>(
      new AtomicFileWriter(path, part, fd, /*resumable=*/true, size));
}

AtomicFileWriter::AtomicFileWriter(std::string path, std::string tmp_path, int fd, bool resumable,
                                   uint64_t offset)
    : path_(std::move(path)),
      tmp_path_(std::move(tmp_path)),
      resumable_(resumable),
      fd_(fd),
      offset_(offset),
      written_back_(offset) {
  if (!resumable_) buffer_.reserve(kBufferSize);
}

AtomicFileWriter::~AtomicFileWriter() {
  CloseDirect();
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !resumable_) ::unlink(tmp_path_.c_str());
}

absl::Status AtomicFileWriter::WriteAll(const uint8_t* p, size_t left) {
  while (left > 0) {
    ssize_t n = ::write(fd_, p, std::min<size_t>(left, size_t{1} << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "write failed", tmp_path_);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::Flush() {
  QUANTD_RETURN_IF_ERROR(SubmitStage());  // staged bytes come before anything later
  absl::Status st = WriteAll(buffer_.data(), buffer_.size());
  buffer_.clear();
  return st;
}

void AtomicFileWriter::HashAppend(absl::Span<const uint8_t> bytes) {
  if (sha_ == nullptr) return;
  if (hashed_ != offset_) {  // bytes before these reached the file unhashed
    sha_.reset();
    return;
  }
  sha_->Update(bytes.data(), bytes.size());
  hashed_ += bytes.size();
}

absl::Status AtomicFileWriter::HashAndAppend(absl::Span<const uint8_t> bytes, AppendFn append) {
  if (fd_ < 0) return absl::FailedPreconditionError("file already committed or discarded");
  HashAppend(bytes);
  absl::Status st = (this->*append)(bytes);
  if (!st.ok()) sha_.reset();  // what reached the file is unknown
  return st;
}

absl::Status AtomicFileWriter::Write(absl::Span<const uint8_t> bytes) {
  return HashAndAppend(bytes, &AtomicFileWriter::AppendBuffered);
}

absl::Status AtomicFileWriter::WriteUncached(absl::Span<const uint8_t> bytes) {
  return HashAndAppend(bytes, &AtomicFileWriter::AppendUncached);
}

absl::Status AtomicFileWriter::WriteUncachedAsync(absl::Span<const uint8_t> bytes) {
  // Hashed before it is queued, from the caller's memory (for a mapped
  // input, pages the queued write reads anyway): the disk gets these bytes
  // without the page cache, so hashing the file later would read them back
  // from the disk.
  return HashAndAppend(bytes, &AtomicFileWriter::AppendUncachedAsync);
}

absl::Status AtomicFileWriter::AppendRestBuffered(absl::Span<const uint8_t> bytes, uint64_t done) {
  uncached_bytes_ += done;
  offset_ += done;
  // write(2) on fd_ continues at its file position: move it past these bytes.
  if (::lseek(fd_, static_cast<off_t>(offset_), SEEK_SET) < 0) {
    return ErrnoToStatus(errno, "seek failed", tmp_path_);
  }
  if (done == bytes.size()) return absl::OkStatus();
  return AppendBuffered(bytes.subspan(done));
}

absl::Status AtomicFileWriter::AppendBuffered(absl::Span<const uint8_t> bytes) {
  if (staged_ && !uncached_failed_) return AppendStaged(bytes);
  return AppendToPageCache(bytes);
}

absl::Status AtomicFileWriter::AppendToPageCache(absl::Span<const uint8_t> bytes) {
  offset_ += bytes.size();
  if (resumable_) return WriteAll(bytes.data(), bytes.size());
  if (bytes.size() < kDirectWriteMin) {
    if (buffer_.size() + bytes.size() > kBufferSize) QUANTD_RETURN_IF_ERROR(Flush());
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  } else {
    // Large span: bypass the buffer (after what it holds, to keep the order).
    QUANTD_RETURN_IF_ERROR(Flush());
    QUANTD_RETURN_IF_ERROR(WriteAll(bytes.data(), bytes.size()));
  }
  if (write_back_interval_ > 0 &&
      offset_ - buffer_.size() >= written_back_ + write_back_interval_) {
    StartWriteBack();
  }
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::AppendUncached(absl::Span<const uint8_t> bytes) {
  const uint64_t file_offset = offset_;  // where bytes[0] lands
  const uintptr_t address = reinterpret_cast<uintptr_t>(bytes.data());
  const uint64_t blocks_bytes = bytes.size() / kUncachedBlock * kUncachedBlock;
  if (uncached_failed_ || blocks_bytes == 0 || file_offset % kUncachedBlock != 0 ||
      address % kUncachedBlock != 0) {
    return AppendBuffered(bytes);
  }
  QUANTD_RETURN_IF_ERROR(Flush());  // the buffer's bytes come first
  QUANTD_ASSIGN_OR_RETURN(const uint64_t done,
                          PwriteDirect(bytes.data(), blocks_bytes, file_offset));
  return AppendRestBuffered(bytes, done);
}

absl::StatusOr<uint64_t> AtomicFileWriter::PwriteDirect(const uint8_t* p, uint64_t n, uint64_t at) {
  if (uncached_failed_ || !OpenDirect()) return 0;
  uint64_t done = 0;
  while (done < n) {
    const size_t piece = static_cast<size_t>(std::min<uint64_t>(n - done, kUncachedChunk));
    const ssize_t w = ::pwrite(direct_fd_, p + done, piece, static_cast<off_t>(at + done));
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && done == 0 && uncached_bytes_ == 0) {
        uncached_failed_ = true;  // alignment or O_DIRECT refused on first use
        break;
      }
      return ErrnoToStatus(errno, "write failed", tmp_path_);
    }
    if (w == 0) break;
    done += static_cast<uint64_t>(w);
    if (done % kUncachedBlock != 0) break;  // a short write: the caller writes the rest
  }
  return done;
}

bool AtomicFileWriter::OpenDirect() {
  if (direct_fd_ >= 0) return true;
  direct_fd_ = ::open(tmp_path_.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  if (direct_fd_ < 0) uncached_failed_ = true;  // e.g. a file system without O_DIRECT
  return direct_fd_ >= 0;
}

absl::Status AtomicFileWriter::AppendUncachedAsync(absl::Span<const uint8_t> bytes) {
  if (uncached_bytes_ == 0 && !uncached_failed_ && bytes.size() > kUncachedBlock) {
    // The first O_DIRECT write runs synchronously: it finds out whether the
    // file system takes them at all (EINVAL) before anything is queued.
    QUANTD_RETURN_IF_ERROR(AppendUncached(bytes.first(kUncachedBlock)));
    bytes.remove_prefix(kUncachedBlock);
  }
  const uint64_t file_offset = offset_;
  const uint64_t blocks_bytes = bytes.size() / kUncachedBlock * kUncachedBlock;
  if (uncached_failed_ || aio_failed_ || blocks_bytes == 0 || file_offset % kUncachedBlock != 0 ||
      reinterpret_cast<uintptr_t>(bytes.data()) % kUncachedBlock != 0 ||
      file_offset + blocks_bytes > reserved_) {
    return AppendUncached(bytes);
  }
  QUANTD_RETURN_IF_ERROR(Flush());  // the buffer's bytes come first
  if (!OpenDirect()) return AppendBuffered(bytes);
  if (!StartAio()) return AppendUncached(bytes);
  uint64_t done = 0;
  while (done < blocks_bytes) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(blocks_bytes - done, kUncachedChunk));
    QUANTD_RETURN_IF_ERROR(SubmitAio(bytes.data() + done, n, file_offset + done, -1));
    done += n;
  }
  return AppendRestBuffered(bytes, done);
}

bool AtomicFileWriter::StartAio() {
  if (aio_context_ != 0) return true;
  if (aio_failed_) return false;
  aio_context_t context = 0;
  // A write that extends the file waits for the disk even when queued:
  // the file takes its reserved size now (Commit cuts it to offset()).
  if (::syscall(SYS_io_setup, kAioDepth, &context) != 0 ||
      ::ftruncate(fd_, static_cast<off_t>(reserved_)) != 0) {
    if (context != 0) ::syscall(SYS_io_destroy, context);
    aio_failed_ = true;  // no native AIO here: write synchronously
    return false;
  }
  aio_context_ = context;
  return true;
}

absl::Status AtomicFileWriter::SubmitAio(const uint8_t* p, size_t n, uint64_t at, int stage) {
  for (;;) {
    if (aio_in_flight_ == kAioDepth) QUANTD_RETURN_IF_ERROR(ReapAio(1));
    struct iocb cb;
    std::memset(&cb, 0, sizeof(cb));
    // The length the completion must report, and the stage it frees.
    cb.aio_data = n | (static_cast<uint64_t>(stage + 1) << kAioTagShift);
    cb.aio_lio_opcode = IOCB_CMD_PWRITE;
    cb.aio_fildes = static_cast<uint32_t>(direct_fd_);
    cb.aio_buf = reinterpret_cast<uint64_t>(p);
    cb.aio_nbytes = n;
    cb.aio_offset = static_cast<int64_t>(at);
    struct iocb* list[1] = {&cb};
    if (::syscall(SYS_io_submit, aio_context_, 1, list) == 1) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN && aio_in_flight_ > 0) {
      QUANTD_RETURN_IF_ERROR(ReapAio(1));
      continue;
    }
    return ErrnoToStatus(errno, "write failed", tmp_path_);
  }
  ++aio_in_flight_;
  if (stage >= 0) stage_busy_[stage] = true;
  return absl::OkStatus();
}

void AtomicFileWriter::FreeDeleter::operator()(uint8_t* p) const { std::free(p); }

absl::Status AtomicFileWriter::SetStaged(bool on) {
  if (fd_ < 0) return absl::FailedPreconditionError("file already committed or discarded");
  staged_ = on && !resumable_;
  return on ? absl::OkStatus() : SubmitStage();
}

absl::Status AtomicFileWriter::AppendStaged(absl::Span<const uint8_t> bytes) {
  if (stages_ == nullptr) {
    stages_.reset(static_cast<uint8_t*>(std::aligned_alloc(kUncachedBlock, kStages * kStageBytes)));
    if (stages_ == nullptr) return absl::ResourceExhaustedError("no memory for staging buffers");
  }
  while (!bytes.empty()) {
    if (!stage_open_) {
      if (stage_busy_[stage_]) QUANTD_RETURN_IF_ERROR(ReapAio(0));
      if (stage_busy_[stage_]) {
        // Every stage is on its way to the disk, behind the writes queued
        // before them: rather than wait, these bytes (up to the next 4 MiB
        // boundary) go through the page cache.
        const uint64_t boundary = AlignDown(offset_) + kStageBytes;
        const size_t take =
            static_cast<size_t>(std::min<uint64_t>(boundary - offset_, bytes.size()));
        QUANTD_RETURN_IF_ERROR(AppendToPageCache(bytes.first(take)));
        bytes.remove_prefix(take);
        continue;
      }
      QUANTD_RETURN_IF_ERROR(Flush());  // the buffer's bytes come first
      stage_first_ = offset_;
      stage_open_ = true;
    }
    uint8_t* stage = stages_.get() + static_cast<size_t>(stage_) * kStageBytes;
    const uint64_t stage_base = AlignDown(stage_first_);
    const uint64_t end = stage_base + kStageBytes;
    const size_t take = static_cast<size_t>(std::min<uint64_t>(end - offset_, bytes.size()));
    std::memcpy(stage + (offset_ - stage_base), bytes.data(), take);
    offset_ += take;
    bytes.remove_prefix(take);
    if (offset_ == end) QUANTD_RETURN_IF_ERROR(SubmitStage());
  }
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::SubmitStage() {
  if (!stage_open_) return absl::OkStatus();
  stage_open_ = false;
  const uint8_t* stage = stages_.get() + static_cast<size_t>(stage_) * kStageBytes;
  const uint64_t first = stage_first_, end = offset_;
  const uint64_t stage_base = AlignDown(first);
  const uint64_t lo = std::min(AlignUp(first), end);  // whole blocks [lo, hi) go direct
  const uint64_t hi = std::max(lo, AlignDown(end));
  if (lo > first)
    QUANTD_RETURN_IF_ERROR(PwriteAll(fd_, stage + (first - stage_base), lo - first, first));
  if (hi > lo) {
    const uint8_t* p = stage + (lo - stage_base);
    const size_t n = static_cast<size_t>(hi - lo);
    const bool queue = uncached_bytes_ > 0 && hi <= reserved_ && OpenDirect() && StartAio();
    if (queue && aio_in_flight_ == kAioDepth) QUANTD_RETURN_IF_ERROR(ReapAio(0));
    if (queue && aio_in_flight_ < kAioDepth) {
      QUANTD_RETURN_IF_ERROR(SubmitAio(p, n, lo, stage_));
      uncached_bytes_ += n;
    } else if (queue) {
      // The queue is full (pass-through tensors queue up to kAioDepth
      // writes of 16 MiB: the disk's next few hundred milliseconds): the
      // stage goes through the page cache rather than wait behind them.
      QUANTD_RETURN_IF_ERROR(PwriteAll(fd_, p, n, lo));
    } else {
      // Synchronous, and always for the writer's first O_DIRECT write: it
      // finds out whether the file system takes them (EINVAL) before any
      // is queued. What did not go direct goes through the page cache.
      QUANTD_ASSIGN_OR_RETURN(const uint64_t done, PwriteDirect(p, n, lo));
      uncached_bytes_ += done;
      if (done < n) QUANTD_RETURN_IF_ERROR(PwriteAll(fd_, p + done, n - done, lo + done));
    }
  }
  if (end > hi) QUANTD_RETURN_IF_ERROR(PwriteAll(fd_, stage + (hi - stage_base), end - hi, hi));
  stage_ = (stage_ + 1) % kStages;
  // write(2) on fd_ continues at its file position: the end of these bytes.
  if (::lseek(fd_, static_cast<off_t>(end), SEEK_SET) < 0) {
    return ErrnoToStatus(errno, "seek failed", tmp_path_);
  }
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::PwriteAll(int fd, const uint8_t* p, size_t n, uint64_t at) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, std::min<size_t>(n, size_t{1} << 30), static_cast<off_t>(at));
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "write failed", tmp_path_);
    }
    if (w == 0) return absl::DataLossError(absl::StrCat(tmp_path_, ": write wrote nothing"));
    p += w;
    at += static_cast<uint64_t>(w);
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::ReapAio(long min_events) {
  struct io_event events[kAioDepth];
  struct timespec now = {0, 0};  // min_events 0: only what has completed
  for (bool first = true; first || min_events > 0; first = false) {
    const long got = ::syscall(SYS_io_getevents, aio_context_, min_events, kAioDepth, events,
                               min_events == 0 ? &now : nullptr);
    if (got < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "waiting for writes failed", tmp_path_);
    }
    for (long i = 0; i < got; ++i) {
      const int64_t res = events[i].res;
      const uint64_t length = events[i].data & kAioLengthMask;
      const uint64_t tag = events[i].data >> kAioTagShift;
      if (tag > 0) stage_busy_[tag - 1] = false;
      if (res < 0 && aio_status_.ok()) {
        aio_status_ = ErrnoToStatus(static_cast<int>(-res), "write failed", tmp_path_);
      } else if (res >= 0 && static_cast<uint64_t>(res) != length && aio_status_.ok()) {
        aio_status_ = absl::DataLossError(
            absl::StrCat(tmp_path_, ": short write (", res, " of ", length, " bytes)"));
      }
    }
    aio_in_flight_ -= got;
    min_events -= got;
  }
  return aio_status_;
}

absl::Status AtomicFileWriter::FinishAio() {
  if (aio_context_ == 0) return absl::OkStatus();
  absl::Status st = ReapAio(aio_in_flight_);
  DestroyAio();
  return st;
}

void AtomicFileWriter::CloseDirect() {
  DestroyAio();
  if (direct_fd_ >= 0) ::close(direct_fd_);
  direct_fd_ = -1;
}

void AtomicFileWriter::DestroyAio() {
  if (aio_context_ == 0) return;
  ::syscall(SYS_io_destroy, aio_context_);  // waits for writes still in flight
  aio_context_ = 0;
  aio_in_flight_ = 0;
  std::fill(std::begin(stage_busy_), std::end(stage_busy_), false);
}

absl::Status AtomicFileWriter::Reserve(uint64_t total_bytes) {
  if (fd_ < 0) return absl::FailedPreconditionError("file already committed or discarded");
  if (total_bytes == 0) return absl::OkStatus();
  if (::fallocate(fd_, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(total_bytes)) == 0) {
    reserved_ = std::max(reserved_, total_bytes);
    return absl::OkStatus();
  }
  const int err = errno;
  if (err == ENOSPC || err == EFBIG || err == EDQUOT || err == EIO) {
    return ErrnoToStatus(err, absl::StrCat("cannot reserve ", total_bytes, " bytes for"),
                         tmp_path_);
  }
  return absl::OkStatus();  // EOPNOTSUPP and the like: write without preallocating
}

absl::Status AtomicFileWriter::WriteAt(uint64_t offset, absl::Span<const uint8_t> bytes) {
  if (fd_ < 0) return absl::FailedPreconditionError("file already committed or discarded");
  if (offset > offset_ || bytes.size() > offset_ - offset) {
    return absl::OutOfRangeError(absl::StrCat(tmp_path_, ": WriteAt [", offset, ", ",
                                              offset + bytes.size(), ") is beyond the ", offset_,
                                              " bytes written"));
  }
  if (bytes.empty()) return absl::OkStatus();
  sha_.reset();  // the hashed bytes are not the file's any more
  QUANTD_RETURN_IF_ERROR(Flush());
  if (aio_context_ != 0) QUANTD_RETURN_IF_ERROR(ReapAio(aio_in_flight_));  // no overlap
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n =
        ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "write failed", tmp_path_);
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status AtomicFileWriter::PadTo(uint64_t alignment) {
  static const uint8_t kZeros[4096] = {};
  uint64_t pad = (alignment - offset_ % alignment) % alignment;
  while (pad > 0) {
    uint64_t n = std::min<uint64_t>(pad, sizeof(kZeros));
    QUANTD_RETURN_IF_ERROR(Write(kZeros, n));
    pad -= n;
  }
  return absl::OkStatus();
}

void AtomicFileWriter::StartWriteBack() {
  if (fd_ < 0) return;
  const uint64_t on_disk = offset_ - buffer_.size();
  if (on_disk <= written_back_) return;
  ::sync_file_range(fd_, static_cast<off64_t>(written_back_),
                    static_cast<off64_t>(on_disk - written_back_), SYNC_FILE_RANGE_WRITE);
  written_back_ = on_disk;
}

absl::Status AtomicFileWriter::Commit() {
  if (committed_) return absl::FailedPreconditionError("file already committed");
  if (fd_ < 0) return absl::FailedPreconditionError("file discarded");
  QUANTD_RETURN_IF_ERROR(Flush());
  QUANTD_RETURN_IF_ERROR(FinishAio());
  CloseDirect();
  if (reserved_ > offset_) {  // give back what Reserve took beyond the end (best effort)
    (void)::ftruncate(fd_, static_cast<off_t>(offset_));  // same size; drops blocks past it
  }
  if (::fsync(fd_) != 0) return ErrnoToStatus(errno, "fsync failed", tmp_path_);
  // The digest, when every byte of the file was hashed in order.
  std::string digest;
  if (sha_ != nullptr && hashed_ == offset_) {
    struct stat st;
    if (::fstat(fd_, &st) == 0 && static_cast<uint64_t>(st.st_size) == offset_) {
      digest = sha_->FinishHex();
    }
  }
  sha_.reset();
  if (::close(fd_) != 0) {
    fd_ = -1;
    return ErrnoToStatus(errno, "close failed", tmp_path_);
  }
  fd_ = -1;
  if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    return ErrnoToStatus(errno, "rename failed", path_);
  }
  committed_ = true;
  // Recorded even when unknown: it replaces what an earlier file at this
  // path recorded.
  if (digests_ != nullptr) digests_->Record(path_, offset_, std::move(digest));
  return SyncParentDirectory(path_);
}

void AtomicFileWriter::Discard() {
  if (committed_) return;
  CloseDirect();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(tmp_path_.c_str());
}

absl::Status WriteFileAtomically(const std::string& path, absl::Span<const uint8_t> bytes,
                                 OutputDigests* digests) {
  QUANTD_ASSIGN_OR_RETURN(auto writer, AtomicFileWriter::Create(path, digests));
  QUANTD_RETURN_IF_ERROR(writer->Write(bytes));
  return writer->Commit();
}

absl::Status CopyFileAtomically(const std::string& from, const std::string& to,
                                OutputDigests* digests) {
  std::ifstream in(from, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(from, ": cannot open"));
  QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFileWriter> out,
                          AtomicFileWriter::Create(to, digests));
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize got = in.gcount();
    if (got > 0) QUANTD_RETURN_IF_ERROR(out->Write(buf.data(), static_cast<size_t>(got)));
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(from, ": read failed"));
  return out->Commit();
}

absl::Status SyncParentDirectory(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "cannot open directory", dir.string());
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoToStatus(err, "fsync of directory failed", dir.string());
  return absl::OkStatus();
}

}  // namespace quantd::core
