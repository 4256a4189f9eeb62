// WatchJob: a server-streaming reactor fed by JobStore change listeners.
// Events are coalesced: while a write is in flight only the newest job state
// is kept, so a slow client sees fewer progress events, never stale ones.
#include "absl/synchronization/mutex.h"
#include "quantd/server/auth.h"
#include "quantd/server/ids.h"
#include "quantd/server/translate.h"
#include "reactors.h"

namespace quantd::server {
namespace {

class WatchReactor final : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  WatchReactor(const ServiceContext* ctx, grpc::CallbackServerContext* context,
               const v1::WatchJobRequest* request)
      : ctx_(ctx) {
    absl::Status st = ctx_->auth->Check(*context);
    if (st.ok()) st = ValidateJobId(request->job_id());
    if (!st.ok()) {
      FinishOnce(st);
      return;
    }
    auto sub =
        ctx_->jobs->Subscribe(request->job_id(), [this](const v1::Job& job) { OnJobChanged(job); });
    if (!sub.ok()) {
      FinishOnce(sub.status());
      return;
    }
    bool write = false;
    {
      absl::MutexLock lock(&mu_);
      token_ = sub->first;
      if (!has_pending_) {  // a listener call may already have brought newer state
        pending_ = std::move(sub->second);
        has_pending_ = true;
      }
      write = PrepareWriteLocked();
    }
    if (write) StartWrite(&event_);
  }

  void OnWriteDone(bool ok) override {
    bool write = false;
    bool finish = false;
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) {
        finish = true;
        status = absl::CancelledError("the client went away");
      } else if (final_sent_) {
        finish = true;
      } else {
        write = PrepareWriteLocked();
      }
    }
    if (write) StartWrite(&event_);
    if (finish) FinishOnce(status);
  }

  void OnCancel() override {
    bool finish = false;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      finish = !writing_;  // else OnWriteDone(false) finishes
    }
    if (finish) FinishOnce(absl::CancelledError("watch cancelled"));
  }

  void OnDone() override {
    int64_t token = 0;
    {
      absl::MutexLock lock(&mu_);
      token = token_;
    }
    if (token != 0) ctx_->jobs->Unsubscribe(token);  // no listener runs after this
    delete this;
  }

 private:
  // Runs under the JobStore's lock: must not block or call the store.
  void OnJobChanged(const v1::Job& job) {
    bool write = false;
    {
      absl::MutexLock lock(&mu_);
      pending_ = job;
      has_pending_ = true;
      write = PrepareWriteLocked();
    }
    if (write) StartWrite(&event_);
  }

  // Moves the pending state into event_ when no write is in flight.
  bool PrepareWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || final_sent_ || cancelled_ || finished_ || !has_pending_) return false;
    *event_.mutable_job() = std::move(pending_);
    has_pending_ = false;
    event_.set_final(IsFinalState(event_.job().state()));
    final_sent_ = event_.final();
    writing_ = true;
    return true;
  }

  void FinishOnce(const absl::Status& st) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    Finish(ToGrpcStatus(st));
  }

  const ServiceContext* const ctx_;
  absl::Mutex mu_;
  int64_t token_ ABSL_GUARDED_BY(mu_) = 0;
  v1::Job pending_ ABSL_GUARDED_BY(mu_);
  bool has_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool final_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  v1::JobEvent event_;  // owned by the one in-flight write (writing_)
};

}  // namespace

grpc::ServerWriteReactor<v1::JobEvent>* NewWatchReactor(const ServiceContext* ctx,
                                                        grpc::CallbackServerContext* context,
                                                        const v1::WatchJobRequest* request) {
  return new WatchReactor(ctx, context, request);
}

}  // namespace quantd::server
