#include "quantd/server/crash_record.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "store_files.h"

namespace quantd::server {
namespace {

constexpr int kFaultSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
constexpr size_t kMaxJobIdChars = 96;
constexpr size_t kAltStackBytes = 64 * 1024;

// The installed recorder, for the signal handler (see the header).
std::atomic<CrashRecorder*> g_recorder{nullptr};

// An alternate signal stack for the calling thread, so the handler runs
// even when the fault is a stack overflow. Freed when the thread ends.
class AltStack {
 public:
  AltStack() : memory_(new char[kAltStackBytes]) {
    stack_t st = {};
    st.ss_sp = memory_.get();
    st.ss_size = kAltStackBytes;
    installed_ = sigaltstack(&st, nullptr) == 0;
  }
  ~AltStack() {
    if (!installed_) return;
    stack_t st = {};
    st.ss_flags = SS_DISABLE;
    sigaltstack(&st, nullptr);
  }

 private:
  std::unique_ptr<char[]> memory_;
  bool installed_ = false;
};

// Async-signal-safe writes.
void WriteText(int fd, const char* s) {
  size_t n = strlen(s);
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

void WriteInt(int fd, int v) {
  char buf[16];
  int i = sizeof(buf) - 1;
  buf[i] = '\0';
  unsigned u = v < 0 ? 0u : static_cast<unsigned>(v);
  do {
    buf[--i] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0 && i > 0);
  WriteText(fd, buf + i);
}

}  // namespace

struct CrashRecorder::Slot {
  std::atomic<uint64_t> thread{0};  // owner's pthread_self(); 0: free
  std::atomic<bool> busy{false};
  char job_id[kMaxJobIdChars + 1] = {};
};

CrashRecord ReadCrashRecord(const std::string& path) {
  CrashRecord record;
  auto text = ReadWholeFile(path);
  if (!text.ok()) return record;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (absl::ConsumePrefix(&line, "signal ")) {
      if (!absl::SimpleAtoi(line, &record.signal)) record.signal = 0;
    } else if (absl::ConsumePrefix(&line, "faulting ")) {
      record.faulting_job = std::string(line);
    } else if (absl::ConsumePrefix(&line, "running ")) {
      record.running.emplace_back(line);
    }
  }
  return record;
}

void RemoveCrashRecord(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

bool ApplyRestartPolicy(const CrashRecord& crash, int running_jobs, int64_t now_ms, v1::Job* job) {
  const bool fault = crash.signal != 0;
  const bool named =
      std::find(crash.running.begin(), crash.running.end(), job->job_id()) != crash.running.end();
  const bool attributed = fault && (crash.faulting_job == job->job_id() ||
                                    (crash.faulting_job.empty() && running_jobs == 1 && named));
  const bool give_back = !attributed;
  if (give_back) job->set_attempts(std::max(0, job->attempts() - 1));
  std::string quarantine;
  if (attributed) {
    job->set_crashes(job->crashes() + 1);
    if (job->crashes() >= kMaxCrashes) {
      quarantine = absl::StrCat(
          "quarantined: the server process crashed (signal ", crash.signal, ", ",
          strsignal(crash.signal), ") while running this job, ", job->crashes(),
          " times; it is not run again, and other jobs are not affected. Check the server "
          "logs for this job id: the model or recipe triggers a bug");
    }
  } else if (fault && crash.faulting_job.empty() && named) {
    job->set_run_alone(true);  // one of several suspects: isolate it
  } else if (!fault && running_jobs == 1) {
    job->set_interruptions(job->interruptions() + 1);
    if (job->interruptions() >= kMaxInterruptions) {
      quarantine = absl::StrCat(
          "quarantined: the server stopped with no fault recorded (killed, e.g. by the "
          "kernel's OOM killer) ",
          job->interruptions(),
          " times while this job ran alone; it is not run again. It may need more memory "
          "than the server has");
    }
  }
  if (!quarantine.empty()) {
    job->set_state(v1::JOB_STATE_FAILED);
    job->mutable_error()->set_code("ABORTED");
    job->mutable_error()->set_message(quarantine);
    job->mutable_progress()->set_phase("quarantined");
    job->set_end_time_ms(now_ms);
    return true;
  }
  job->set_state(v1::JOB_STATE_QUEUED);
  job->mutable_progress()->Clear();
  job->mutable_progress()->set_phase("requeued after restart");
  job->set_start_time_ms(0);
  return false;
}

// ---------------------------------------------------------------- CrashRecorder

CrashRecorder::CrashRecorder(const std::string& path, int max_workers)
    : slots_(new Slot[std::max(max_workers, 1)]), max_workers_(std::max(max_workers, 1)) {
  const size_t n = std::min(path.size(), sizeof(path_) - 1);
  memcpy(path_, path.data(), n);
  path_[n] = '\0';
}

absl::StatusOr<std::unique_ptr<CrashRecorder>> CrashRecorder::Install(const std::string& path,
                                                                      int max_workers) {
  if (path.size() >= sizeof(path_)) return absl::InvalidArgumentError("crash record path too long");
  std::unique_ptr<CrashRecorder> recorder(new CrashRecorder(path, max_workers));
  CrashRecorder* expected = nullptr;
  if (!g_recorder.compare_exchange_strong(expected, recorder.get())) {
    return absl::FailedPreconditionError("a crash recorder is already installed");
  }
  for (int signo : kFaultSignals) {
    struct sigaction sa = {};
    sa.sa_handler = &CrashRecorder::OnFault;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_ONSTACK | SA_RESETHAND | SA_NODEFER;
    sigaction(signo, &sa, nullptr);
  }
  return recorder;
}

CrashRecorder::~CrashRecorder() {
  for (int signo : kFaultSignals) signal(signo, SIG_DFL);
  g_recorder.store(nullptr);
}

void CrashRecorder::BeginJob(const std::string& job_id) {
  thread_local AltStack alt_stack;
  const uint64_t self = static_cast<uint64_t>(pthread_self());
  Slot* slot = nullptr;
  for (int i = 0; i < max_workers_ && slot == nullptr; ++i) {
    if (slots_[i].thread.load() == self) slot = &slots_[i];
  }
  for (int i = 0; i < max_workers_ && slot == nullptr; ++i) {
    uint64_t free_slot = 0;
    if (slots_[i].thread.compare_exchange_strong(free_slot, self)) slot = &slots_[i];
  }
  if (slot == nullptr) return;  // more workers than slots: not recorded
  slot->busy.store(false);
  const size_t n = std::min(job_id.size(), kMaxJobIdChars);
  memcpy(slot->job_id, job_id.data(), n);
  slot->job_id[n] = '\0';
  slot->busy.store(true);
}

void CrashRecorder::EndJob() {
  const uint64_t self = static_cast<uint64_t>(pthread_self());
  for (int i = 0; i < max_workers_; ++i) {
    if (slots_[i].thread.load() == self) slots_[i].busy.store(false);
  }
}

void CrashRecorder::OnFault(int signo) {
  CrashRecorder* recorder = g_recorder.load();
  if (recorder != nullptr) recorder->Write(signo);
  // SA_RESETHAND restored the default action: die of the same signal.
  raise(signo);
}

void CrashRecorder::Write(int signo) {
  int fd = ::open(path_, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  WriteText(fd, "signal ");
  WriteInt(fd, signo);
  WriteText(fd, "\n");
  const uint64_t self = static_cast<uint64_t>(pthread_self());
  for (int i = 0; i < max_workers_; ++i) {
    if (slots_[i].busy.load() && slots_[i].thread.load() == self) {
      WriteText(fd, "faulting ");
      WriteText(fd, slots_[i].job_id);
      WriteText(fd, "\n");
    }
  }
  for (int i = 0; i < max_workers_; ++i) {
    if (!slots_[i].busy.load()) continue;
    WriteText(fd, "running ");
    WriteText(fd, slots_[i].job_id);
    WriteText(fd, "\n");
  }
  ::close(fd);
}

}  // namespace quantd::server
