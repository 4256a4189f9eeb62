#include "quantd/server/digest.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace quantd::server {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::Update(const void* data, size_t size) { EVP_DigestUpdate(ctx_, data, size); }

std::string Sha256::FinishHex() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(md), len));
}

std::string Sha256Hex(absl::string_view data) {
  Sha256 sha;
  sha.Update(data);
  return sha.FinishHex();
}

absl::Status HashFilePrefix(const std::string& path, uint64_t limit, Sha256* sha) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return errno == ENOENT ? absl::NotFoundError(absl::StrCat(path, ": not found"))
                           : absl::InternalError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  std::vector<char> buf(1 << 20);
  uint64_t done = 0;
  while (done < limit) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), limit - done));
    ssize_t n = ::read(fd, buf.data(), want);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return absl::InternalError(absl::StrCat(path, ": read: ", std::strerror(e)));
    }
    if (n == 0) break;
    sha->Update(buf.data(), static_cast<size_t>(n));
    done += static_cast<uint64_t>(n);
  }
  ::close(fd);
  if (limit != UINT64_MAX && done < limit) {
    return absl::DataLossError(absl::StrCat(path, ": shorter than expected"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Sha256File(const std::string& path) {
  Sha256 sha;
  absl::Status st = HashFilePrefix(path, UINT64_MAX, &sha);
  if (!st.ok()) return st;
  return sha.FinishHex();
}

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes));
  return absl::BytesToHexString(raw);
}

bool IsSha256Hex(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace quantd::server
