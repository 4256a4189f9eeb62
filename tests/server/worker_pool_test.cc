#include "quantd/server/worker_pool.h"

#include <atomic>
#include <cstdio>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "quantd/testing/fake_clock.h"
#include "quantd/testing/memory_job_journal.h"
#include <prometheus/registry.h>

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
  JobStore store_;
};

TEST_F(WorkerPoolTest, RunsByPriorityThenFifo) {
  absl::Notification release;
  absl::Mutex mu;
  std::vector<std::string> order;
  const std::string first = Submit(0, "first");
  WorkerPool pool(1, &store_,
                  [&](const v1::Job& job, const core::ProgressFn&, const core::CancelToken*)
                      -> absl::StatusOr<JobOutcome> {
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
  WorkerPool pool(1, &store_,
                  [&](const v1::Job&, const core::ProgressFn& progress,
                      const core::CancelToken* cancel) -> absl::StatusOr<JobOutcome> {
                    ++runs;
                    while (!cancel->cancelled()) {
                      progress(core::Progress{"convert", 1, 10, 0, 0});
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
  WorkerPool pool(1, &store_,
                  [&](const v1::Job&, const core::ProgressFn&,
                      const core::CancelToken* cancel) -> absl::StatusOr<JobOutcome> {
                    while (!cancel->cancelled()) absl::SleepFor(absl::Milliseconds(1));
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
  EXPECT_EQ((*journaled)[0].attempts(), 1);
}

TEST_F(WorkerPoolTest, NeverRunsTheSameJobTwice) {
  std::atomic<int> runs{0};
  const std::string id = Submit(0, "a");
  WorkerPool pool(4, &store_,
                  [&](const v1::Job&, const core::ProgressFn&,
                      const core::CancelToken*) -> absl::StatusOr<JobOutcome> {
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

TEST_F(WorkerPoolTest, RunnerErrorMarksJobFailedWithCodeAndMessage) {
  const std::string id = Submit(0, "a");
  WorkerPool pool(1, &store_,
                  [&](const v1::Job&, const core::ProgressFn&,
                      const core::CancelToken*) -> absl::StatusOr<JobOutcome> {
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
