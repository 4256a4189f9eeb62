#include "quantd/server/job_store.h"

#include <chrono>
#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "quantd/server/postgres_job_store.h"
#include "quantd/testing/fake_clock.h"
#include "quantd/testing/memory_job_journal.h"
#include "quantd/testing/postgres_server.h"

namespace quantd::server {
namespace {

using testing::FakeClock;
using testing::MemoryJobJournal;
using testing::PostgresServer;

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

// The JobStore contract, run against both implementations: the embedded
// store over an in-memory journal, and the PostgreSQL store on a server this
// test starts (initdb + pg_ctl on loopback; the test fails if the Debian
// postgresql binaries are missing).
class JobStoreContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "Postgres") {
      auto server = PostgresServer::Start();
      ASSERT_TRUE(server.ok()) << server.status();
      server_ = *std::move(server);
      ASSERT_TRUE(server_->CreateDatabase("jobs").ok());
    }
    Reopen();
  }

  // A new store over the same records, as after a restart (Recover is the
  // caller's).
  void Reopen() {
    store_.reset();
    if (GetParam() == "Postgres") {
      PostgresJobStoreOptions options;
      options.dsn = server_->Dsn("jobs");
      options.poll_interval = absl::Milliseconds(100);
      auto store = PostgresJobStore::Open(options, &clock_);
      ASSERT_TRUE(store.ok()) << store.status();
      store_ = *std::move(store);
    } else {
      store_ = std::make_unique<EmbeddedJobStore>(&journal_, &clock_);
    }
  }

  JobStore& store() { return *store_; }

  MemoryJobJournal journal_;
  FakeClock clock_;
  std::unique_ptr<PostgresServer> server_;
  std::unique_ptr<JobStore> store_;
};

INSTANTIATE_TEST_SUITE_P(Stores, JobStoreContractTest, ::testing::Values("Embedded", "Postgres"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST_P(JobStoreContractTest, CreateAssignsIdSequenceAndPersists) {
  auto a = store().Create(NewJob("d1"));
  auto b = store().Create(NewJob("d2"));
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_TRUE(a->created);
  EXPECT_EQ(a->job.state(), v1::JOB_STATE_QUEUED);
  EXPECT_LT(a->job.sequence(), b->job.sequence());
  Reopen();
  std::vector<std::string> requeued;
  ASSERT_TRUE(store().Recover(&requeued).ok());
  auto list = store().List(v1::ListJobsRequest());
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->jobs_size(), 2);
  EXPECT_EQ(list->jobs(0).job_id(), b->job.job_id());  // newest first
  EXPECT_EQ(store().Queued().size(), 2u);
}

// The proto promises INVALID_ARGUMENT for a bad filter: a state value that
// is not a JobState is one (it used to match nothing and return OK).
TEST_P(JobStoreContractTest, ListRefusesUnknownStates) {
  ASSERT_TRUE(store().Create(NewJob("d1")).ok());
  v1::ListJobsRequest request;
  request.add_states(v1::JOB_STATE_QUEUED);
  auto ok = store().List(request);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->jobs_size(), 1);
  request.add_states(static_cast<v1::JobState>(99));
  auto bad = store().List(request);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("unknown job state 99"), std::string::npos);
}

TEST_P(JobStoreContractTest, ListPagesNewestFirstWithFilters) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    v1::Job j = NewJob(absl::StrCat("p", i));
    (*j.mutable_labels())["team"] = i % 2 == 0 ? "even" : "odd";
    ids.push_back(store().Create(j)->job.job_id());
  }
  v1::ListJobsRequest request;
  request.set_page_size(2);
  (*request.mutable_labels())["team"] = "even";  // ids 0, 2, 4
  auto first = store().List(request);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->jobs_size(), 2);
  EXPECT_EQ(first->jobs(0).job_id(), ids[4]);
  EXPECT_EQ(first->jobs(1).job_id(), ids[2]);
  request.set_page_token(first->next_page_token());
  auto second = store().List(request);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->jobs_size(), 1);
  EXPECT_EQ(second->jobs(0).job_id(), ids[0]);
  EXPECT_TRUE(second->next_page_token().empty());
}

TEST_P(JobStoreContractTest, DedupAndIdempotencyReturnExistingJob) {
  auto a = store().Create(NewJob("same"));
  auto b = store().Create(NewJob("same"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(b->created);
  EXPECT_EQ(a->job.job_id(), b->job.job_id());
  // A failed job does not absorb new submissions.
  ASSERT_TRUE(
      store()
          .Update(
              a->job.job_id(), [](v1::Job* j) { return SetState(j, v1::JOB_STATE_FAILED); }, true)
          .ok());
  auto c = store().Create(NewJob("same"));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->created);
  auto k1 = store().Create(NewJob("x1", "key"));
  auto k2 = store().Create(NewJob("x2", "key"));
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
    EmbeddedJobStore store(&journal, &clock);
    a = store.Create(NewJob("a"))->job.job_id();
    b = store.Create(NewJob("b"))->job.job_id();
    done_id = store.Create(NewJob("c"))->job.job_id();
    (void)store.Update(
        done_id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_SUCCEEDED); }, true);
  }
  // Killed (no fault recorded) five times while both ran: neither job is
  // charged, so neither fails for the restarts alone.
  for (int round = 0; round < 5; ++round) {
    EmbeddedJobStore store(&journal, &clock);
    std::vector<std::string> requeued;
    ASSERT_TRUE(store.Recover(&requeued).ok());
    StartRunning(&store, {a, b});
  }
  EmbeddedJobStore store(&journal, &clock);
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

TEST_P(JobStoreContractTest, RecoverRequeuesRunningJobs) {
  const std::string running_id = store().Create(NewJob("a"))->job.job_id();
  const std::string done_id = store().Create(NewJob("c"))->job.job_id();
  (void)store().Update(
      running_id,
      [](v1::Job* j) {
        j->set_attempts(1);
        return SetState(j, v1::JOB_STATE_RUNNING);
      },
      true);
  (void)store().Update(
      done_id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_SUCCEEDED); }, true);
  Reopen();
  std::vector<std::string> requeued;
  ASSERT_TRUE(store().Recover(&requeued).ok());
  EXPECT_EQ(requeued, std::vector<std::string>{running_id});
  EXPECT_EQ(store().Get(running_id)->state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(store().Get(done_id)->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_TRUE(store().IsSucceeded(done_id));
  EXPECT_FALSE(store().IsSucceeded(running_id));
  EXPECT_TRUE(store().HasActiveJobForModel(store().Get(running_id)->model_id()));
  // Sequences continue after the recovered ones.
  auto next = store().Create(NewJob("d"));
  EXPECT_GT(next->job.sequence(), store().Get(done_id)->sequence());
}

TEST_P(JobStoreContractTest, RefusedMutationLeavesJobUnchanged) {
  const std::string id = store().Create(NewJob("a"))->job.job_id();
  auto st = store().Update(
      id,
      [](v1::Job* j) {
        j->set_state(v1::JOB_STATE_RUNNING);
        return absl::AbortedError("fenced");
      },
      true);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store().Get(id)->state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(store()
                .Update(
                    "job_nope", [](v1::Job*) { return absl::OkStatus(); }, true)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST_P(JobStoreContractTest, SubscribersSeeChangesUntilUnsubscribed) {
  const std::string id = store().Create(NewJob("a"))->job.job_id();
  absl::Mutex mu;
  std::vector<v1::JobState> seen;
  auto sub = store().Subscribe(id, [&](const v1::Job& j) {
    absl::MutexLock lock(&mu);
    seen.push_back(j.state());
  });
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(sub->second.state(), v1::JOB_STATE_QUEUED);
  (void)store().Update(
      id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_RUNNING); }, true);
  store().Unsubscribe(sub->first);
  (void)store().Update(
      id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_SUCCEEDED); }, true);
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(seen, std::vector<v1::JobState>{v1::JOB_STATE_RUNNING});
  }
  EXPECT_EQ(store().Subscribe("job_nope", nullptr).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(JobStoreContractTest, DeleteRefusesActiveJobs) {
  const std::string id = store().Create(NewJob("a"))->job.job_id();
  EXPECT_EQ(store().Delete(id).code(), absl::StatusCode::kFailedPrecondition);
  (void)store().Update(
      id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_CANCELLED); }, true);
  EXPECT_TRUE(store().Delete(id).ok());
  EXPECT_EQ(store().Get(id).status().code(), absl::StatusCode::kNotFound);
  Reopen();
  std::vector<std::string> requeued;
  ASSERT_TRUE(store().Recover(&requeued).ok());
  EXPECT_EQ(store().List(v1::ListJobsRequest())->jobs_size(), 0);
}

// Journal-specific behaviour of the embedded store.
TEST(JobStoreTest, AFaultIsChargedToTheFaultingJobWhichIsQuarantinedAndTheOtherRunsOn) {
  MemoryJobJournal journal;
  FakeClock clock;
  std::string crasher, victim;
  {
    EmbeddedJobStore store(&journal, &clock);
    crasher = store.Create(NewJob("crasher"))->job.job_id();
    victim = store.Create(NewJob("victim"))->job.job_id();
    StartRunning(&store, {crasher, victim});
  }
  CrashRecord crash;
  crash.signal = 11;
  crash.faulting_job = crasher;
  crash.running = {crasher, victim};
  for (int round = 1; round <= kMaxCrashes; ++round) {
    EmbeddedJobStore store(&journal, &clock);
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
    EmbeddedJobStore store(&journal, &clock);
    a = store.Create(NewJob("a"))->job.job_id();
    b = store.Create(NewJob("b"))->job.job_id();
    queued = store.Create(NewJob("q"))->job.job_id();
    StartRunning(&store, {a, b});
  }
  CrashRecord crash;
  crash.signal = 6;  // on a thread that is not a worker
  crash.running = {a, b};
  EmbeddedJobStore store(&journal, &clock);
  std::vector<std::string> requeued;
  ASSERT_TRUE(store.Recover(crash, &requeued, nullptr).ok());
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
    EmbeddedJobStore store(&journal, &clock);
    id = store.Create(NewJob("oom"))->job.job_id();
  }
  for (int round = 1; round <= kMaxInterruptions; ++round) {
    {
      EmbeddedJobStore store(&journal, &clock);
      std::vector<std::string> requeued;
      ASSERT_TRUE(store.Recover(&requeued).ok());
      StartRunning(&store, {id});
    }
    EmbeddedJobStore store(&journal, &clock);
    std::vector<std::string> requeued;
    ASSERT_TRUE(store.Recover(&requeued).ok());
    EXPECT_EQ(store.Get(id)->interruptions(), round);
    EXPECT_EQ(store.Get(id)->attempts(), 0);
    EXPECT_EQ(store.Get(id)->state(),
              round < kMaxInterruptions ? v1::JOB_STATE_QUEUED : v1::JOB_STATE_FAILED);
  }
}

TEST(EmbeddedJobStoreTest, JournalFailureLeavesJobUnchanged) {
  MemoryJobJournal journal;
  FakeClock clock;
  EmbeddedJobStore store(&journal, &clock);
  const std::string id = store.Create(NewJob("a"))->job.job_id();
  journal.FailNextPut(absl::ResourceExhaustedError("disk full"));
  auto st = store.Update(
      id, [](v1::Job* j) { return SetState(j, v1::JOB_STATE_RUNNING); }, true);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(store.Get(id)->state(), v1::JOB_STATE_QUEUED);
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

TEST(EmbeddedJobStoreTest, ReadersDoNotWaitForAStalledJournalWrite) {
  StallingJournal journal;
  FakeClock clock;
  EmbeddedJobStore store(&journal, &clock);
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

TEST(EmbeddedJobStoreTest, WritersWaitForTheStalledWriterAndKeepItsChange) {
  StallingJournal journal;
  FakeClock clock;
  EmbeddedJobStore store(&journal, &clock);
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
