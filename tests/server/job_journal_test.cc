#include "quantd/server/job_journal.h"

#include <cstdio>

#include "gtest/gtest.h"

namespace quantd::server {
namespace {

TEST(SqliteJobJournalTest, PersistsAcrossReopen) {
  const std::string path = ::testing::TempDir() + "/journal-test.db";
  std::remove(path.c_str());
  {
    auto j = SqliteJobJournal::Open(path);
    ASSERT_TRUE(j.ok()) << j.status();
    v1::Job job;
    job.set_job_id("job_1");
    job.set_sequence(2);
    job.set_state(v1::JOB_STATE_RUNNING);
    ASSERT_TRUE((*j)->Put(job).ok());
    job.set_job_id("job_0");
    job.set_sequence(1);
    ASSERT_TRUE((*j)->Put(job).ok());
  }
  auto j = SqliteJobJournal::Open(path);
  ASSERT_TRUE(j.ok());
  auto all = (*j)->LoadAll();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].job_id(), "job_0");
  ASSERT_TRUE((*j)->Delete("job_0").ok());
  EXPECT_EQ((*j)->LoadAll()->size(), 1u);
}

}  // namespace
}  // namespace quantd::server
