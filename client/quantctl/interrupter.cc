#include "interrupter.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace quantd::quantctl {
namespace {

struct State {
  absl::Mutex mu;
  std::function<void()> handler ABSL_GUARDED_BY(mu);
  int running ABSL_GUARDED_BY(mu) = 0;  // handlers in progress
  std::atomic<bool> handling{false};
};

State& GetState() {
  static State* const state = new State;  // never destroyed: the thread outlives main
  return *state;
}

}  // namespace

void Interrupter::Install() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    for (;;) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      State& s = GetState();
      if (s.handling.exchange(true)) {
        static const char kMsg[] = "\nquantctl: interrupted again; exiting\n";
        (void)!::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
        ::_exit(130);
      }
      std::function<void()> handler;
      {
        absl::MutexLock lock(&s.mu);
        handler = s.handler;
        if (handler) ++s.running;
      }
      if (!handler) {
        static const char kMsg[] = "\nquantctl: interrupted\n";
        (void)!::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
        ::_exit(130);
      }
      // Runs on its own thread so a second signal is still seen while the
      // handler waits on the network.
      std::thread([handler, &s] {
        handler();
        absl::MutexLock lock(&s.mu);
        --s.running;
      }).detach();
    }
  }).detach();
}

void Interrupter::SetHandler(std::function<void()> handler) {
  State& s = GetState();
  absl::MutexLock lock(&s.mu);
  s.handler = std::move(handler);
}

void Interrupter::Quiesce() {
  State& s = GetState();
  absl::MutexLock lock(&s.mu);
  s.handler = nullptr;
  s.mu.AwaitWithTimeout(absl::Condition(
                            +[](int* running) { return *running == 0; }, &s.running),
                        absl::Seconds(10));
}

}  // namespace quantd::quantctl
