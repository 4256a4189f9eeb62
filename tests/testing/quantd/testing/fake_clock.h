// FakeClock: a server::Clock that moves only when told to.
//
// Thread safety: thread-safe.
#ifndef QUANTD_TESTING_FAKE_CLOCK_H_
#define QUANTD_TESTING_FAKE_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "quantd/server/clock.h"

namespace quantd::testing {

class FakeClock final : public server::Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : ms_(start_ms) {}
  int64_t NowUnixMs() override { return ms_.load(); }
  double NowSteadySeconds() override { return ms_.load() / 1000.0; }
  void AdvanceMs(int64_t ms) { ms_.fetch_add(ms); }

 private:
  std::atomic<int64_t> ms_;
};

}  // namespace quantd::testing

#endif  // QUANTD_TESTING_FAKE_CLOCK_H_
