#include "quantd/core/base/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace quantd::core {
namespace {

TEST(ThreadPoolTest, EveryTaskRunsExactlyOnceWithSlotsInRange) {
  ThreadPool pool(3);
  for (int max_parallelism : {1, 2, 4, 8}) {
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      const int parallelism = pool.Parallelism(n, max_parallelism);
      EXPECT_LE(parallelism, std::min<int64_t>({max_parallelism, 4, std::max<int64_t>(n, 1)}));
      std::vector<std::atomic<int>> runs(static_cast<size_t>(n));
      std::vector<std::atomic<bool>> slot_busy(static_cast<size_t>(parallelism));
      std::atomic<int> bad_slots{0}, shared_slots{0};
      pool.ParallelFor(n, max_parallelism, [&](int64_t task, int slot) {
        if (slot < 0 || slot >= parallelism) {
          ++bad_slots;
          return;
        }
        if (slot_busy[slot].exchange(true)) ++shared_slots;  // two threads, one slot
        runs[static_cast<size_t>(task)]++;
        slot_busy[slot] = false;
      });
      EXPECT_EQ(bad_slots.load(), 0) << "n=" << n << " max=" << max_parallelism;
      EXPECT_EQ(shared_slots.load(), 0) << "n=" << n << " max=" << max_parallelism;
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_EQ(runs[static_cast<size_t>(i)].load(), 1) << "task " << i << " n=" << n;
      }
    }
  }
}

TEST(ThreadPoolTest, ParallelismOneRunsInlineInTaskOrder) {
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  std::vector<int64_t> order;
  bool other_thread = false;
  pool.ParallelFor(50, 1, [&](int64_t task, int slot) {
    order.push_back(task);
    other_thread |= std::this_thread::get_id() != caller || slot != 0;
  });
  ASSERT_EQ(order.size(), 50u);
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
  EXPECT_FALSE(other_thread);
}

TEST(ThreadPoolTest, PoolWithoutThreadsRunsLoopsInlineAndTasksAtDestruction) {
  std::atomic<int> scheduled{0};
  {
    ThreadPool pool(0);
    EXPECT_EQ(pool.Parallelism(100, 8), 1);
    const std::thread::id caller = std::this_thread::get_id();
    int on_caller = 0;
    pool.ParallelFor(100, 8, [&](int64_t, int slot) {
      if (std::this_thread::get_id() == caller && slot == 0) ++on_caller;
    });
    EXPECT_EQ(on_caller, 100);
    pool.Schedule([&] { ++scheduled; });
  }
  EXPECT_EQ(scheduled.load(), 1);
}

TEST(ThreadPoolTest, DestructorRunsEveryScheduledTask) {
  std::atomic<int> done{0};
  {
    ThreadPool pool(2);
    for (int i = 0; i < 100; ++i) pool.Schedule([&] { ++done; });
  }
  EXPECT_EQ(done.load(), 100);
}

TEST(ThreadPoolTest, HelpersJoinTheCaller) {
  ThreadPool pool(2);
  // The first three tasks wait until three different threads have arrived:
  // possible only if both pool threads help the caller.
  absl::Mutex mu;
  std::set<std::thread::id> arrived;
  bool all_arrived = false;
  pool.ParallelFor(3, 3, [&](int64_t, int) {
    absl::MutexLock lock(&mu);
    arrived.insert(std::this_thread::get_id());
    auto three = [&] { return arrived.size() >= 3; };
    all_arrived = mu.AwaitWithTimeout(absl::Condition(&three), absl::Seconds(30));
  });
  EXPECT_TRUE(all_arrived);
  EXPECT_EQ(arrived.size(), 3u);
}

TEST(ThreadPoolTest, NeverMoreThreadsThanMaxParallelism) {
  ThreadPool pool(4);
  std::atomic<int> active{0}, peak{0};
  pool.ParallelFor(200, 2, [&](int64_t, int) {
    const int now = ++active;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    absl::SleepFor(absl::Microseconds(200));
    --active;
  });
  EXPECT_GE(peak.load(), 1);
  EXPECT_LE(peak.load(), 2);
}

TEST(ThreadPoolTest, BusyPoolLetsTheCallerFinishAlone) {
  ThreadPool pool(1);
  absl::Notification release, started;
  pool.Schedule([&] {
    started.Notify();
    release.WaitForNotification();  // a long-lived task holds the only thread
  });
  started.WaitForNotification();
  std::atomic<int> runs{0};
  pool.ParallelFor(100, 2, [&](int64_t, int) { ++runs; });  // must not wait for the helper
  EXPECT_EQ(runs.load(), 100);
  release.Notify();
}

// Loops inside loops, and two threads running such loops on one pool at
// once: every task runs once and nothing deadlocks.
TEST(ThreadPoolTest, NestedAndConcurrentLoopsShareOnePool) {
  ThreadPool pool(2);
  constexpr int kOuter = 6, kInner = 40, kRounds = 50;
  auto run = [&pool](std::atomic<int64_t>* total) {
    for (int round = 0; round < kRounds; ++round) {
      pool.ParallelFor(kOuter, 3, [&](int64_t, int) {
        pool.ParallelFor(kInner, 3, [&](int64_t task, int) { *total += task + 1; });
      });
    }
  };
  std::atomic<int64_t> a{0}, b{0};
  std::thread first(run, &a), second(run, &b);
  first.join();
  second.join();
  const int64_t expected = int64_t{kRounds} * kOuter * (kInner * (kInner + 1) / 2);
  EXPECT_EQ(a.load(), expected);
  EXPECT_EQ(b.load(), expected);
}

}  // namespace
}  // namespace quantd::core
