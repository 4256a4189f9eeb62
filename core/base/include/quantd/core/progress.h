// Progress reporting and cancellation shared by every core operation.
//
// The core calls a ProgressFn from the thread that runs the operation; the
// callback must be cheap and must not call back into the operation. A
// CancelToken may be cancelled from any thread; operations poll it between
// tensors and return absl::CancelledError.
#ifndef QUANTD_CORE_PROGRESS_H_
#define QUANTD_CORE_PROGRESS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"

namespace quantd::core {

struct Progress {
  std::string phase;  // "load", "convert", "write", ...
  uint64_t tensors_done = 0;
  uint64_t tensors_total = 0;
  uint64_t bytes_done = 0;   // output bytes written so far
  uint64_t bytes_total = 0;  // estimate of output bytes (0 if unknown)
};

using ProgressFn = std::function<void(const Progress&)>;

class CancelToken {
 public:
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }
  // OK, or CancelledError when cancelled.
  absl::Status Check() const {
    return cancelled() ? absl::CancelledError("cancelled") : absl::OkStatus();
  }

 private:
  std::atomic<bool> cancelled_{false};
};

}  // namespace quantd::core

#endif  // QUANTD_CORE_PROGRESS_H_
