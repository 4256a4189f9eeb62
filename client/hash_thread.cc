// HashThread (hash_thread.h).
#include "hash_thread.h"

namespace quantd::client::internal {

HashThread::HashThread(core::Sha256* sha) : sha_(sha) {
  thread_ = std::thread([this] { Run(); });
}

HashThread::~HashThread() { Finish(); }

uint64_t HashThread::Add(absl::string_view data) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(data);
  return ++added_;
}

void HashThread::WaitFor(uint64_t ticket) {
  struct Wait {
    HashThread* self;
    uint64_t ticket;
  } wait{this, ticket};
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](Wait* w) ABSL_NO_THREAD_SAFETY_ANALYSIS { return w->self->hashed_ >= w->ticket; },
      &wait));
}

void HashThread::Finish() {
  {
    absl::MutexLock lock(&mu_);
    if (!thread_.joinable()) return;
    stop_ = true;
  }
  thread_.join();
}

void HashThread::Run() {
  for (;;) {
    absl::string_view data;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](HashThread* h) ABSL_EXCLUSIVE_LOCKS_REQUIRED(h->mu_) {
            return h->stop_ || !h->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopped, and all hashed
      data = queue_.front();
    }
    sha_->Update(data.data(), data.size());
    absl::MutexLock lock(&mu_);
    queue_.pop_front();
    ++hashed_;
  }
}

}  // namespace quantd::client::internal
