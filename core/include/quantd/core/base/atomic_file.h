// AtomicFileWriter: writes a file so that a crash leaves either the old file
// or the complete new one, never a torn one.
//
// Bytes go to "<path>.tmp-<random>" in the same directory; Commit() flushes,
// fsyncs, renames over `path` and fsyncs the directory. Destroying a writer
// that was not committed removes the temp file.
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

class AtomicFileWriter {
 public:
  static absl::StatusOr<std::unique_ptr<AtomicFileWriter>> Create(const std::string& path);

  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  // Appends bytes (buffered).
  absl::Status Write(absl::Span<const uint8_t> bytes);
  absl::Status Write(const void* data, size_t size) {
    return Write(absl::Span<const uint8_t>(static_cast<const uint8_t*>(data), size));
  }
  // Appends zero bytes until the file size is a multiple of `alignment`.
  absl::Status PadTo(uint64_t alignment);
  // Bytes written so far.
  uint64_t offset() const { return offset_; }

  // Flushes, fsyncs and renames into place. REQUIRES: called once.
  absl::Status Commit();

  const std::string& path() const { return path_; }

 private:
  AtomicFileWriter(std::string path, std::string tmp_path, int fd);
  absl::Status Flush();

  const std::string path_;
  const std::string tmp_path_;
  int fd_;
  uint64_t offset_ = 0;
  std::vector<uint8_t> buffer_;
  bool committed_ = false;
};

// Writes `bytes` to `path` atomically.
absl::Status WriteFileAtomically(const std::string& path, absl::Span<const uint8_t> bytes);

// fsyncs the directory that holds `path` (makes a rename durable).
absl::Status SyncParentDirectory(const std::string& path);

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_ATOMIC_FILE_H_
