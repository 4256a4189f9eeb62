// OutputDigests: the sha256 of each file a conversion committed, computed by
// AtomicFileWriter from the bytes as they were written, so that whoever
// stores the output (the server's artifact store) need not read the files
// back to hash them.
//
// A caller that wants digests puts one in RunContext::output_digests; every
// core writer passes it to the AtomicFileWriter of each output file, and
// Commit records the file there: its size and digest, or "unknown" when the
// writer could not hash the file in order (a write before the hashed
// frontier, a gap, bytes that reached the file another way). Unknown and
// absent files are for the caller to hash itself; a digest here is only a
// shortcut, never the sole source of truth about a file it cannot check
// (the caller compares the size with the file's before using it).
//
// Files are looked up by their name (last path component), since a folder
// output is written into a staging folder and renamed as a whole.
//
// Ownership: plain object owned by the caller; it must outlive the
// operation it is passed to. Thread safety: thread-safe (writers of several
// files may commit from several threads).
#ifndef QUANTD_CORE_BASE_OUTPUT_DIGESTS_H_
#define QUANTD_CORE_BASE_OUTPUT_DIGESTS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace quantd::core {

class OutputDigests {
 public:
  struct Digest {
    uint64_t size = 0;
    std::string sha256;  // lower-case hex
  };

  OutputDigests() = default;
  OutputDigests(const OutputDigests&) = delete;
  OutputDigests& operator=(const OutputDigests&) = delete;

  // The file committed at `path` (replacing what an earlier commit of that
  // path recorded) has `size` bytes and sha256 `sha256_hex`; an empty
  // `sha256_hex` records that its digest is unknown.
  void Record(const std::string& path, uint64_t size, std::string sha256_hex);

  // The digest of the committed file named `file_name`: nullopt when no
  // file of that name was committed, its digest is unknown, or files of that
  // name were committed in different folders (ambiguous).
  std::optional<Digest> Find(absl::string_view file_name) const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, Digest> by_path_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_OUTPUT_DIGESTS_H_
