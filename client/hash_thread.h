// HashThread: feeds byte ranges to a Sha256 on its own thread, in the order
// they were added, so a download hashes one chunk while the next is
// received and written.
//
// Thread safety: Add, WaitFor and Finish are for one thread (the owner);
// the hashing runs on the internal thread. A range must stay valid and
// unchanged until WaitFor(its ticket) or Finish returns. Not part of the API.
#ifndef QUANTD_CLIENT_HASH_THREAD_H_
#define QUANTD_CLIENT_HASH_THREAD_H_

#include <cstdint>
#include <deque>
#include <thread>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "quantd/core/base/sha256.h"

namespace quantd::client::internal {

class HashThread {
 public:
  // `sha` (not owned) must outlive this and is used only by its thread
  // until Finish or the destructor returns.
  explicit HashThread(core::Sha256* sha);
  // Hashes what was added, then joins.
  ~HashThread();
  HashThread(const HashThread&) = delete;
  HashThread& operator=(const HashThread&) = delete;

  // Queues `data`; returns its ticket (1, 2, ...).
  uint64_t Add(absl::string_view data);
  // Returns once the range with `ticket` and all before it are hashed
  // (at once for ticket 0).
  void WaitFor(uint64_t ticket);
  // Everything added is hashed; `sha` is the owner's again.
  void Finish();

 private:
  void Run();

  core::Sha256* const sha_;
  absl::Mutex mu_;
  std::deque<absl::string_view> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t added_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t hashed_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace quantd::client::internal

#endif  // QUANTD_CLIENT_HASH_THREAD_H_
