// ThreadPool: a fixed set of threads, the only place in core/ and server/
// that starts compute or worker threads. Whoever owns a pool hands it down
// (core::RunContext carries it into every pass and kernel driver); code below
// the owner never creates threads of its own.
//
// Two ways to use it:
//  - Schedule(fn): runs fn once on some pool thread, FIFO. Meant for
//    long-lived tasks (a worker loop, an I/O closure); a task that never
//    returns keeps its thread for good.
//  - ParallelFor(n, max_parallelism, fn): an index-parallel loop. The calling
//    thread takes part; at most max_parallelism - 1 pool threads help it.
//    Tasks are handed out dynamically (next free index), so which thread runs
//    which task varies from run to run: callers that need deterministic
//    output write results by task index, never by slot or by arrival order.
//
// Progress guarantee: ParallelFor never waits for a helper that has not
// started; if every pool thread is busy (long-lived Schedule tasks, other
// loops), the caller runs all tasks itself. So loops may be nested (fn may
// call ParallelFor on the same pool) and several threads may run loops on
// one pool at once without deadlock. A helper that starts after its loop is
// over does nothing.
//
// Ownership: the pool owns its threads. The destructor runs every task
// already scheduled (including long-lived ones, which must therefore be told
// to return first), then joins the threads.
//
// Thread safety: Schedule and ParallelFor may be called from any thread,
// including pool threads, concurrently. `fn` of a loop is called
// concurrently from up to `parallelism` threads and must be thread-safe for
// distinct tasks; two calls never share a slot at the same time.
#ifndef QUANTD_CORE_BASE_THREAD_POOL_H_
#define QUANTD_CORE_BASE_THREAD_POOL_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"

namespace quantd::core {

class ThreadPool {
 public:
  // Starts `threads` threads. REQUIRES: threads >= 0. With 0 threads every
  // ParallelFor runs inline on the caller and scheduled tasks wait for the
  // destructor, which runs them on the destroying thread.
  explicit ThreadPool(int threads);
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();

  // Number of pool threads (the callers of ParallelFor are not counted).
  int threads() const { return static_cast<int>(threads_.size()); }

  // The number of threads, caller included, that ParallelFor(n,
  // max_parallelism, ...) may use: min(max_parallelism, threads() + 1, n),
  // at least 1. Slots passed to fn are in [0, this).
  int Parallelism(int64_t n, int max_parallelism) const;

  // Queues `fn` to run once on a pool thread (FIFO).
  void Schedule(std::function<void()> fn);

  // Calls fn(task, slot) exactly once for every task in [0, n) and returns
  // when all calls have returned. The caller runs tasks too (slot 0); up to
  // Parallelism(n, max_parallelism) - 1 pool threads help (slots 1..). With
  // a parallelism of 1 every call runs inline on the caller, in task order.
  // REQUIRES: n >= 0.
  void ParallelFor(int64_t n, int max_parallelism,
                   absl::FunctionRef<void(int64_t task, int slot)> fn);

 private:
  struct Loop;

  void WorkerLoop();

  std::vector<std::thread> threads_;  // constant after construction

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_THREAD_POOL_H_
