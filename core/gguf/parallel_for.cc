#include "quantd/core/gguf/parallel_for.h"

namespace quantd::core::gguf {

ParallelFor::ParallelFor(int threads) {
  for (int t = 1; t < threads; ++t) workers_.emplace_back([this, t] { WorkerLoop(t); });
}

ParallelFor::~ParallelFor() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (auto& w : workers_) w.join();
}

void ParallelFor::Drain(int thread) {
  for (int64_t i = next_.fetch_add(1); i < n_; i = next_.fetch_add(1)) (*fn_)(i, thread);
}

void ParallelFor::WorkerLoop(int thread) {
  struct WaitArgs {
    ParallelFor* self;
    uint64_t seen;
  };
  WaitArgs args{this, 0};
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WaitArgs* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return a->self->stop_ || a->self->generation_ != a->seen;
          },
          &args));
      if (stop_) return;
      args.seen = generation_;
    }
    Drain(thread);
    absl::MutexLock lock(&mu_);
    --busy_;
  }
}

void ParallelFor::Run(int64_t n, absl::FunctionRef<void(int64_t task, int thread)> fn) {
  if (workers_.empty() || n <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  fn_ = &fn;
  n_ = n;
  next_.store(0);
  {
    absl::MutexLock lock(&mu_);
    busy_ = static_cast<int>(workers_.size());
    ++generation_;
  }
  Drain(0);
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](int* busy) { return *busy == 0; }, &busy_));
  fn_ = nullptr;
}

}  // namespace quantd::core::gguf
