// InlineExecutor: a server::Executor that runs each closure at once, on the
// thread that schedules it.
//
// Thread safety: thread-safe (stateless).
#ifndef QUANTD_TESTING_INLINE_EXECUTOR_H_
#define QUANTD_TESTING_INLINE_EXECUTOR_H_

#include <functional>

#include "quantd/server/executor.h"

namespace quantd::testing {

class InlineExecutor final : public server::Executor {
 public:
  void Schedule(std::function<void()> fn) override { fn(); }
};

}  // namespace quantd::testing

#endif  // QUANTD_TESTING_INLINE_EXECUTOR_H_
