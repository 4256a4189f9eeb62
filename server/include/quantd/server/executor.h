// Executor: runs closures on a fixed set of threads (a core::ThreadPool).
// The service uses one for blocking file work (upload writes, digests, fsync)
// so gRPC's callback threads never block on disk. These threads wait on I/O;
// they are not part of the compute budget (see worker_pool.h).
//
// Thread safety: Schedule is thread-safe. The destructor runs every closure
// already scheduled, then joins the threads.
#ifndef QUANTD_SERVER_EXECUTOR_H_
#define QUANTD_SERVER_EXECUTOR_H_

#include <functional>
#include <utility>

#include "quantd/core/base/thread_pool.h"

namespace quantd::server {

class Executor {
 public:
  virtual ~Executor() = default;
  virtual void Schedule(std::function<void()> fn) = 0;
};

class ThreadPoolExecutor final : public Executor {
 public:
  // REQUIRES: threads >= 1 (smaller values start one thread).
  explicit ThreadPoolExecutor(int threads) : pool_(threads < 1 ? 1 : threads) {}
  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;

  void Schedule(std::function<void()> fn) override { pool_.Schedule(std::move(fn)); }

 private:
  core::ThreadPool pool_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_EXECUTOR_H_
