// Sha256: incremental SHA-256 (OpenSSL EVP) with lower-case hex output, and
// the file-hashing helpers built on it. The server (upload and artifact
// digests, auth token digests, dedup keys) and the client (upload digests,
// download verification) both hash with this one implementation.
//
// Thread safety: a Sha256 object belongs to one thread; the free functions
// are thread-safe.
#ifndef QUANTD_CORE_BASE_SHA256_H_
#define QUANTD_CORE_BASE_SHA256_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct evp_md_ctx_st;

namespace quantd::core {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(absl::string_view s) { Update(s.data(), s.size()); }
  // Lower-case hex digest (64 characters). The object must not be used
  // afterwards.
  std::string FinishHex();

 private:
  evp_md_ctx_st* ctx_;  // owned
};

// Lower-case hex sha256 of `data`.
std::string Sha256Hex(absl::string_view data);

// True for exactly 64 lower-case hex digits (the form every digest in the
// API takes).
bool IsSha256Hex(absl::string_view s);

// Called with the bytes hashed so far after each block; may be empty.
using HashProgressFn = std::function<void(uint64_t hashed)>;

// Hashes bytes [0, limit) of the open file `fd` into `sha` (pread: the file
// offset does not move). `path` only names the file in errors. Errors follow
// ErrnoToStatus; DataLoss when the file ends before `limit`.
absl::Status HashFileRange(int fd, uint64_t limit, absl::string_view path, Sha256* sha,
                           const HashProgressFn& on_progress = nullptr);

// Hashes the first `limit` bytes of the file at `path` (the whole file when
// limit is UINT64_MAX) into `sha`. NotFound when the file does not exist;
// DataLoss when it is shorter than `limit`.
absl::Status HashFilePrefix(const std::string& path, uint64_t limit, Sha256* sha);

// Lower-case hex sha256 of the whole file at `path` (its size when opened).
absl::StatusOr<std::string> Sha256File(const std::string& path,
                                       const HashProgressFn& on_progress = nullptr);

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_SHA256_H_
