// Sha256: incremental SHA-256 (OpenSSL EVP) with lower-case hex output, plus
// helpers to hash a file and to make random ids.
//
// Thread safety: a Sha256 object belongs to one thread; the free functions
// are thread-safe.
#ifndef QUANTD_SERVER_DIGEST_H_
#define QUANTD_SERVER_DIGEST_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct evp_md_ctx_st;

namespace quantd::server {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(absl::string_view s) { Update(s.data(), s.size()); }
  // Lower-case hex digest. The object must not be used afterwards.
  std::string FinishHex();

 private:
  evp_md_ctx_st* ctx_;
};

std::string Sha256Hex(absl::string_view data);

// Hashes the first `limit` bytes of `path` (all of it when limit is
// UINT64_MAX) into `sha`. NotFound/Internal on I/O errors; DataLoss when the
// file is shorter than `limit`.
absl::Status HashFilePrefix(const std::string& path, uint64_t limit, Sha256* sha);
absl::StatusOr<std::string> Sha256File(const std::string& path);

// `bytes` random bytes as lower-case hex (from the OS CSPRNG).
std::string RandomHex(size_t bytes);

// True for exactly 64 lower-case hex digits.
bool IsSha256Hex(absl::string_view s);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_DIGEST_H_
