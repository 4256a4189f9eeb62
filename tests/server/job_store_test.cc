#include "quantd/server/job_store.h"

#include <chrono>
#include <future>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "quantd/testing/fake_clock.h"
#include "quantd/testing/memory_job_journal.h"

namespace quantd::server {
namespace {

using testing::FakeClock;
using testing::MemoryJobJournal;

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

// The proto promises INVALID_ARGUMENT for a bad filter: a state value that
// is not a JobState is one (it used to match nothing and return OK).
TEST(JobStoreTest, ListRefusesUnknownStates) {
  MemoryJobJournal journal;
  FakeClock clock;
  JobStore store(&journal, &clock);
  ASSERT_TRUE(store.Create(NewJob("d1")).ok());
  v1::ListJobsRequest request;
  request.add_states(v1::JOB_STATE_QUEUED);
  auto ok = store.List(request);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->jobs_size(), 1);
  request.add_states(static_cast<v1::JobState>(99));
  auto bad = store.List(request);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("unknown job state 99"), std::string::npos);
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
  ASSERT_TRUE(
      store
          .Update(
              a->job.job_id(), [](v1::Job* j) { return SetState(j, v1::JOB_STATE_FAILED); }, true)
          .ok());
  auto c = store.Create(NewJob("same"));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->created);
  auto k1 = store.Create(NewJob("x1", "key"));
  auto k2 = store.Create(NewJob("x2", "key"));
  ASSERT_TRUE(k1.ok() && k2.ok());
  EXPECT_EQ(k1->job.job_id(), k2->job.job_id());
}

// Marks the jobs RUNNING with one more attempt, as a worker does.
void StartRunning(JobStore* store, const std::vector<std::string>& ids) {
  for (const auto& id : ids) {
    (void)store->Update(
        id,
        [](v1::Job* j) {
          j->set_attempts(j->attempts() + 1);
          return SetState(j, v1::JOB_STATE_RUNNING);
        },
        true);
  }
}

TEST(JobStoreTest, RecoverWithoutAFaultRequeuesAndGivesTheAttemptsBack) {
  MemoryJobJournal journal;
  FakeClock clock;
  std::string a, b, done_id;
  {
    JobStore store(&journal, &clock);
    a = store.Create(NewJob("a"))->job.job_id();
    b = store.Create(NewJob("b"))->job.job_id();
    done_id = store.Create(NewJob("c"))->job.job_id();
    (void)store.Update(
        done_id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_SUCCEEDED); }, true);
  }
  // Killed (no fault recorded) five times while both ran: neither job is
  // charged, so neither fails for the restarts alone.
  for (int round = 0; round < 5; ++round) {
    JobStore store(&journal, &clock);
    std::vector<std::string> requeued;
    ASSERT_TRUE(store.Recover(&requeued).ok());
    StartRunning(&store, {a, b});
  }
  JobStore store(&journal, &clock);
  std::vector<std::string> requeued;
  ASSERT_TRUE(store.Recover(&requeued).ok());
  EXPECT_EQ(requeued.size(), 2u);
  for (const auto& id : {a, b}) {
    EXPECT_EQ(store.Get(id)->state(), v1::JOB_STATE_QUEUED);
    EXPECT_EQ(store.Get(id)->attempts(), 0);
    EXPECT_EQ(store.Get(id)->interruptions(), 0);
  }
  EXPECT_EQ(store.Get(done_id)->state(), v1::JOB_STATE_SUCCEEDED);
  // Sequences continue after the recovered ones.
  auto next = store.Create(NewJob("d"));
  EXPECT_GT(next->job.sequence(), store.Get(done_id)->sequence());
}

TEST(JobStoreTest, AFaultIsChargedToTheFaultingJobWhichIsQuarantinedAndTheOtherRunsOn) {
  MemoryJobJournal journal;
  FakeClock clock;
  std::string crasher, victim;
  {
    JobStore store(&journal, &clock);
    crasher = store.Create(NewJob("crasher"))->job.job_id();
    victim = store.Create(NewJob("victim"))->job.job_id();
    StartRunning(&store, {crasher, victim});
  }
  CrashRecord crash;
  crash.signal = 11;
  crash.faulting_job = crasher;
  crash.running = {crasher, victim};
  for (int round = 1; round <= kMaxCrashes; ++round) {
    JobStore store(&journal, &clock);
    std::vector<std::string> requeued, quarantined;
    ASSERT_TRUE(store.Recover(crash, &requeued, &quarantined).ok());
    EXPECT_EQ(store.Get(crasher)->crashes(), round);
    EXPECT_EQ(store.Get(victim)->attempts(), 0);
    EXPECT_EQ(store.Get(victim)->state(), v1::JOB_STATE_QUEUED);
    if (round < kMaxCrashes) {
      EXPECT_EQ(store.Get(crasher)->state(), v1::JOB_STATE_QUEUED);
      EXPECT_EQ(store.Get(crasher)->attempts(), round);  // charged
      StartRunning(&store, {crasher, victim});
    } else {
      EXPECT_EQ(quarantined, std::vector<std::string>{crasher});
      EXPECT_EQ(requeued, std::vector<std::string>{victim});
      auto job = store.Get(crasher);
      EXPECT_EQ(job->state(), v1::JOB_STATE_FAILED);
      EXPECT_EQ(job->error().code(), "ABORTED");
      EXPECT_NE(job->error().message().find("quarantined"), std::string::npos);
      EXPECT_NE(job->error().message().find("crashed (signal 11"), std::string::npos);
    }
  }
}

TEST(JobStoreTest, AnUnattributedFaultAmongSeveralJobsRunsEachAloneNext) {
  MemoryJobJournal journal;
  FakeClock clock;
  std::string a, b, queued;
  {
    JobStore store(&journal, &clock);
    a = store.Create(NewJob("a"))->job.job_id();
    b = store.Create(NewJob("b"))->job.job_id();
    queued = store.Create(NewJob("q"))->job.job_id();
    StartRunning(&store, {a, b});
  }
  CrashRecord crash;
  crash.signal = 6;  // on a thread that is not a worker
  crash.running = {a, b};
  JobStore store(&journal, &clock);
  std::vector<std::string> requeued;
  ASSERT_TRUE(store.Recover(crash, &requeued).ok());
  for (const auto& id : {a, b}) {
    EXPECT_EQ(store.Get(id)->state(), v1::JOB_STATE_QUEUED);
    EXPECT_TRUE(store.Get(id)->run_alone());
    EXPECT_EQ(store.Get(id)->attempts(), 0);
    EXPECT_EQ(store.Get(id)->crashes(), 0);
  }
  EXPECT_FALSE(store.Get(queued)->run_alone());
  EXPECT_EQ(store.Get(queued)->attempts(), 0);
}

TEST(JobStoreTest, AJobKilledRepeatedlyWhileRunningAloneIsQuarantined) {
  MemoryJobJournal journal;
  FakeClock clock;
  std::string id;
  {
    JobStore store(&journal, &clock);
    id = store.Create(NewJob("oom"))->job.job_id();
  }
  for (int round = 1; round <= kMaxInterruptions; ++round) {
    {
      JobStore store(&journal, &clock);
      std::vector<std::string> requeued;
      ASSERT_TRUE(store.Recover(&requeued).ok());
      StartRunning(&store, {id});
    }
    JobStore store(&journal, &clock);
    std::vector<std::string> requeued;
    ASSERT_TRUE(store.Recover(&requeued).ok());
    EXPECT_EQ(store.Get(id)->interruptions(), round);
    EXPECT_EQ(store.Get(id)->attempts(), 0);
    EXPECT_EQ(store.Get(id)->state(),
              round < kMaxInterruptions ? v1::JOB_STATE_QUEUED : v1::JOB_STATE_FAILED);
  }
}

TEST(JobStoreTest, JournalFailureLeavesJobUnchanged) {
  MemoryJobJournal journal;
  FakeClock clock;
  JobStore store(&journal, &clock);
  const std::string id = store.Create(NewJob("a"))->job.job_id();
  journal.FailNextPut(absl::ResourceExhaustedError("disk full"));
  auto st = store.Update(
      id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_RUNNING); }, true);
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
  (void)store.Update(
      id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_RUNNING); }, true);
  store.Unsubscribe(sub->first);
  (void)store.Update(
      id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_SUCCEEDED); }, true);
  EXPECT_EQ(seen, std::vector<v1::JobState>{v1::JOB_STATE_RUNNING});
  EXPECT_EQ(store.Subscribe("job_nope", nullptr).status().code(), absl::StatusCode::kNotFound);
}

TEST(JobStoreTest, DeleteRefusesActiveJobs) {
  MemoryJobJournal journal;
  FakeClock clock;
  JobStore store(&journal, &clock);
  const std::string id = store.Create(NewJob("a"))->job.job_id();
  EXPECT_EQ(store.Delete(id).code(), absl::StatusCode::kFailedPrecondition);
  (void)store.Update(
      id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_CANCELLED); }, true);
  EXPECT_TRUE(store.Delete(id).ok());
  EXPECT_EQ(store.Get(id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(journal.LoadAll()->empty());
}

// A journal whose Put, once armed, blocks until released: a stand-in for an
// fsync that takes long.
class StallingJournal : public MemoryJobJournal {
 public:
  absl::Status Put(const v1::Job& job) override {
    if (armed_.exchange(false)) {
      entered_.Notify();
      release_.WaitForNotification();
    }
    return MemoryJobJournal::Put(job);
  }
  void Arm() { armed_ = true; }
  void WaitUntilStalled() { entered_.WaitForNotification(); }
  void Release() {
    if (!release_.HasBeenNotified()) release_.Notify();
  }

 private:
  std::atomic<bool> armed_{false};
  absl::Notification entered_;
  absl::Notification release_;
};

// Runs `fn` on another thread; true if it returned within a few seconds
// while `journal` stayed stalled. If not, releases the journal so that the
// blocked call, and the test, can end.
template <typename Fn>
bool ReturnsWhileStalled(StallingJournal* journal, Fn fn) {
  auto done = std::async(std::launch::async, std::move(fn));
  const bool returned = done.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  if (!returned) journal->Release();
  return returned;
}

TEST(JobStoreTest, ReadersDoNotWaitForAStalledJournalWrite) {
  StallingJournal journal;
  FakeClock clock;
  JobStore store(&journal, &clock);
  const std::string id = store.Create(NewJob("a"))->job.job_id();
  std::vector<v1::JobState> seen;
  auto sub = store.Subscribe(id, [&](const v1::Job& j) { seen.push_back(j.state()); });
  ASSERT_TRUE(sub.ok());

  journal.Arm();
  std::thread writer([&] {
    auto st = store.Update(
        id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_RUNNING); }, true);
    EXPECT_TRUE(st.ok()) << st.status();
  });
  journal.WaitUntilStalled();
  // While the state change is not durable, readers return and see the old state.
  v1::JobState during = v1::JOB_STATE_UNSPECIFIED;
  bool get_returned = ReturnsWhileStalled(&journal, [&] { during = store.Get(id)->state(); });
  bool list_returned =
      ReturnsWhileStalled(&journal, [&] { (void)store.List(v1::ListJobsRequest()); });
  bool subscribe_returned = ReturnsWhileStalled(&journal, [&] {
    auto s = store.Subscribe(id, nullptr);
    if (s.ok()) store.Unsubscribe(s->first);
  });
  journal.Release();
  writer.join();
  EXPECT_TRUE(get_returned);
  EXPECT_TRUE(list_returned);
  EXPECT_TRUE(subscribe_returned);
  EXPECT_EQ(during, v1::JOB_STATE_QUEUED);
  // Once durable, the change is visible and was notified once.
  EXPECT_EQ(store.Get(id)->state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(seen, std::vector<v1::JobState>{v1::JOB_STATE_RUNNING});
  store.Unsubscribe(sub->first);
}

TEST(JobStoreTest, WritersWaitForTheStalledWriterAndKeepItsChange) {
  StallingJournal journal;
  FakeClock clock;
  JobStore store(&journal, &clock);
  const std::string id = store.Create(NewJob("a"))->job.job_id();
  journal.Arm();
  std::thread first([&] {
    (void)store.Update(
        id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_RUNNING); }, true);
  });
  journal.WaitUntilStalled();
  std::atomic<bool> second_done{false};
  std::thread second([&] {
    (void)store.Update(
        id,
        [](v1::Job* j) {
          j->set_attempts(j->attempts() + 1);
          return absl::OkStatus();
        },
        true);
    second_done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(second_done.load());  // its turn comes after the stalled write
  journal.Release();
  first.join();
  second.join();
  auto job = store.Get(id);
  EXPECT_EQ(job->state(), v1::JOB_STATE_RUNNING);  // not lost to the second writer
  EXPECT_EQ(job->attempts(), 1);
  auto journaled = journal.LoadAll();
  ASSERT_EQ(journaled->size(), 1u);
  EXPECT_EQ((*journaled)[0].state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ((*journaled)[0].attempts(), 1);
}

}  // namespace
}  // namespace quantd::server
