// UploadStreams: the UploadModel streams open right now, for the cap on
// concurrent uploads (--max-concurrent-uploads) and the idle-stream timeout
// (--upload-idle-seconds). A stream registers when it starts, marks each
// message it receives, and leaves in OnDone; a periodic sweep cancels the
// streams that received nothing for too long, so an idle client cannot hold
// a slot (and the file it writes) for ever.
//
// Thread safety: thread-safe. CancelIdle calls TryCancel on registered
// contexts with the lock held; a context stays valid until Remove, which
// the stream calls from OnDone (before the context is destroyed).
#ifndef QUANTD_SERVER_UPLOAD_STREAMS_H_
#define QUANTD_SERVER_UPLOAD_STREAMS_H_

#include <grpcpp/grpcpp.h>

#include <map>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "quantd/server/clock.h"

namespace quantd::server {

class UploadStreams {
 public:
  // `clock` is not owned and must outlive this. `max_streams` >= 1;
  // `idle_seconds` > 0.
  UploadStreams(int max_streams, double idle_seconds, Clock* clock);
  UploadStreams(const UploadStreams&) = delete;
  UploadStreams& operator=(const UploadStreams&) = delete;

  // Registers a stream. ResourceExhausted when `max_streams` are open.
  absl::Status Add(grpc::CallbackServerContext* context);
  // The stream received a message (`busy`: the server is working on it, e.g.
  // a commit's fsync) or finished with one (`busy` false): not idle either
  // way, and never idle while busy.
  void Touch(grpc::CallbackServerContext* context, bool busy);
  void Remove(grpc::CallbackServerContext* context);
  // Cancels (TryCancel) every stream idle for longer than the timeout and
  // not cancelled before; returns how many.
  int CancelIdle();
  int open();

 private:
  struct Stream {
    double last_active = 0;  // Clock::NowSteadySeconds
    bool busy = false;       // a message is being processed
    bool cancelled = false;
  };
  const int max_streams_;
  const double idle_seconds_;
  Clock* const clock_;

  absl::Mutex mu_;
  std::map<grpc::CallbackServerContext*, Stream> streams_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quantd::server

#endif  // QUANTD_SERVER_UPLOAD_STREAMS_H_
