// Executor: runs closures on a fixed set of threads. The service uses one
// for blocking file work (upload writes, digests, fsync) so gRPC's callback
// threads never block on disk.
//
// Thread safety: Schedule is thread-safe. The destructor runs every closure
// already scheduled, then joins the threads.
#ifndef QUANTD_SERVER_EXECUTOR_H_
#define QUANTD_SERVER_EXECUTOR_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace quantd::server {

class Executor {
 public:
  virtual ~Executor() = default;
  virtual void Schedule(std::function<void()> fn) = 0;
};

class ThreadPoolExecutor final : public Executor {
 public:
  explicit ThreadPoolExecutor(int threads) {
    for (int i = 0; i < (threads < 1 ? 1 : threads); ++i) {
      threads_.emplace_back([this] { Loop(); });
    }
  }
  ~ThreadPoolExecutor() override {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (auto& t : threads_) t.join();
  }
  ThreadPoolExecutor(const ThreadPoolExecutor&) = delete;
  ThreadPoolExecutor& operator=(const ThreadPoolExecutor&) = delete;

  void Schedule(std::function<void()> fn) override {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(fn));
  }

 private:
  void Loop() {
    while (true) {
      std::function<void()> fn;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || !queue_.empty();
        };
        mu_.Await(absl::Condition(&ready));
        if (queue_.empty()) return;  // stopping and drained
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
    }
  }

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_EXECUTOR_H_
