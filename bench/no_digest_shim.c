/* Preloaded by bench/transfer_profile.sh NODIGEST=1 into quantctl and quantd:
 * OpenSSL's EVP_DigestUpdate does nothing, so both ends hash no bytes and
 * their SHA-256 digests agree (of the empty input). Measures the transfer
 * path without its hashing; a diagnostic, never a way to run the service. */
#include <stddef.h>

int EVP_DigestUpdate(void* ctx, const void* data, size_t count) {
  (void)ctx;
  (void)data;
  (void)count;
  return 1;
}
