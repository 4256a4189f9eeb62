// MappedFile: a read-only memory map of a whole file.
//
// Thread safety: immutable after Open; bytes() may be read from any thread.
// ReleasePages() only drops resident pages (the data stays readable and is
// faulted back in from the file on the next access), so it is safe to call
// concurrently with readers.
#ifndef QUANTD_CORE_BASE_MAPPED_FILE_H_
#define QUANTD_CORE_BASE_MAPPED_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace quantd::core {

class MappedFile {
 public:
  // Maps `path` read-only. An empty file maps to an empty span.
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::string& path);
  // Maps the whole of the open file `fd` read-only (`fd` stays the
  // caller's; the mapping outlives it). `path` names it in errors.
  static absl::StatusOr<std::unique_ptr<MappedFile>> Map(int fd, const std::string& path);

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  absl::Span<const uint8_t> bytes() const { return {data_, size_}; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  // Tells the kernel we are done with [offset, offset+length) for now, so the
  // pages stop counting against our resident set. Keeps peak memory bounded by
  // the tensor being processed rather than by the model.
  void ReleasePages(uint64_t offset, uint64_t length) const;

 private:
  MappedFile(std::string path, const uint8_t* data, uint64_t size)
      : path_(std::move(path)), data_(data), size_(size) {}

  const std::string path_;
  const uint8_t* const data_;
  const uint64_t size_;
};

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_MAPPED_FILE_H_
