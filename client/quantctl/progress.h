// ProgressRenderer: what quantctl shows while it uploads, watches a job and
// downloads.
//
// Three modes:
//   kTty    live bars redrawn in place on stderr (carriage return + "erase
//           line"), at most ~10 redraws a second: bytes with rate and ETA for
//           transfers, tensors done/total and phase for jobs;
//   kPlain  one plain line per phase change (and one when a phase ends) —
//           never a control character, so CI logs stay clean;
//   kNone   nothing (--quiet, or --json with stderr not a terminal).
//
// Thread safety: thread-safe (a Ctrl-C handler thread may print a Line while
// the command's thread updates a bar).
#ifndef QUANTD_CLIENT_QUANTCTL_PROGRESS_H_
#define QUANTD_CLIENT_QUANTCTL_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::quantctl {

class ProgressRenderer {
 public:
  enum class Mode { kNone, kPlain, kTty };

  // kTty when stdout and stderr are terminals and TERM is not "dumb";
  // kNone when `quiet`; kPlain otherwise. QUANTCTL_PROGRESS=tty|plain|none
  // overrides the detection.
  static Mode Detect(bool quiet);

  // Writes to `out` (not owned; stderr in quantctl).
  ProgressRenderer(Mode mode, FILE* out);
  ~ProgressRenderer();
  ProgressRenderer(const ProgressRenderer&) = delete;
  ProgressRenderer& operator=(const ProgressRenderer&) = delete;

  Mode mode() const { return mode_; }

  // A byte transfer ("upload", "download"): `done` of `total` bytes. The
  // first call for a label starts its bar (bytes already done then, e.g. on
  // resume, do not count towards the rate).
  void Transfer(absl::string_view label, uint64_t done, uint64_t total);
  // Ends the current transfer bar with a summary line.
  void EndTransfer(absl::string_view summary);

  // A job event: state, phase, tensors done/total, ETA.
  void Job(const v1::Job& job);

  // A one-off line (clears a live bar first; the bar redraws on the next
  // update).
  void Line(absl::string_view text);

  // Finishes any live bar (newline) so other output can follow.
  void Finish();

 private:
  using Clock = std::chrono::steady_clock;
  void Draw(const std::string& text, bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Mode mode_;
  FILE* const out_;

  absl::Mutex mu_;
  // Everything below is protected by mu_.

  // The current bar.
  std::string label_;
  uint64_t start_done_ = 0;
  Clock::time_point start_;
  Clock::time_point last_draw_;
  bool live_ = false;  // a bar is on screen without its newline
  bool drawn_once_ = false;
  std::string last_job_key_;  // state/phase of the last job line
  double last_fraction_ = 0;  // the job bar's last known completion
  std::string last_text_;
};

// "12.3 MiB", "512 B".
std::string HumanBytes(uint64_t bytes);
// "1m05s", "12s".
std::string HumanSeconds(double seconds);
// "RUNNING" from JOB_STATE_RUNNING.
std::string StateName(v1::JobState state);

}  // namespace quantd::quantctl

#endif  // QUANTD_CLIENT_QUANTCTL_PROGRESS_H_
