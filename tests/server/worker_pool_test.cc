#include "quantd/server/worker_pool.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <vector>

#include <prometheus/registry.h>
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "quantd/testing/fake_clock.h"
#include "quantd/testing/memory_job_journal.h"

namespace quantd::server {
namespace {

using testing::FakeClock;
using testing::MemoryJobJournal;

class WorkerPoolTest : public ::testing::Test {
 protected:
  WorkerPoolTest() : logger_(devnull_), store_(&journal_, &clock_) {}
  ~WorkerPoolTest() override { std::fclose(devnull_); }

  std::string Submit(int priority, const std::string& dedup) {
    v1::Job j;
    j.set_priority(priority);
    j.set_dedup_key(dedup);
    auto created = store_.Create(j);
    EXPECT_TRUE(created.ok());
    return created->job.job_id();
  }

  // A job whose recipe asks for `threads` (0: no hint).
  std::string SubmitWithThreads(const std::string& dedup, int threads) {
    v1::Job j;
    j.set_dedup_key(dedup);
    if (threads > 0) j.mutable_recipe()->set_threads(threads);
    auto created = store_.Create(j);
    EXPECT_TRUE(created.ok());
    return created->job.job_id();
  }

  bool WaitFor(const std::string& id, v1::JobState state) {
    for (int i = 0; i < 2000; ++i) {
      auto j = store_.Get(id);
      if (j.ok() && j->state() == state) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

  FILE* devnull_ = std::fopen("/dev/null", "w");
  Logger logger_;
  prometheus::Registry registry_;
  Metrics metrics_{&registry_, 2, "test"};
  MemoryJobJournal journal_;
  FakeClock clock_;
  EmbeddedJobStore store_;
};

TEST_F(WorkerPoolTest, RunsByPriorityThenFifo) {
  absl::Notification release;
  absl::Mutex mu;
  std::vector<std::string> order;
  const std::string first = Submit(0, "first");
  WorkerPool pool(
      1, 1, &store_,
      [&](const v1::Job& job, const core::RunContext&) -> absl::StatusOr<JobOutcome> {
        if (job.job_id() == first) release.WaitForNotification();
        absl::MutexLock lock(&mu);
        order.push_back(job.job_id());
        return JobOutcome{};
      },
      &clock_, &logger_, &metrics_);
  pool.Start();
  ASSERT_TRUE(WaitFor(first, v1::JOB_STATE_RUNNING));
  const std::string low1 = Submit(0, "low1");
  const std::string low2 = Submit(0, "low2");
  const std::string high = Submit(5, "high");
  for (const auto& id : {low1, low2, high}) pool.Enqueue(*store_.Get(id));
  release.Notify();
  ASSERT_TRUE(WaitFor(low2, v1::JOB_STATE_SUCCEEDED));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(order, (std::vector<std::string>{first, high, low1, low2}));
}

TEST_F(WorkerPoolTest, CancelReachesRunningJobAndRemovesQueuedJob) {
  std::atomic<int> runs{0};
  const std::string running = Submit(0, "a");
  const std::string queued = Submit(0, "b");
  WorkerPool pool(
      1, 1, &store_,
      [&](const v1::Job&, const core::RunContext& ctx) -> absl::StatusOr<JobOutcome> {
        ++runs;
        while (!ctx.cancelled()) {
          ctx.Report(core::Progress{"convert", 1, 10, 0, 0});
          absl::SleepFor(absl::Milliseconds(1));
        }
        return absl::CancelledError("cancelled");
      },
      &clock_, &logger_, &metrics_);
  pool.Start();
  ASSERT_TRUE(WaitFor(running, v1::JOB_STATE_RUNNING));
  auto q = pool.Cancel(queued);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state(), v1::JOB_STATE_CANCELLED);
  ASSERT_TRUE(pool.Cancel(running).ok());
  ASSERT_TRUE(WaitFor(running, v1::JOB_STATE_CANCELLED));
  EXPECT_EQ(store_.Get(running)->error().message(), "cancelled by request while running");
  pool.Shutdown(absl::Seconds(1));
  EXPECT_EQ(runs.load(), 1);
}

TEST_F(WorkerPoolTest, ShutdownRequeuesJobsThatDoNotFinishInTime) {
  const std::string id = Submit(0, "a");
  WorkerPool pool(
      1, 1, &store_,
      [&](const v1::Job&, const core::RunContext& ctx) -> absl::StatusOr<JobOutcome> {
        while (!ctx.cancelled()) absl::SleepFor(absl::Milliseconds(1));
        return absl::CancelledError("cancelled");
      },
      &clock_, &logger_, &metrics_);
  pool.Start();
  ASSERT_TRUE(WaitFor(id, v1::JOB_STATE_RUNNING));
  pool.Shutdown(absl::Milliseconds(50));
  EXPECT_EQ(store_.Get(id)->state(), v1::JOB_STATE_QUEUED);
  auto journaled = journal_.LoadAll();
  ASSERT_TRUE(journaled.ok());
  EXPECT_EQ((*journaled)[0].state(), v1::JOB_STATE_QUEUED);
  // The drain ended the run, not the job: the attempt is given back.
  EXPECT_EQ((*journaled)[0].attempts(), 0);
}

TEST_F(WorkerPoolTest, ARunAloneJobRunsWithNoOtherJobBesideIt) {
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Submit(0, "alone" + std::to_string(i)));
  ASSERT_TRUE(store_
                  .Update(
                      ids[1],
                      [](v1::Job* j) {
                        j->set_run_alone(true);
                        return absl::OkStatus();
                      },
                      true)
                  .ok());
  std::atomic<int> now{0};
  std::atomic<int> beside_alone{0};
  std::atomic<bool> alone_running{false};
  WorkerPool pool(
      3, 3, &store_,
      [&](const v1::Job& job, const core::RunContext&) -> absl::StatusOr<JobOutcome> {
        const int n = ++now;
        if (job.run_alone()) {
          alone_running = true;
          if (n != 1) ++beside_alone;
        } else if (alone_running) {
          ++beside_alone;
        }
        absl::SleepFor(absl::Milliseconds(30));
        if (job.run_alone()) alone_running = false;
        --now;
        return JobOutcome{};
      },
      &clock_, &logger_, &metrics_);
  pool.Start();
  for (const auto& id : ids) ASSERT_TRUE(WaitFor(id, v1::JOB_STATE_SUCCEEDED));
  pool.Shutdown(absl::Seconds(1));
  EXPECT_EQ(beside_alone.load(), 0);
}

TEST_F(WorkerPoolTest, NeverRunsTheSameJobTwice) {
  std::atomic<int> runs{0};
  const std::string id = Submit(0, "a");
  WorkerPool pool(
      4, 4, &store_,
      [&](const v1::Job&, const core::RunContext&) -> absl::StatusOr<JobOutcome> {
        ++runs;
        absl::SleepFor(absl::Milliseconds(20));
        return JobOutcome{};
      },
      &clock_, &logger_, &metrics_);
  pool.Enqueue(*store_.Get(id));
  pool.Enqueue(*store_.Get(id));
  pool.Start();  // also enqueues every QUEUED job of the store
  pool.Enqueue(*store_.Get(id));
  ASSERT_TRUE(WaitFor(id, v1::JOB_STATE_SUCCEEDED));
  pool.Enqueue(*store_.Get(id));  // finished: not queued again
  pool.Shutdown(absl::Seconds(1));
  EXPECT_EQ(runs.load(), 1);
}

// Records what a job was handed, waits until `expected` jobs run at once,
// then computes with the job's RunContext while counting the threads that
// compute across all jobs.
class BudgetRecorder {
 public:
  explicit BudgetRecorder(int expected) : expected_(expected) {}

  absl::StatusOr<JobOutcome> Run(const core::RunContext& ctx) {
    {
      absl::MutexLock lock(&mu_);
      parallelism_.push_back(ctx.Parallelism());
      granted_now_ += ctx.Parallelism();
      peak_granted_ = std::max(peak_granted_, granted_now_);
      auto all_here = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return static_cast<int>(parallelism_.size()) >= expected_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&all_here), absl::Seconds(30));
    }
    ctx.ParallelFor(64, [&](int64_t, int) {
      const int now = ++computing_;
      int seen = peak_computing_.load();
      while (now > seen && !peak_computing_.compare_exchange_weak(seen, now)) {
      }
      absl::SleepFor(absl::Microseconds(300));
      --computing_;
    });
    absl::MutexLock lock(&mu_);
    granted_now_ -= ctx.Parallelism();
    return JobOutcome{};
  }

  std::vector<int> parallelism() {
    absl::MutexLock lock(&mu_);
    return parallelism_;
  }
  int peak_granted() {
    absl::MutexLock lock(&mu_);
    return peak_granted_;
  }
  int peak_computing() const { return peak_computing_.load(); }

 private:
  const int expected_;
  absl::Mutex mu_;
  std::vector<int> parallelism_ ABSL_GUARDED_BY(mu_);
  int granted_now_ ABSL_GUARDED_BY(mu_) = 0;
  int peak_granted_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<int> computing_{0}, peak_computing_{0};
};

TEST_F(WorkerPoolTest, RunningJobsShareOneThreadBudget) {
  constexpr int kBudget = 4;
  // Both jobs ask for the whole budget; together they must not get more.
  const std::string a = SubmitWithThreads("a", kBudget);
  const std::string b = SubmitWithThreads("b", kBudget);
  BudgetRecorder recorder(2);
  WorkerPool pool(
      2, kBudget, &store_,
      [&](const v1::Job&, const core::RunContext& ctx) { return recorder.Run(ctx); }, &clock_,
      &logger_, &metrics_);
  pool.Start();
  ASSERT_TRUE(WaitFor(a, v1::JOB_STATE_SUCCEEDED));
  ASSERT_TRUE(WaitFor(b, v1::JOB_STATE_SUCCEEDED));
  const std::vector<int> given = recorder.parallelism();
  ASSERT_EQ(given.size(), 2u);
  EXPECT_GE(given[0], 1);
  EXPECT_GE(given[1], 1);
  EXPECT_EQ(given[0] + given[1], kBudget);  // both ran at once: the whole budget, no more
  EXPECT_LE(recorder.peak_granted(), kBudget);
  EXPECT_LE(recorder.peak_computing(), kBudget);
}

TEST_F(WorkerPoolTest, JobsWithoutAHintGetAFairShare) {
  const std::string a = SubmitWithThreads("a", 0);
  const std::string b = SubmitWithThreads("b", 0);
  BudgetRecorder recorder(2);
  WorkerPool pool(
      2, 5, &store_, [&](const v1::Job&, const core::RunContext& ctx) { return recorder.Run(ctx); },
      &clock_, &logger_, &metrics_);
  pool.Start();
  ASSERT_TRUE(WaitFor(a, v1::JOB_STATE_SUCCEEDED));
  ASSERT_TRUE(WaitFor(b, v1::JOB_STATE_SUCCEEDED));
  EXPECT_EQ(recorder.parallelism(), (std::vector<int>{2, 2}));  // 5 / 2 each
  EXPECT_LE(recorder.peak_computing(), 5);
}

TEST_F(WorkerPoolTest, NoMoreJobsRunAtOnceThanTheBudget) {
  std::vector<std::string> ids;
  for (const char* key : {"a", "b", "c"}) ids.push_back(SubmitWithThreads(key, 1));
  std::atomic<int> running{0}, peak{0};
  WorkerPool pool(
      3, 2, &store_,
      [&](const v1::Job&, const core::RunContext& ctx) -> absl::StatusOr<JobOutcome> {
        EXPECT_EQ(ctx.Parallelism(), 1);
        const int now = ++running;
        int seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        absl::SleepFor(absl::Milliseconds(50));
        --running;
        return JobOutcome{};
      },
      &clock_, &logger_, &metrics_);
  EXPECT_EQ(pool.workers(), 2);
  pool.Start();
  for (const auto& id : ids) ASSERT_TRUE(WaitFor(id, v1::JOB_STATE_SUCCEEDED));
  EXPECT_LE(peak.load(), 2);
}

TEST_F(WorkerPoolTest, RunnerErrorMarksJobFailedWithCodeAndMessage) {
  const std::string id = Submit(0, "a");
  WorkerPool pool(
      1, 1, &store_,
      [&](const v1::Job&, const core::RunContext&) -> absl::StatusOr<JobOutcome> {
        return absl::InvalidArgumentError("model.onnx: not a valid ONNX model");
      },
      &clock_, &logger_, &metrics_);
  pool.Start();
  ASSERT_TRUE(WaitFor(id, v1::JOB_STATE_FAILED));
  auto job = store_.Get(id);
  EXPECT_EQ(job->error().code(), "INVALID_ARGUMENT");
  EXPECT_EQ(job->error().message(), "model.onnx: not a valid ONNX model");
}

}  // namespace
}  // namespace quantd::server
