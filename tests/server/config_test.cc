#include "quantd/server/config.h"

#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace quantd::server {
namespace {

EnvFn FakeEnv(std::map<std::string, std::string> vars) {
  auto shared = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [shared](const char* name) -> const char* {
    auto it = shared->find(name);
    return it == shared->end() ? nullptr : it->second.c_str();
  };
}

TEST(ServeConfigTest, DefaultsSuitOneDeveloper) {
  ServeConfig c;
  bool help = false;
  ASSERT_TRUE(ParseServeConfig({}, FakeEnv({}), &c, &help).ok());
  EXPECT_EQ(c.listen, "127.0.0.1:7443");
  EXPECT_EQ(c.data_dir, "./quantd-data");
}

TEST(ServeConfigTest, FlagsOverrideEnvironment) {
  ServeConfig c;
  bool help = false;
  ASSERT_TRUE(ParseServeConfig({"--workers=4", "--max-upload-bytes", "2G"},
                               FakeEnv({{"QUANTD_WORKERS", "2"},
                                        {"QUANTD_DATA_DIR", "/srv/q"},
                                        {"QUANTD_LISTEN", "0.0.0.0:9000"}}),
                               &c, &help)
                  .ok());
  EXPECT_EQ(c.workers, 4);
  EXPECT_EQ(c.data_dir, "/srv/q");
  EXPECT_EQ(c.listen, "0.0.0.0:9000");
  EXPECT_EQ(c.max_upload_bytes, 2ull << 30);
}

TEST(ServeConfigTest, BadValuesNameTheFlag) {
  ServeConfig c;
  bool help = false;
  auto st = ParseServeConfig({"--workers", "0"}, FakeEnv({}), &c, &help);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("--workers"));
  EXPECT_FALSE(ParseServeConfig({"--nope"}, FakeEnv({}), &c, &help).ok());
  EXPECT_FALSE(ParseServeConfig({"--tls-cert", "a"}, FakeEnv({}), &c, &help).ok());
  st = ParseServeConfig({}, FakeEnv({{"QUANTD_WORKERS", "x"}}), &c, &help);
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("QUANTD_WORKERS"));
  ASSERT_TRUE(ParseServeConfig({"--help"}, FakeEnv({}), &c, &help).ok());
  EXPECT_TRUE(help);
  EXPECT_THAT(ServeHelp(), ::testing::HasSubstr("QUANTD_METRICS_LISTEN"));
}

// The job store: sqlite by default, a PostgreSQL URI from the flag or
// QUANTD_JOB_STORE; a bad value is refused without echoing it (a
// connection string may carry a password).
TEST(ServeConfigTest, JobStoreIsSqliteOrAPostgresUri) {
  ServeConfig c;
  bool help = false;
  ASSERT_TRUE(ParseServeConfig({}, FakeEnv({}), &c, &help).ok());
  EXPECT_EQ(c.job_store, "sqlite");
  EXPECT_EQ(c.lease_seconds, 30);
  const std::string dsn = "postgres://quantd:secret@db:5432/quantd";
  ASSERT_TRUE(
      ParseServeConfig({"--lease-seconds", "2.5"}, FakeEnv({{"QUANTD_JOB_STORE", dsn}}), &c, &help)
          .ok());
  EXPECT_EQ(c.job_store, dsn);
  EXPECT_EQ(c.lease_seconds, 2.5);
  ASSERT_TRUE(ParseServeConfig({"--job-store=postgresql://h/db"}, FakeEnv({}), &c, &help).ok());
  EXPECT_EQ(c.job_store, "postgresql://h/db");
  auto st = ParseServeConfig({"--job-store", "host=db password=hunter2"}, FakeEnv({}), &c, &help);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("--job-store"));
  EXPECT_THAT(std::string(st.message()), ::testing::Not(::testing::HasSubstr("hunter2")));
  EXPECT_FALSE(ParseServeConfig({"--lease-seconds", "0.1"}, FakeEnv({}), &c, &help).ok());
  EXPECT_THAT(ServeHelp(), ::testing::HasSubstr("QUANTD_JOB_STORE"));
}

}  // namespace
}  // namespace quantd::server
