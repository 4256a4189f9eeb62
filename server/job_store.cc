#include "quantd/server/job_store.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "quantd/core/base/quoted.h"
#include "quantd/server/ids.h"

namespace quantd::server {

bool IsFinalState(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

// Journal writes and the lock (the pattern of leveldb's DBImpl::Write).
//
// A journal write is an fsync (SQLite, synchronous=FULL): milliseconds to
// seconds on a busy disk. Holding mu_ across it would stall every GetJob,
// ListJobs and WatchJob on gRPC's callback threads. So a writer
//   1. takes a WriterTurn: a ticket, served in order, one writer at a time;
//   2. under mu_, checks and computes the new record from the current state;
//   3. releases mu_ and writes the journal;
//   4. re-takes mu_ and, if the write succeeded, publishes the record.
// Why this is safe:
//  - Only the writer being served changes jobs_ (and the key indexes) or
//    writes the journal, so the state a writer computed from in step 2 is
//    still current in step 4, and the journal receives records in the same
//    order as memory does.
//  - Readers that run during step 3 see the previous record, which is still
//    the newest durable one: a change is published only after the journal
//    made it durable, so nobody observes a state a crash could undo.
//  - Iterators into jobs_ stay valid across step 3: std::map insertions do
//    not invalidate them, and only the served writer erases.
class EmbeddedJobStore::WriterTurn {
 public:
  // REQUIRES: store->mu_ held; it stays held except while waiting.
  explicit WriterTurn(EmbeddedJobStore* store) ABSL_EXCLUSIVE_LOCKS_REQUIRED(store->mu_)
      : store_(store), ticket_(store->next_writer_ticket_++) {
    auto my_turn = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(store_->mu_) {
      return store_->serving_writer_ticket_ == ticket_;
    };
    store_->mu_.Await(absl::Condition(&my_turn));
  }
  // REQUIRES: store->mu_ held (destroy before the MutexLock).
  ~WriterTurn() { ++store_->serving_writer_ticket_; }
  WriterTurn(const WriterTurn&) = delete;
  WriterTurn& operator=(const WriterTurn&) = delete;

  // Runs `write` with the store's lock released (step 3 above).
  absl::Status WriteUnlocked(const std::function<absl::Status()>& write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(store_->mu_) {
    store_->mu_.Unlock();
    absl::Status st = write();
    store_->mu_.Lock();
    return st;
  }

 private:
  EmbeddedJobStore* const store_;
  const uint64_t ticket_;
};

EmbeddedJobStore::EmbeddedJobStore(JobJournal* journal, Clock* clock)
    : journal_(journal), clock_(clock) {}

absl::Status EmbeddedJobStore::Recover(const CrashRecord& crash, std::vector<std::string>* requeued,
                                       std::vector<std::string>* quarantined) {
  auto loaded = journal_->LoadAll();
  if (!loaded.ok()) return loaded.status();
  absl::MutexLock lock(&mu_);
  WriterTurn turn(this);  // before serving starts: journals with the lock held
  const int running =
      static_cast<int>(std::count_if(loaded->begin(), loaded->end(), [](const v1::Job& j) {
        return j.state() == v1::JOB_STATE_RUNNING;
      }));
  for (v1::Job& job : *loaded) {
    if (job.state() == v1::JOB_STATE_RUNNING) {
      if (ApplyRestartPolicy(crash, running, clock_->NowUnixMs(), &job)) {
        if (quarantined != nullptr) quarantined->push_back(job.job_id());
      } else {
        requeued->push_back(job.job_id());
      }
      absl::Status st = journal_->Put(job);
      if (!st.ok()) return st;
    }
    next_sequence_ = std::max<uint64_t>(next_sequence_, job.sequence() + 1);
    if (!job.idempotency_key().empty()) by_idempotency_key_[job.idempotency_key()] = job.job_id();
    if (!job.dedup_key().empty() && job.state() != v1::JOB_STATE_FAILED &&
        job.state() != v1::JOB_STATE_CANCELLED) {
      by_dedup_key_[job.dedup_key()] = job.job_id();
    }
    jobs_[job.job_id()] = std::move(job);
  }
  return absl::OkStatus();
}

absl::StatusOr<EmbeddedJobStore::CreateResult> EmbeddedJobStore::Create(v1::Job job) {
  absl::MutexLock lock(&mu_);
  WriterTurn turn(this);
  if (!job.idempotency_key().empty()) {
    auto it = by_idempotency_key_.find(job.idempotency_key());
    if (it != by_idempotency_key_.end()) {
      auto j = jobs_.find(it->second);
      if (j != jobs_.end()) return CreateResult{j->second, false};
    }
  }
  if (!job.dedup_key().empty()) {
    auto it = by_dedup_key_.find(job.dedup_key());
    if (it != by_dedup_key_.end()) {
      auto j = jobs_.find(it->second);
      if (j != jobs_.end() && j->second.state() != v1::JOB_STATE_FAILED &&
          j->second.state() != v1::JOB_STATE_CANCELLED) {
        return CreateResult{j->second, false};
      }
    }
  }
  std::string id;
  do {
    id = NewJobId();
  } while (jobs_.count(id) != 0);
  job.set_job_id(id);
  job.set_sequence(next_sequence_);
  job.set_state(v1::JOB_STATE_QUEUED);
  job.mutable_progress()->set_phase("queued");
  job.mutable_progress()->set_eta_seconds(-1);
  job.set_create_time_ms(clock_->NowUnixMs());
  absl::Status st = turn.WriteUnlocked([&] { return journal_->Put(job); });
  if (!st.ok()) return st;
  ++next_sequence_;
  if (!job.idempotency_key().empty()) by_idempotency_key_[job.idempotency_key()] = id;
  if (!job.dedup_key().empty()) by_dedup_key_[job.dedup_key()] = id;
  jobs_[id] = job;
  return CreateResult{std::move(job), true};
}

absl::StatusOr<v1::Job> EmbeddedJobStore::Get(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end())
    return absl::NotFoundError(absl::StrCat("job ", core::Quoted(job_id), " not found"));
  return it->second;
}

absl::StatusOr<v1::Job> EmbeddedJobStore::Update(
    const std::string& job_id, const std::function<absl::Status(v1::Job*)>& mutate, bool durable) {
  absl::MutexLock lock(&mu_);
  WriterTurn turn(this);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end())
    return absl::NotFoundError(absl::StrCat("job ", core::Quoted(job_id), " not found"));
  v1::Job next = it->second;
  absl::Status st = mutate(&next);
  if (!st.ok()) return st;
  if (durable) {
    st = turn.WriteUnlocked([&] { return journal_->Put(next); });
    if (!st.ok()) return st;
  }
  if (next.state() == v1::JOB_STATE_FAILED || next.state() == v1::JOB_STATE_CANCELLED) {
    auto d = by_dedup_key_.find(next.dedup_key());
    if (d != by_dedup_key_.end() && d->second == job_id) by_dedup_key_.erase(d);
  }
  it->second = std::move(next);
  Notify(it->second);
  return it->second;
}

absl::Status EmbeddedJobStore::Delete(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  WriterTurn turn(this);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end())
    return absl::NotFoundError(absl::StrCat("job ", core::Quoted(job_id), " not found"));
  if (!IsFinalState(it->second.state())) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " is ", v1::JobState_Name(it->second.state()),
                     "; cancel it (CancelJob) and wait for it to end before deleting"));
  }
  absl::Status st = turn.WriteUnlocked([&] { return journal_->Delete(job_id); });
  if (!st.ok()) return st;
  auto d = by_dedup_key_.find(it->second.dedup_key());
  if (d != by_dedup_key_.end() && d->second == job_id) by_dedup_key_.erase(d);
  auto k = by_idempotency_key_.find(it->second.idempotency_key());
  if (k != by_idempotency_key_.end() && k->second == job_id) by_idempotency_key_.erase(k);
  jobs_.erase(it);
  return absl::OkStatus();
}

absl::Status ParseListRequest(const v1::ListJobsRequest& request, uint64_t* before,
                              int* page_size) {
  *before = UINT64_MAX;
  if (!request.page_token().empty()) {
    if (!absl::StartsWith(request.page_token(), "s") ||
        !absl::SimpleAtoi(request.page_token().substr(1), before)) {
      return absl::InvalidArgumentError(
          "page_token is not one this server returned; start again without it");
    }
  }
  if (request.page_size() < 0) return absl::InvalidArgumentError("page_size must be >= 0");
  for (int state : request.states()) {
    if (!v1::JobState_IsValid(state)) {
      return absl::InvalidArgumentError(absl::StrCat("states: unknown job state ", state));
    }
  }
  *page_size = request.page_size() == 0 ? 100 : std::min(request.page_size(), 1000);
  return absl::OkStatus();
}

bool MatchesListFilter(const v1::ListJobsRequest& request, uint64_t before, const v1::Job& job) {
  if (job.sequence() >= before) return false;
  if (!request.model_id().empty() && job.model_id() != request.model_id()) return false;
  if (request.states_size() > 0 && std::find(request.states().begin(), request.states().end(),
                                             job.state()) == request.states().end()) {
    return false;
  }
  for (const auto& [k, v] : request.labels()) {
    auto l = job.labels().find(k);
    if (l == job.labels().end() || l->second != v) return false;
  }
  return true;
}

absl::StatusOr<v1::ListJobsResponse> EmbeddedJobStore::List(const v1::ListJobsRequest& request) {
  uint64_t before = 0;
  int page_size = 0;
  if (absl::Status st = ParseListRequest(request, &before, &page_size); !st.ok()) return st;
  std::vector<const v1::Job*> matched;
  v1::ListJobsResponse response;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, job] : jobs_) {
    if (MatchesListFilter(request, before, job)) matched.push_back(&job);
  }
  std::sort(matched.begin(), matched.end(),
            [](const v1::Job* a, const v1::Job* b) { return a->sequence() > b->sequence(); });
  for (size_t i = 0; i < matched.size() && static_cast<int>(i) < page_size; ++i) {
    *response.add_jobs() = *matched[i];
  }
  if (static_cast<int>(matched.size()) > page_size) {
    response.set_next_page_token(absl::StrCat("s", matched[page_size - 1]->sequence()));
  }
  return response;
}

std::vector<v1::Job> EmbeddedJobStore::Queued() {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Job> out;
  for (const auto& [id, job] : jobs_) {
    if (job.state() == v1::JOB_STATE_QUEUED) out.push_back(job);
  }
  std::sort(out.begin(), out.end(),
            [](const v1::Job& a, const v1::Job& b) { return a.sequence() < b.sequence(); });
  return out;
}

bool EmbeddedJobStore::HasActiveJobForModel(const std::string& model_id) {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, job] : jobs_) {
    if (job.model_id() == model_id && !IsFinalState(job.state())) return true;
  }
  return false;
}

bool EmbeddedJobStore::IsSucceeded(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  return it != jobs_.end() && it->second.state() == v1::JOB_STATE_SUCCEEDED;
}

absl::StatusOr<std::pair<int64_t, v1::Job>> EmbeddedJobStore::Subscribe(const std::string& job_id,
                                                                        Listener listener) {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end())
    return absl::NotFoundError(absl::StrCat("job ", core::Quoted(job_id), " not found"));
  int64_t token = next_token_++;
  listeners_.emplace(job_id, std::make_pair(token, std::move(listener)));
  return std::make_pair(token, it->second);
}

void EmbeddedJobStore::Unsubscribe(int64_t token) {
  absl::MutexLock lock(&mu_);
  for (auto it = listeners_.begin(); it != listeners_.end(); ++it) {
    if (it->second.first == token) {
      listeners_.erase(it);
      return;
    }
  }
}

void EmbeddedJobStore::Notify(const v1::Job& job) {
  auto range = listeners_.equal_range(job.job_id());
  for (auto it = range.first; it != range.second; ++it) it->second.second(job);
}

}  // namespace quantd::server
