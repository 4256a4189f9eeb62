// Clock: wall time for timestamps and steady time for durations, injected so
// tests can control time (tests/testing has a FakeClock).
//
// Thread safety: implementations are safe to call from any thread.
#ifndef QUANTD_SERVER_CLOCK_H_
#define QUANTD_SERVER_CLOCK_H_

#include <chrono>
#include <cstdint>

namespace quantd::server {

class Clock {
 public:
  virtual ~Clock() = default;
  // Unix time in milliseconds.
  virtual int64_t NowUnixMs() = 0;
  // Monotonic seconds since an arbitrary origin.
  virtual double NowSteadySeconds() = 0;
};

// The real clock. Stateless; one shared instance is fine.
class SystemClock final : public Clock {
 public:
  int64_t NowUnixMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  double NowSteadySeconds() override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_CLOCK_H_
