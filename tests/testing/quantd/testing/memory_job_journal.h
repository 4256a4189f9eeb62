// MemoryJobJournal: a server::JobJournal in memory, with a hook to make the
// next Put fail.
//
// Thread safety: thread-safe.
#ifndef QUANTD_TESTING_MEMORY_JOB_JOURNAL_H_
#define QUANTD_TESTING_MEMORY_JOB_JOURNAL_H_

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "quantd/server/job_journal.h"

namespace quantd::testing {

class MemoryJobJournal : public server::JobJournal {
 public:
  absl::Status Put(const v1::Job& job) override {
    absl::MutexLock lock(&mu_);
    if (!next_put_.ok()) {
      absl::Status st = next_put_;
      next_put_ = absl::OkStatus();
      return st;
    }
    jobs_[job.job_id()] = job;
    return absl::OkStatus();
  }

  absl::Status Delete(const std::string& job_id) override {
    absl::MutexLock lock(&mu_);
    jobs_.erase(job_id);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<v1::Job>> LoadAll() override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::Job> jobs;
    for (const auto& [id, job] : jobs_) jobs.push_back(job);
    std::sort(jobs.begin(), jobs.end(),
              [](const v1::Job& a, const v1::Job& b) { return a.sequence() < b.sequence(); });
    return jobs;
  }

  // The next Put fails with `status` (once) and stores nothing.
  void FailNextPut(absl::Status status) {
    absl::MutexLock lock(&mu_);
    next_put_ = std::move(status);
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, v1::Job> jobs_ ABSL_GUARDED_BY(mu_);
  absl::Status next_put_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quantd::testing

#endif  // QUANTD_TESTING_MEMORY_JOB_JOURNAL_H_
