// ParallelFor: a small fixed pool of threads that runs index-parallel loops.
//
// The pool is created for one conversion (sized by Recipe::threads) and owned
// by its creator; the calling thread takes part in every loop, so
// ParallelFor(1) starts no threads at all. Tasks are handed out dynamically;
// callers that need deterministic output write results by task index.
//
// Thread safety: Run() must be called from one thread at a time (the owner);
// `fn` is called concurrently from all pool threads and must be thread-safe.
#ifndef QUANTD_CORE_GGUF_PARALLEL_FOR_H_
#define QUANTD_CORE_GGUF_PARALLEL_FOR_H_

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"

namespace quantd::core::gguf {

class ParallelFor {
 public:
  // REQUIRES: threads >= 1.
  explicit ParallelFor(int threads);
  ParallelFor(const ParallelFor&) = delete;
  ParallelFor& operator=(const ParallelFor&) = delete;
  ~ParallelFor();

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(task, thread) for every task in [0, n); thread is in
  // [0, threads()). Returns when all calls have returned.
  void Run(int64_t n, absl::FunctionRef<void(int64_t task, int thread)> fn);

 private:
  void WorkerLoop(int thread);
  void Drain(int thread);

  std::vector<std::thread> workers_;  // constant after construction

  absl::Mutex mu_;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  // The current loop; written by Run() before generation_ is bumped.
  std::atomic<int64_t> next_{0};
  int64_t n_ = 0;
  absl::FunctionRef<void(int64_t, int)>* fn_ = nullptr;
};

}  // namespace quantd::core::gguf

#endif  // QUANTD_CORE_GGUF_PARALLEL_FOR_H_
