// Crash attribution: which job was running when the server process died,
// and what happens to it on the next start.
//
// CrashRecorder installs handlers for the fault signals (SIGSEGV, SIGBUS,
// SIGFPE, SIGILL, SIGABRT). Worker threads tell it which job they run
// (BeginJob/EndJob; each worker gets an alternate signal stack, so a stack
// overflow is recorded too). On a fault the handler writes a small text
// record to a file in the data directory — the signal, the job of the
// faulting thread (when it is a worker), the jobs running — using only
// async-signal-safe calls, then lets the signal kill the process as before.
// A kill -9 or the OOM killer leave no record.
//
// On the next start, ReadCrashRecord reads (and RemoveCrashRecord removes)
// that record and ApplyRestartPolicy decides, for each job that was
// RUNNING, whether the stop is charged to it (see the function).
//
// Thread safety: BeginJob/EndJob are thread-safe; Install once per process
// (the handlers reach the recorder through one process-wide pointer — a
// signal handler has no other way in — set by Install and cleared by the
// destructor).
#ifndef QUANTD_SERVER_CRASH_RECORD_H_
#define QUANTD_SERVER_CRASH_RECORD_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::server {

// What a previous process left (all empty: no fault recorded).
struct CrashRecord {
  int signal = 0;                    // 0: no record
  std::string faulting_job;          // the job whose worker thread faulted ("" unknown)
  std::vector<std::string> running;  // jobs running at the fault
};

// Reads `path` (NotFound-free: a missing or unreadable file is "no record").
CrashRecord ReadCrashRecord(const std::string& path);
void RemoveCrashRecord(const std::string& path);

// Quarantine thresholds (see v1::Job.crashes / interruptions).
inline constexpr int kMaxCrashes = 2;
inline constexpr int kMaxInterruptions = 5;

// Updates `job`, which was RUNNING when the previous process stopped
// (`running_jobs` jobs were RUNNING then, this one included):
//  - a fault attributed to it (its worker thread faulted, or it was the
//    only job running): crashes + 1, the attempt stays charged; quarantined
//    (FAILED, ABORTED) at kMaxCrashes;
//  - a fault not attributable among several running jobs: the attempt is
//    given back and the job will run alone (run_alone);
//  - another job's fault: the attempt is given back;
//  - no fault recorded (kill, OOM killer, power loss): the attempt is given
//    back; when it ran alone, interruptions + 1, quarantined at
//    kMaxInterruptions.
// A job that is not quarantined goes back to QUEUED. Returns true when it
// was quarantined.
bool ApplyRestartPolicy(const CrashRecord& crash, int running_jobs, int64_t now_ms, v1::Job* job);

class CrashRecorder {
 public:
  // Installs the handlers; `path` is where a fault is recorded. At most
  // `max_workers` threads may call BeginJob. FailedPrecondition if another
  // recorder is installed.
  static absl::StatusOr<std::unique_ptr<CrashRecorder>> Install(const std::string& path,
                                                                int max_workers);
  ~CrashRecorder();  // restores the default handlers
  CrashRecorder(const CrashRecorder&) = delete;
  CrashRecorder& operator=(const CrashRecorder&) = delete;

  // The calling thread runs `job_id` / no job any more.
  void BeginJob(const std::string& job_id);
  void EndJob();

 private:
  struct Slot;
  CrashRecorder(const std::string& path, int max_workers);
  static void OnFault(int signo);
  void Write(int signo);

  char path_[4096] = {};
  std::unique_ptr<Slot[]> slots_;
  const int max_workers_;
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_CRASH_RECORD_H_
