// Integration tests: bearer tokens, TLS and mutual TLS on the real server.
// Certificates are generated with the openssl CLI at test time.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "quantd/client/client.h"
#include "server_process.h"
#include "test_util.h"

namespace quantd::testing {
namespace {

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// CA, server (localhost / 127.0.0.1) and client certificates in `dir`.
void MakeCertificates(const std::string& dir) {
  std::ofstream(dir + "/server.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
  const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  std::string script =
      absl::StrCat("set -e; cd ", dir, "; ", "openssl req -x509 ", key,
                   " -keyout ca.key -out ca.pem -days 2 -subj /CN=quantd-test-ca; ", "openssl req ",
                   key, " -keyout server.key -out server.csr -subj /CN=localhost; ",
                   "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial ",
                   "-out server.pem -days 2 -extfile server.ext; ", "openssl req ", key,
                   " -keyout client.key -out client.csr -subj /CN=quantd-test-client; ",
                   "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial ",
                   "-out client.pem -days 2", " > openssl.log 2>&1");
  ASSERT_EQ(RunCommand("bash -c '" + script + "'"), 0) << ReadText(dir + "/openssl.log");
}

TEST(SecurityTest, BearerTokensRequiredWhenConfigured) {
  TempDir tmp;
  const std::string tokens = tmp.path() + "/tokens";
  std::ofstream(tokens) << "# build farm\nsecret-token-1\n\n  secret-token-2  \n";
  ServerProcess server(tmp.path() + "/data", {"--auth-tokens", tokens});
  ASSERT_TRUE(server.Start().ok());

  auto anonymous = server.NewClient();
  auto upload = anonymous->Upload({Gpt2Model()});
  EXPECT_EQ(upload.status().code(), absl::StatusCode::kUnauthenticated) << upload.status();
  EXPECT_EQ(anonymous->ListJobs({}).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(anonymous->GetJob("job_00000000000000000000").status().code(),
            absl::StatusCode::kUnauthenticated);
  // Health stays open for load balancers.
  auto health = anonymous->Health();
  EXPECT_TRUE(health.ok() && *health);

  client::ClientOptions wrong;
  wrong.token = "not-a-token";
  EXPECT_EQ(server.NewClient(wrong)->ListJobs({}).status().code(),
            absl::StatusCode::kUnauthenticated);

  client::ClientOptions good;
  good.token = "secret-token-2";
  auto c = server.NewClient(good);
  auto result = c->Quantize({Gpt2Model()}, Fp16Recipe(), tmp.path() + "/out");
  EXPECT_TRUE(result.ok()) << result.status();
}

TEST(SecurityTest, NoTokensMeansOpen) {
  TempDir tmp;
  ServerProcess server(tmp.path() + "/data");
  ASSERT_TRUE(server.Start().ok());
  client::ClientOptions any;
  any.token = "whatever";
  EXPECT_TRUE(server.NewClient(any)->ListJobs({}).ok());
  EXPECT_TRUE(server.NewClient()->ListJobs({}).ok());
}

TEST(SecurityTest, TlsServerAcceptsTlsClientsOnly) {
  TempDir tmp;
  MakeCertificates(tmp.path());
  ServerProcess server(tmp.path() + "/data", {"--tls-cert", tmp.path() + "/server.pem", "--tls-key",
                                              tmp.path() + "/server.key"});
  ASSERT_TRUE(server.Start().ok());
  client::ClientOptions tls;
  tls.tls = true;
  tls.tls_root_certs_pem = ReadText(tmp.path() + "/ca.pem");
  tls.tls_server_name = "localhost";
  tls.rpc_timeout = absl::Seconds(10);
  auto c = server.NewClient(tls);
  auto result = c->Quantize({Gpt2Model()}, Fp16Recipe(), tmp.path() + "/out");
  EXPECT_TRUE(result.ok()) << result.status();

  client::ClientOptions plain;
  plain.rpc_timeout = absl::Seconds(3);
  EXPECT_FALSE(server.NewClient(plain)->ListJobs({}).ok());
}

TEST(SecurityTest, MutualTlsRequiresClientCertificate) {
  TempDir tmp;
  MakeCertificates(tmp.path());
  ServerProcess server(tmp.path() + "/data",
                       {"--tls-cert", tmp.path() + "/server.pem", "--tls-key",
                        tmp.path() + "/server.key", "--tls-client-ca", tmp.path() + "/ca.pem"});
  ASSERT_TRUE(server.Start().ok());
  client::ClientOptions no_cert;
  no_cert.tls = true;
  no_cert.tls_root_certs_pem = ReadText(tmp.path() + "/ca.pem");
  no_cert.tls_server_name = "localhost";
  no_cert.rpc_timeout = absl::Seconds(3);
  EXPECT_FALSE(server.NewClient(no_cert)->ListJobs({}).ok());

  client::ClientOptions with_cert = no_cert;
  with_cert.tls_client_cert_pem = ReadText(tmp.path() + "/client.pem");
  with_cert.tls_client_key_pem = ReadText(tmp.path() + "/client.key");
  with_cert.rpc_timeout = absl::Seconds(10);
  auto c = server.NewClient(with_cert);
  auto list = c->ListJobs({});
  EXPECT_TRUE(list.ok()) << list.status();
  auto upload = c->Upload({Gpt2Model()});
  EXPECT_TRUE(upload.ok()) << upload.status();
}

}  // namespace
}  // namespace quantd::testing
