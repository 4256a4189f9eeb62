// RunContext: what the caller of a core operation hands down with it — the
// progress callback, the cancellation token and the threads to compute with
// (a ThreadPool and how many of its threads, caller included, one loop may
// use). core::Run passes it to every pass and kernel driver; nothing below
// it creates threads.
//
// A default RunContext reports nothing, cannot be cancelled and runs
// single-threaded inline. Output bytes never depend on the parallelism:
// drivers split work into tasks that write to fixed positions.
//
// With `output_digests` set, every output file is hashed while it is
// written and recorded there (see quantd/core/base/output_digests.h); the
// server asks for it, to store artifacts without reading them back. Off by
// default: hashing costs CPU on the writing thread.
//
// Ownership: nothing is owned; `cancel`, `pool` and `output_digests` must
// outlive every operation the context is passed to (for ONNX, until
// OnnxModel::Save returns, since tensor data is computed while saving).
//
// Thread safety: a RunContext is read-only during an operation and may be
// used from several threads; `progress` is only called from the thread that
// called the operation.
#ifndef QUANTD_CORE_RUN_CONTEXT_H_
#define QUANTD_CORE_RUN_CONTEXT_H_

#include <algorithm>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "quantd/core/base/output_digests.h"
#include "quantd/core/base/thread_pool.h"
#include "quantd/core/progress.h"

namespace quantd::core {

struct RunContext {
  ProgressFn progress;                      // empty: no progress reports
  const CancelToken* cancel = nullptr;      // null: cannot be cancelled
  ThreadPool* pool = nullptr;               // null: single-threaded, inline
  int parallelism = 1;                      // threads per loop, caller included
  OutputDigests* output_digests = nullptr;  // null: output files are not hashed

  // The number of threads a loop may use: 1 without a pool, else
  // parallelism capped by pool->threads() + 1. Per-slot scratch sized by
  // this covers every slot a loop passes to its function.
  int Parallelism() const {
    if (pool == nullptr) return 1;
    return std::clamp(parallelism, 1, pool->threads() + 1);
  }

  bool cancelled() const { return cancel != nullptr && cancel->cancelled(); }
  // OK, or CancelledError when cancelled.
  absl::Status CheckCancelled() const {
    return cancel != nullptr ? cancel->Check() : absl::OkStatus();
  }
  void Report(const Progress& p) const {
    if (progress) progress(p);
  }

  // Calls fn(task, slot) for every task in [0, n), slot in
  // [0, Parallelism()), on at most min(Parallelism(), max_parallelism)
  // threads (the caller included); see ThreadPool::ParallelFor.
  void ParallelFor(int64_t n, absl::FunctionRef<void(int64_t task, int slot)> fn,
                   int max_parallelism = 1 << 30) const {
    const int p = std::min(Parallelism(), max_parallelism);
    if (pool == nullptr || p <= 1) {
      for (int64_t i = 0; i < n; ++i) fn(i, 0);
      return;
    }
    pool->ParallelFor(n, p, fn);
  }
};

}  // namespace quantd::core

#endif  // QUANTD_CORE_RUN_CONTEXT_H_
