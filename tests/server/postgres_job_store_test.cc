// The shared-queue side of PostgresJobStore (JobLeases, migrations,
// cross-store uniqueness and watching), with several stores on one
// database standing in for replicas. The server is started by the test.
#include "quantd/server/postgres_job_store.h"

#include <atomic>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "quantd/testing/fake_clock.h"
#include "quantd/testing/postgres_server.h"

namespace quantd::server {
namespace {

using testing::FakeClock;
using testing::PostgresServer;

v1::Job NewJob(const std::string& dedup, int priority = 0, const std::string& idem = "") {
  v1::Job j;
  j.set_model_id("sha256:" + std::string(64, 'a'));
  j.set_dedup_key(dedup);
  j.set_priority(priority);
  j.set_idempotency_key(idem);
  return j;
}

class PostgresJobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = PostgresServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_TRUE(server_->CreateDatabase("jobs").ok());
  }

  std::unique_ptr<PostgresJobStore> Open() {
    PostgresJobStoreOptions options;
    options.dsn = server_->Dsn("jobs");
    options.poll_interval = absl::Milliseconds(200);
    auto store = PostgresJobStore::Open(options, &clock_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  FakeClock clock_;
  std::unique_ptr<PostgresServer> server_;
};

TEST_F(PostgresJobStoreTest, ConcurrentStartsApplyEachMigrationOnce) {
  std::vector<std::unique_ptr<PostgresJobStore>> stores(6);
  std::vector<std::thread> threads;
  for (auto& s : stores) threads.emplace_back([&] { s = Open(); });
  for (auto& t : threads) t.join();
  for (auto& s : stores) ASSERT_NE(s, nullptr);
  auto count = server_->QueryValue("jobs", "SELECT count(*) FROM quantd_schema_migrations");
  ASSERT_TRUE(count.ok()) << count.status();
  EXPECT_EQ(*count, absl::StrCat(PostgresJobStore::LatestSchemaVersion()));
  // A database migrated by a newer quantd is refused, not downgraded.
  ASSERT_TRUE(
      server_->Exec("jobs", "INSERT INTO quantd_schema_migrations(version) VALUES (999)").ok());
  PostgresJobStoreOptions options;
  options.dsn = server_->Dsn("jobs");
  EXPECT_EQ(PostgresJobStore::Open(options, &clock_).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(PostgresJobStoreTest, UnreachableServerIsUnavailable) {
  PostgresJobStoreOptions options;
  options.dsn = "postgresql://quantd@127.0.0.1:1/jobs?connect_timeout=2";
  EXPECT_EQ(PostgresJobStore::Open(options, &clock_).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(PostgresJobStoreTest, ClaimsHighestPriorityOldestFirst) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const std::string low = store->Create(NewJob("a", 0))->job.job_id();
  const std::string high = store->Create(NewJob("b", 5))->job.job_id();
  const std::string low2 = store->Create(NewJob("c", 0))->job.job_id();
  std::vector<std::string> order;
  for (int i = 0; i < 4; ++i) {
    auto c = store->ClaimNext("r1", absl::Seconds(30), 1000);
    ASSERT_TRUE(c.ok()) << c.status();
    if (!c->has_value()) break;
    EXPECT_EQ((*c)->state(), v1::JOB_STATE_RUNNING);
    EXPECT_EQ((*c)->attempts(), 1);
    order.push_back((*c)->job_id());
  }
  EXPECT_EQ(order, (std::vector<std::string>{high, low, low2}));
  auto depth = store->QueueDepth();
  ASSERT_TRUE(depth.ok());
  EXPECT_EQ(*depth, 0);
}

// Replicas claiming at once (SKIP LOCKED): every job is claimed exactly once.
TEST_F(PostgresJobStoreTest, ConcurrentClaimsTakeEachJobOnce) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a && b);
  constexpr int kJobs = 60;
  for (int i = 0; i < kJobs; ++i) ASSERT_TRUE(a->Create(NewJob(absl::StrCat("j", i))).ok());
  absl::Mutex mu;
  std::multiset<std::string> claimed;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    PostgresJobStore* store = t % 2 == 0 ? a.get() : b.get();
    threads.emplace_back([&, store, t] {
      while (true) {
        auto c = store->ClaimNext(absl::StrCat("r", t), absl::Seconds(30), 1000);
        ASSERT_TRUE(c.ok()) << c.status();
        if (!c->has_value()) return;
        absl::MutexLock lock(&mu);
        claimed.insert((*c)->job_id());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(),
            static_cast<size_t>(kJobs));
}

// The fencing rule the WorkerPool applies to each write of a running job.
absl::Status Fenced(const v1::Job& j, int attempt) {
  if (j.state() != v1::JOB_STATE_RUNNING || j.attempts() != attempt) {
    return absl::AbortedError("lease lost");
  }
  return absl::OkStatus();
}

TEST_F(PostgresJobStoreTest, ExpiredLeaseRequeuesAndFencesTheOldAttempt) {
  auto a = Open();  // the replica that stalls
  auto b = Open();  // the one that takes over
  ASSERT_TRUE(a && b);
  const std::string id = a->Create(NewJob("x"))->job.job_id();
  auto first = a->ClaimNext("a", absl::Milliseconds(300), 1000);
  ASSERT_TRUE(first.ok() && first->has_value());
  bool cancel = true;
  ASSERT_TRUE(a->Heartbeat(id, 1, absl::Milliseconds(300), &cancel).ok());
  EXPECT_FALSE(cancel);
  // A live lease is not requeued.
  EXPECT_TRUE(b->RequeueExpired(1000)->empty());
  absl::SleepFor(absl::Milliseconds(600));
  auto requeued = b->RequeueExpired(2000);
  ASSERT_TRUE(requeued.ok()) << requeued.status();
  EXPECT_EQ(*requeued, std::vector<std::string>{id});
  auto second = b->ClaimNext("b", absl::Seconds(30), 3000);
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->attempts(), 2);
  // The stalled replica wakes up: its heartbeat and its commit are refused.
  EXPECT_EQ(a->Heartbeat(id, 1, absl::Seconds(30), &cancel).code(), absl::StatusCode::kAborted);
  auto stale = a->Update(
      id,
      [](v1::Job* j) {
        if (absl::Status st = Fenced(*j, 1); !st.ok()) return st;
        j->set_state(v1::JOB_STATE_SUCCEEDED);
        return absl::OkStatus();
      },
      true);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted);
  auto now = b->Update(
      id,
      [](v1::Job* j) {
        if (absl::Status st = Fenced(*j, 2); !st.ok()) return st;
        j->set_state(v1::JOB_STATE_SUCCEEDED);
        return absl::OkStatus();
      },
      true);
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(a->Get(id)->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(a->Get(id)->attempts(), 2);
}

TEST_F(PostgresJobStoreTest, ExpiredLeasesFailAfterMaxAttempts) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  const std::string id = store->Create(NewJob("x"))->job.job_id();
  for (int attempt = 1; attempt <= JobStore::kMaxAttempts; ++attempt) {
    auto c = store->ClaimNext("r", absl::Milliseconds(50), 1000);
    ASSERT_TRUE(c.ok() && c->has_value());
    EXPECT_EQ((*c)->attempts(), attempt);
    absl::SleepFor(absl::Milliseconds(120));
    // Requeued until the last attempt, which fails instead.
    ASSERT_EQ(store->RequeueExpired(2000)->size(), attempt < JobStore::kMaxAttempts ? 1u : 0u);
  }
  auto job = store->Get(id);
  EXPECT_EQ(job->state(), v1::JOB_STATE_FAILED);
  EXPECT_EQ(job->error().code(), "ABORTED");
  EXPECT_FALSE(store->ClaimNext("r", absl::Seconds(1), 3000)->has_value());
}

TEST_F(PostgresJobStoreTest, CancelRequestReachesTheRunnerAtItsHeartbeat) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a && b);
  const std::string id = a->Create(NewJob("x"))->job.job_id();
  ASSERT_TRUE(a->ClaimNext("a", absl::Seconds(30), 1000)->has_value());
  ASSERT_TRUE(b->RequestCancel(id).ok());
  bool cancel = false;
  ASSERT_TRUE(a->Heartbeat(id, 1, absl::Seconds(30), &cancel).ok());
  EXPECT_TRUE(cancel);
}

// Idempotency keys and dedup keys hold across replicas by constraint:
// concurrent submits of the same key from two stores make one job.
TEST_F(PostgresJobStoreTest, ConcurrentSubmitsAcrossStoresMakeOneJob) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a && b);
  absl::Mutex mu;
  std::set<std::string> by_key, by_dedup;
  int created_key = 0, created_dedup = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    PostgresJobStore* store = t % 2 == 0 ? a.get() : b.get();
    threads.emplace_back([&, store, t] {
      auto k = store->Create(NewJob(absl::StrCat("distinct", t), 0, "same-key"));
      auto d = store->Create(NewJob("same-dedup"));
      ASSERT_TRUE(k.ok() && d.ok()) << k.status() << d.status();
      absl::MutexLock lock(&mu);
      by_key.insert(k->job.job_id());
      by_dedup.insert(d->job.job_id());
      created_key += k->created;
      created_dedup += d->created;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(by_key.size(), 1u);
  EXPECT_EQ(by_dedup.size(), 1u);
  EXPECT_EQ(created_key, 1);
  EXPECT_EQ(created_dedup, 1);
}

// A watcher on one replica sees changes made by another, in order, ending
// with the final state.
TEST_F(PostgresJobStoreTest, SubscriberSeesChangesMadeByAnotherStore) {
  auto writer = Open();
  auto watcher = Open();
  ASSERT_TRUE(writer && watcher);
  const std::string id = writer->Create(NewJob("x"))->job.job_id();
  absl::Mutex mu;
  std::vector<std::pair<v1::JobState, int64_t>> seen;  // state, tensors done
  auto sub = watcher->Subscribe(id, [&](const v1::Job& j) {
    absl::MutexLock lock(&mu);
    seen.emplace_back(j.state(), j.progress().tensors_done());
  });
  ASSERT_TRUE(sub.ok());
  ASSERT_TRUE(writer->ClaimNext("w", absl::Seconds(30), 1000)->has_value());
  for (int i = 1; i <= 20; ++i) {
    ASSERT_TRUE(writer
                    ->Update(
                        id,
                        [i](v1::Job* j) {
                          j->mutable_progress()->set_tensors_done(i);
                          return absl::OkStatus();
                        },
                        /*durable=*/false)
                    .ok());
  }
  ASSERT_TRUE(writer
                  ->Update(
                      id,
                      [](v1::Job* j) {
                        j->set_state(v1::JOB_STATE_SUCCEEDED);
                        return absl::OkStatus();
                      },
                      true)
                  .ok());
  auto final_seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return !seen.empty() && seen.back().first == v1::JOB_STATE_SUCCEEDED;
  };
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&final_seen), absl::Seconds(5)));
    // In order: RUNNING with non-decreasing progress, then SUCCEEDED once.
    for (size_t i = 1; i < seen.size(); ++i) {
      EXPECT_GE(static_cast<int>(seen[i].first), static_cast<int>(seen[i - 1].first));
      if (seen[i].first == seen[i - 1].first) EXPECT_GE(seen[i].second, seen[i - 1].second);
    }
    EXPECT_EQ(seen.back().second, 20);
  }
  watcher->Unsubscribe(sub->first);
}

// An upload is written by one replica at a time; a dead replica's
// reservation expires; one replica per period sweeps.
TEST_F(PostgresJobStoreTest, UploadReservationsAcrossReplicas) {
  auto a = Open();
  auto b = Open();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->ReserveUpload("up-1", "replica-a", absl::Seconds(30)).ok());
  EXPECT_EQ(b->ReserveUpload("up-1", "replica-b", absl::Seconds(30)).code(),
            absl::StatusCode::kAborted);
  EXPECT_TRUE(b->IsUploadReserved("up-1"));
  b->ReleaseUpload("up-1", "replica-b");  // not b's: no effect
  EXPECT_TRUE(b->IsUploadReserved("up-1"));
  a->ReleaseUpload("up-1", "replica-a");
  EXPECT_FALSE(b->IsUploadReserved("up-1"));
  ASSERT_TRUE(b->ReserveUpload("up-1", "replica-b", absl::Milliseconds(300)).ok());
  // Renewed, it holds past its first TTL; not renewed, it expires.
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_TRUE(b->RenewUploadReservations("replica-b", absl::Milliseconds(300)).ok());
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(a->ReserveUpload("up-1", "replica-a", absl::Seconds(30)).code(),
            absl::StatusCode::kAborted);
  absl::SleepFor(absl::Milliseconds(250));
  EXPECT_TRUE(a->ReserveUpload("up-1", "replica-a", absl::Seconds(30)).ok());

  EXPECT_TRUE(a->ClaimUploadSweep(absl::Milliseconds(300)));
  EXPECT_FALSE(b->ClaimUploadSweep(absl::Milliseconds(300)));
  EXPECT_FALSE(a->ClaimUploadSweep(absl::Milliseconds(300)));
  absl::SleepFor(absl::Milliseconds(400));
  EXPECT_TRUE(b->ClaimUploadSweep(absl::Milliseconds(300)));
}

}  // namespace
}  // namespace quantd::server
