#include "progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace quantd::quantctl {
namespace {

constexpr int kBarWidth = 24;
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

std::string Bar(double fraction) {
  fraction = std::clamp(fraction, 0.0, 1.0);
  int filled = static_cast<int>(fraction * kBarWidth + 0.5);
  return absl::StrCat("[", std::string(filled, '#'), std::string(kBarWidth - filled, '.'), "]");
}

}  // namespace

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  return absl::StrFormat("%.1f %s", v, units[u]);
}

std::string HumanSeconds(double s) {
  if (s < 0) return "?";
  int64_t t = static_cast<int64_t>(s + 0.5);
  if (t < 60) return absl::StrCat(t, "s");
  if (t < 3600) return absl::StrFormat("%dm%02ds", t / 60, t % 60);
  return absl::StrFormat("%dh%02dm", t / 3600, (t % 3600) / 60);
}

std::string StateName(v1::JobState state) {
  std::string name = v1::JobState_Name(state);
  const std::string prefix = "JOB_STATE_";
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  return name.empty() ? "UNKNOWN" : name;
}

ProgressRenderer::Mode ProgressRenderer::Detect(bool quiet) {
  if (quiet) return Mode::kNone;
  if (const char* forced = std::getenv("QUANTCTL_PROGRESS")) {
    std::string f = forced;
    if (f == "tty") return Mode::kTty;
    if (f == "plain") return Mode::kPlain;
    if (f == "none") return Mode::kNone;
  }
  const char* term = std::getenv("TERM");
  bool dumb = term != nullptr && std::string(term) == "dumb";
  if (::isatty(STDOUT_FILENO) && ::isatty(STDERR_FILENO) && !dumb) return Mode::kTty;
  return Mode::kPlain;
}

ProgressRenderer::ProgressRenderer(Mode mode, FILE* out) : mode_(mode), out_(out) {}

ProgressRenderer::~ProgressRenderer() { Finish(); }

void ProgressRenderer::Draw(const std::string& text, bool force) {
  auto now = Clock::now();
  if (!force && drawn_once_ && now - last_draw_ < kRedrawInterval) return;
  if (text == last_text_ && live_) return;
  last_draw_ = now;
  drawn_once_ = true;
  last_text_ = text;
  // \r: back to column 0; ESC[K: erase to the end of the line.
  std::fprintf(out_, "\r%s\x1b[K", text.c_str());
  std::fflush(out_);
  live_ = true;
}

void ProgressRenderer::Transfer(absl::string_view label, uint64_t done, uint64_t total) {
  if (mode_ == Mode::kNone) return;
  absl::MutexLock lock(&mu_);
  const bool first = label != label_;
  if (first) {
    FinishLocked();
    label_ = std::string(label);
    start_done_ = done;
    start_ = Clock::now();
    drawn_once_ = false;
    if (mode_ == Mode::kPlain) {
      std::string line = absl::StrCat(label, ": ", HumanBytes(total));
      if (done > 0) absl::StrAppend(&line, " (resuming at ", HumanBytes(done), ")");
      std::fprintf(out_, "%s\n", line.c_str());
      std::fflush(out_);
    }
  }
  if (mode_ != Mode::kTty) return;
  double secs = std::chrono::duration<double>(Clock::now() - start_).count();
  double rate = secs > 0 ? static_cast<double>(done - std::min(done, start_done_)) / secs : 0;
  double eta = rate > 0 && total >= done ? static_cast<double>(total - done) / rate : -1;
  double fraction = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  std::string text =
      absl::StrFormat("%-9s %s %3d%%  %s / %s  %s/s  ETA %s", label_, Bar(fraction),
                      static_cast<int>(fraction * 100), HumanBytes(done), HumanBytes(total),
                      HumanBytes(static_cast<uint64_t>(rate)), HumanSeconds(eta));
  Draw(text, first || done == total);
}

void ProgressRenderer::EndTransfer(absl::string_view summary) {
  if (mode_ == Mode::kNone) return;
  absl::MutexLock lock(&mu_);
  if (mode_ == Mode::kTty && live_) {
    // The summary replaces the bar.
    std::fprintf(out_, "\r\x1b[K");
    live_ = false;
    last_text_.clear();
  }
  std::fprintf(out_, "%s\n", std::string(summary).c_str());
  std::fflush(out_);
  label_.clear();
}

void ProgressRenderer::Job(const v1::Job& job) {
  if (mode_ == Mode::kNone) return;
  absl::MutexLock lock(&mu_);
  const v1::JobProgress& p = job.progress();
  const std::string state = StateName(job.state());
  const bool running = job.state() == v1::JOB_STATE_RUNNING;
  const std::string phase = running ? p.phase() : "";
  const std::string key = absl::StrCat(state, "/", phase);
  const std::string label = absl::StrCat("job ", job.job_id());
  if (mode_ == Mode::kPlain) {
    if (key == last_job_key_) return;
    last_job_key_ = key;
    std::string line = absl::StrCat(label, ": ", state);
    if (!phase.empty()) absl::StrAppend(&line, " (", phase, ")");
    if (p.tensors_total() > 0) {
      absl::StrAppend(&line, " ", p.tensors_done(), "/", p.tensors_total(), " tensors");
    }
    if (!job.error().message().empty() && !running) {
      absl::StrAppend(&line, ": ", job.error().code(), ": ", job.error().message());
    }
    std::fprintf(out_, "%s\n", line.c_str());
    std::fflush(out_);
    return;
  }
  // TTY: one live line per phase; a new phase keeps the previous line.
  if (key != last_job_key_ && !last_job_key_.empty()) FinishLocked();
  const bool changed = key != last_job_key_;
  last_job_key_ = key;
  label_ = label;
  double fraction = last_fraction_;  // phases without counts keep the last known value
  if (p.tensors_total() > 0) {
    fraction = static_cast<double>(p.tensors_done()) / static_cast<double>(p.tensors_total());
  } else if (p.bytes_total() > 0) {
    fraction = static_cast<double>(p.bytes_done()) / static_cast<double>(p.bytes_total());
  }
  if (job.state() == v1::JOB_STATE_SUCCEEDED) fraction = 1.0;
  last_fraction_ = fraction;
  std::string text = absl::StrFormat("%-9s %s %3d%%  %-9s %-8s", "job", Bar(fraction),
                                     static_cast<int>(fraction * 100), state, phase);
  if (p.tensors_total() > 0) {
    absl::StrAppend(&text, " ", p.tensors_done(), "/", p.tensors_total(), " tensors");
  }
  if (running && p.eta_seconds() >= 0) {
    absl::StrAppend(&text, "  ETA ", HumanSeconds(p.eta_seconds()));
  }
  const bool final = job.state() == v1::JOB_STATE_SUCCEEDED ||
                     job.state() == v1::JOB_STATE_FAILED || job.state() == v1::JOB_STATE_CANCELLED;
  Draw(text, changed || final);
  if (final) {
    FinishLocked();
    last_fraction_ = 0;
    last_job_key_.clear();
    label_.clear();
  }
}

void ProgressRenderer::Line(absl::string_view text) {
  if (mode_ == Mode::kNone) return;
  absl::MutexLock lock(&mu_);
  if (live_) {
    std::fprintf(out_, "\r\x1b[K");
    live_ = false;
    last_text_.clear();
  }
  std::fprintf(out_, "%s\n", std::string(text).c_str());
  std::fflush(out_);
}

void ProgressRenderer::Finish() {
  absl::MutexLock lock(&mu_);
  FinishLocked();
}

void ProgressRenderer::FinishLocked() {
  if (live_) {
    std::fprintf(out_, "\n");
    std::fflush(out_);
    live_ = false;
  }
  last_text_.clear();
  drawn_once_ = false;
}

}  // namespace quantd::quantctl
