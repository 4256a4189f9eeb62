// Clock: wall time for timestamps and steady time for durations, injected so
// tests can control time.
//
// Thread safety: implementations are safe to call from any thread.
#ifndef QUANTD_SERVER_CLOCK_H_
#define QUANTD_SERVER_CLOCK_H_

#include <atomic>
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

// A clock that moves only when told to (tests).
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : ms_(start_ms) {}
  int64_t NowUnixMs() override { return ms_.load(); }
  double NowSteadySeconds() override { return ms_.load() / 1000.0; }
  void AdvanceMs(int64_t ms) { ms_.fetch_add(ms); }

 private:
  std::atomic<int64_t> ms_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_CLOCK_H_
