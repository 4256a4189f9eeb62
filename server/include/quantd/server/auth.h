// Authentication: optional bearer tokens checked per call, and the server's
// transport credentials (plaintext, TLS, or mutual TLS).
//
// Thread safety: Authenticator is immutable after creation; Check is
// thread-safe.
#ifndef QUANTD_SERVER_AUTH_H_
#define QUANTD_SERVER_AUTH_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_context.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quantd/server/config.h"

namespace quantd::server {

class Authenticator {
 public:
  // No tokens: every call is allowed.
  Authenticator() = default;
  // Reads one token per line ('#' starts a comment, blank lines ignored).
  // InvalidArgument if the file cannot be read or holds no token.
  static absl::StatusOr<std::unique_ptr<Authenticator>> FromTokensFile(const std::string& path);

  bool enabled() const { return !token_digests_.empty(); }
  // OK, or UNAUTHENTICATED when the call lacks `authorization: Bearer <t>`
  // with a known token. Compares digests in constant time.
  absl::Status Check(const grpc::ServerContextBase& context) const;

 private:
  std::vector<std::string> token_digests_;  // sha256 hex of each token
};

// Plaintext without TLS flags; TLS with --tls-cert/--tls-key; mutual TLS
// (client certificate required and verified) with --tls-client-ca.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServeConfig& config);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_AUTH_H_
