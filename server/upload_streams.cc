#include "quantd/server/upload_streams.h"

#include "absl/strings/str_cat.h"

namespace quantd::server {

UploadStreams::UploadStreams(int max_streams, double idle_seconds, Clock* clock)
    : max_streams_(max_streams), idle_seconds_(idle_seconds), clock_(clock) {}

absl::Status UploadStreams::Add(grpc::CallbackServerContext* context) {
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(streams_.size()) >= max_streams_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the server is receiving ", streams_.size(),
                     " uploads already (--max-concurrent-uploads); retry later"));
  }
  streams_[context].last_active = clock_->NowSteadySeconds();
  return absl::OkStatus();
}

void UploadStreams::Touch(grpc::CallbackServerContext* context, bool busy) {
  absl::MutexLock lock(&mu_);
  auto it = streams_.find(context);
  if (it == streams_.end()) return;
  it->second.last_active = clock_->NowSteadySeconds();
  it->second.busy = busy;
}

void UploadStreams::Remove(grpc::CallbackServerContext* context) {
  absl::MutexLock lock(&mu_);
  streams_.erase(context);
}

int UploadStreams::CancelIdle() {
  const double now = clock_->NowSteadySeconds();
  int cancelled = 0;
  absl::MutexLock lock(&mu_);
  for (auto& [context, s] : streams_) {
    if (s.cancelled || s.busy || now - s.last_active <= idle_seconds_) continue;
    s.cancelled = true;
    context->TryCancel();
    ++cancelled;
  }
  return cancelled;
}

int UploadStreams::open() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(streams_.size());
}

}  // namespace quantd::server
