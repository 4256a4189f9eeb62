#include "quantd/core/base/sha256.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include <openssl/evp.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "quantd/core/base/errno_status.h"

namespace quantd::core {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::Update(const void* data, size_t size) { EVP_DigestUpdate(ctx_, data, size); }

std::string Sha256::FinishHex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), len));
}

std::string Sha256Hex(absl::string_view data) {
  Sha256 sha;
  sha.Update(data);
  return sha.FinishHex();
}

bool IsSha256Hex(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

namespace {

// Hashes from `fd` until `limit` bytes or end of file; `*done` gets the count.
absl::Status HashUntil(int fd, uint64_t limit, absl::string_view path, Sha256* sha,
                       const HashProgressFn& on_progress, uint64_t* done) {
  std::vector<char> buf(1 << 20);
  *done = 0;
  while (*done < limit) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), limit - *done));
    ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(*done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoToStatus(errno, "read", path);
    }
    if (n == 0) break;
    sha->Update(buf.data(), static_cast<size_t>(n));
    *done += static_cast<uint64_t>(n);
    if (on_progress) on_progress(*done);
  }
  return absl::OkStatus();
}

absl::Status ShorterThanExpected(absl::string_view path) {
  return absl::DataLossError(absl::StrCat(path, " is shorter than expected"));
}

}  // namespace

absl::Status HashFileRange(int fd, uint64_t limit, absl::string_view path, Sha256* sha,
                           const HashProgressFn& on_progress) {
  uint64_t done = 0;
  absl::Status st = HashUntil(fd, limit, path, sha, on_progress, &done);
  if (!st.ok()) return st;
  if (done < limit) return ShorterThanExpected(path);
  return absl::OkStatus();
}

absl::Status HashFilePrefix(const std::string& path, uint64_t limit, Sha256* sha) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "open", path);
  uint64_t done = 0;
  absl::Status st = HashUntil(fd, limit, path, sha, nullptr, &done);
  ::close(fd);
  if (!st.ok()) return st;
  if (limit != UINT64_MAX && done < limit) return ShorterThanExpected(path);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Sha256File(const std::string& path, const HashProgressFn& on_progress) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, "open", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoToStatus(err, "stat", path);
  }
  Sha256 sha;
  absl::Status s = HashFileRange(fd, static_cast<uint64_t>(st.st_size), path, &sha, on_progress);
  ::close(fd);
  if (!s.ok()) return s;
  return sha.FinishHex();
}

}  // namespace quantd::core
