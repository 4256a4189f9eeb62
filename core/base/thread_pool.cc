#include "quantd/core/base/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <memory>

namespace quantd::core {

// One ParallelFor call. Shared (shared_ptr) between the caller and the helper
// tasks it schedules, so a helper that starts after the loop is over still
// finds valid state; `fn` may only be touched while the loop is open.
struct ThreadPool::Loop {
  Loop(int64_t n, absl::FunctionRef<void(int64_t, int)>* fn) : n(n), fn(fn) {}

  // Runs tasks until none are left.
  void Work(int slot) {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) (*fn)(i, slot);
  }

  // Body of a helper task: joins the loop unless it is already over.
  void Help() {
    int slot;
    {
      absl::MutexLock lock(&mu);
      if (closed || next.load() >= n) return;
      slot = next_slot++;
      ++active;
    }
    Work(slot);
    absl::MutexLock lock(&mu);
    --active;
  }

  // Called by the owner once it has run out of tasks: no helper may join
  // from now on; waits for the helpers that did join.
  void Close() {
    absl::MutexLock lock(&mu);
    closed = true;
    mu.Await(absl::Condition(
        +[](int* a) { return *a == 0; }, &active));
  }

  const int64_t n;
  absl::FunctionRef<void(int64_t, int)>* const fn;  // valid while !closed
  std::atomic<int64_t> next{0};

  absl::Mutex mu;
  int next_slot ABSL_GUARDED_BY(mu) = 1;  // slot 0 is the caller's
  int active ABSL_GUARDED_BY(mu) = 0;     // helpers inside Work()
  bool closed ABSL_GUARDED_BY(mu) = false;
};

ThreadPool::ThreadPool(int threads) {
  threads_.reserve(static_cast<size_t>(std::max(threads, 0)));
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
  // Only a pool without threads can still hold tasks here.
  std::deque<std::function<void()>> rest;
  {
    absl::MutexLock lock(&mu_);
    rest.swap(queue_);
  }
  for (auto& fn : rest) fn();
}

void ThreadPool::WorkerLoop() {
  for (;;) {
    std::function<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping and drained
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    fn();
  }
}

void ThreadPool::Schedule(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(fn));
}

int ThreadPool::Parallelism(int64_t n, int max_parallelism) const {
  const int64_t p = std::min<int64_t>(
      {static_cast<int64_t>(max_parallelism), static_cast<int64_t>(threads()) + 1, n});
  return static_cast<int>(std::max<int64_t>(p, 1));
}

void ThreadPool::ParallelFor(int64_t n, int max_parallelism,
                             absl::FunctionRef<void(int64_t task, int slot)> fn) {
  const int parallelism = Parallelism(n, max_parallelism);
  if (parallelism <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  auto loop = std::make_shared<Loop>(n, &fn);
  {
    absl::MutexLock lock(&mu_);
    for (int i = 1; i < parallelism; ++i) queue_.push_back([loop] { loop->Help(); });
  }
  loop->Work(0);
  loop->Close();
}

}  // namespace quantd::core
