// Interrupter: turns Ctrl-C (SIGINT) and SIGTERM into a call of the current
// handler on a dedicated thread, so handlers may do real work (cancel the job
// on the server, abort a stream) instead of being async-signal-safe.
//
// Install() must run before any other thread starts: it blocks the signals in
// the calling thread, which every later thread inherits, and sigwait()s for
// them on its own thread. A second signal while a handler runs exits the
// process at once with status 130.
//
// Thread safety: SetHandler() may be called from any thread.
#ifndef QUANTD_CLIENT_QUANTCTL_INTERRUPTER_H_
#define QUANTD_CLIENT_QUANTCTL_INTERRUPTER_H_

#include <functional>

namespace quantd::quantctl {

class Interrupter {
 public:
  // Starts the signal thread (detached; lives until exit).
  static void Install();
  // The handler for the next signal; nullptr: exit(130) at once.
  static void SetHandler(std::function<void()> handler);
  // Clears the handler and waits (up to 10 s) for a handler that is still
  // running, so what it references can be destroyed safely.
  static void Quiesce();
};

}  // namespace quantd::quantctl

#endif  // QUANTD_CLIENT_QUANTCTL_INTERRUPTER_H_
