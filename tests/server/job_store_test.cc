#include "quantd/server/job_store.h"

#include "gtest/gtest.h"

namespace quantd::server {
namespace {

v1::Job NewJob(const std::string& dedup, const std::string& idem = "") {
  v1::Job j;
  j.set_model_id("sha256:" + std::string(64, 'a'));
  j.set_dedup_key(dedup);
  j.set_idempotency_key(idem);
  return j;
}

absl::Status SetState(v1::Job* j, v1::JobState s) {
  j->set_state(s);
  return absl::OkStatus();
}

TEST(JobStoreTest, CreateAssignsIdSequenceAndJournals) {
  MemoryJobJournal journal;
  FakeClock clock;
  JobStore store(&journal, &clock);
  auto a = store.Create(NewJob("d1"));
  auto b = store.Create(NewJob("d2"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->created);
  EXPECT_EQ(a->job.state(), v1::JOB_STATE_QUEUED);
  EXPECT_LT(a->job.sequence(), b->job.sequence());
  EXPECT_EQ(journal.LoadAll()->size(), 2u);
}

TEST(JobStoreTest, DedupAndIdempotencyReturnExistingJob) {
  MemoryJobJournal journal;
  FakeClock clock;
  JobStore store(&journal, &clock);
  auto a = store.Create(NewJob("same"));
  auto b = store.Create(NewJob("same"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(b->created);
  EXPECT_EQ(a->job.job_id(), b->job.job_id());
  // A failed job does not absorb new submissions.
  ASSERT_TRUE(store.Update(a->job.job_id(),
                           [](v1::Job* j) { return SetState(j, v1::JOB_STATE_FAILED); }, true)
                  .ok());
  auto c = store.Create(NewJob("same"));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->created);
  auto k1 = store.Create(NewJob("x1", "key"));
  auto k2 = store.Create(NewJob("x2", "key"));
  ASSERT_TRUE(k1.ok() && k2.ok());
  EXPECT_EQ(k1->job.job_id(), k2->job.job_id());
}

TEST(JobStoreTest, RecoverRequeuesRunningAndFailsRepeatCrashers) {
  MemoryJobJournal journal;
  FakeClock clock;
  std::string running_id, crasher_id, done_id;
  {
    JobStore store(&journal, &clock);
    running_id = store.Create(NewJob("a"))->job.job_id();
    crasher_id = store.Create(NewJob("b"))->job.job_id();
    done_id = store.Create(NewJob("c"))->job.job_id();
    (void)store.Update(running_id, [](v1::Job* j) {
      j->set_attempts(1);
      return SetState(j, v1::JOB_STATE_RUNNING);
    }, true);
    (void)store.Update(crasher_id, [](v1::Job* j) {
      j->set_attempts(JobStore::kMaxAttempts);
      return SetState(j, v1::JOB_STATE_RUNNING);
    }, true);
    (void)store.Update(done_id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_SUCCEEDED); },
                       true);
  }
  JobStore store(&journal, &clock);
  std::vector<std::string> requeued;
  ASSERT_TRUE(store.Recover(&requeued).ok());
  EXPECT_EQ(requeued, std::vector<std::string>{running_id});
  EXPECT_EQ(store.Get(running_id)->state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(store.Get(crasher_id)->state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(store.Get(done_id)->state(), v1::JOB_STATE_SUCCEEDED);
  // Sequences continue after the recovered ones.
  auto next = store.Create(NewJob("d"));
  EXPECT_GT(next->job.sequence(), store.Get(done_id)->sequence());
}

TEST(JobStoreTest, JournalFailureLeavesJobUnchanged) {
  MemoryJobJournal journal;
  FakeClock clock;
  JobStore store(&journal, &clock);
  const std::string id = store.Create(NewJob("a"))->job.job_id();
  journal.FailNextPut(absl::ResourceExhaustedError("disk full"));
  auto st = store.Update(id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_RUNNING); }, true);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(store.Get(id)->state(), v1::JOB_STATE_QUEUED);
}

TEST(JobStoreTest, SubscribersSeeChangesUntilUnsubscribed) {
  MemoryJobJournal journal;
  FakeClock clock;
  JobStore store(&journal, &clock);
  const std::string id = store.Create(NewJob("a"))->job.job_id();
  std::vector<v1::JobState> seen;
  auto sub = store.Subscribe(id, [&](const v1::Job& j) { seen.push_back(j.state()); });
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->second.state(), v1::JOB_STATE_QUEUED);
  (void)store.Update(id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_RUNNING); }, true);
  store.Unsubscribe(sub->first);
  (void)store.Update(id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_SUCCEEDED); }, true);
  EXPECT_EQ(seen, std::vector<v1::JobState>{v1::JOB_STATE_RUNNING});
  EXPECT_EQ(store.Subscribe("job_nope", nullptr).status().code(), absl::StatusCode::kNotFound);
}

TEST(JobStoreTest, DeleteRefusesActiveJobs) {
  MemoryJobJournal journal;
  FakeClock clock;
  JobStore store(&journal, &clock);
  const std::string id = store.Create(NewJob("a"))->job.job_id();
  EXPECT_EQ(store.Delete(id).code(), absl::StatusCode::kFailedPrecondition);
  (void)store.Update(id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_CANCELLED); }, true);
  EXPECT_TRUE(store.Delete(id).ok());
  EXPECT_EQ(store.Get(id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(journal.LoadAll()->empty());
}

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
