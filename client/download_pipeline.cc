// DownloadPipeline (download_pipeline.h).
#include "download_pipeline.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "absl/types/span.h"

namespace quantd::client::internal {

void DownloadPipeline::FreeDeleter::operator()(char* p) const { std::free(p); }

DownloadPipeline::DownloadPipeline(core::AtomicFileWriter* out, core::Sha256* sha,
                                   size_t buffer_bytes)
    : out_(out), sha_(sha), buffer_bytes_(buffer_bytes), buffer_offset_(out->offset()) {
  constexpr size_t kAlignment = 4096;  // O_DIRECT's memory alignment
  for (Buffer& b : buffers_) {
    void* p = std::aligned_alloc(kAlignment, buffer_bytes_);
    if (p == nullptr) throw std::bad_alloc();
    b.data.reset(static_cast<char*>(p));
  }
  hash_thread_ = std::thread([this] { HashLoop(); });
  write_thread_ = std::thread([this] { WriteLoop(); });
}

DownloadPipeline::~DownloadPipeline() { Finish().IgnoreError(); }

absl::Status DownloadPipeline::Append(absl::string_view bytes) {
  while (!bytes.empty()) {
    if (!open_) {
      struct Wait {
        DownloadPipeline* self;
        uint64_t k;
      } wait{this, filling_};
      absl::MutexLock lock(&mu_);
      // Buffer k reuses the slot of buffer k - kBuffers: both threads must
      // be past it.
      mu_.Await(absl::Condition(
          +[](Wait* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return !w->self->write_status_.ok() ||
                   (w->self->hashed_ + kBuffers > w->k && w->self->written_ + kBuffers > w->k);
          },
          &wait));
      if (!write_status_.ok()) return write_status_;
      // Buffers end where the file reaches a multiple of the buffer size,
      // so full ones start at aligned file offsets.
      capacity_ = buffer_bytes_ - buffer_offset_ % buffer_bytes_;
      buffers_[filling_ % kBuffers].size = 0;
      opened_ = absl::Now();
      open_ = true;
    }
    Buffer& b = buffers_[filling_ % kBuffers];
    const size_t n = std::min(capacity_ - b.size, bytes.size());
    std::memcpy(b.data.get() + b.size, bytes.data(), n);
    b.size += n;
    bytes.remove_prefix(n);
    if (b.size == capacity_) Submit();
  }
  if (open_ && absl::Now() - opened_ >= kMaxHold) Submit();  // a slow download
  absl::MutexLock lock(&mu_);
  return write_status_;
}

void DownloadPipeline::Submit() {
  buffer_offset_ += buffers_[filling_ % kBuffers].size;
  absl::MutexLock lock(&mu_);
  ++submitted_;
  ++filling_;
  open_ = false;
}

absl::Status DownloadPipeline::Finish() {
  if (!finished_) {
    finished_ = true;
    if (open_ && buffers_[filling_ % kBuffers].size > 0) Submit();
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    hash_thread_.join();
    write_thread_.join();
  }
  absl::MutexLock lock(&mu_);
  return write_status_;
}

bool DownloadPipeline::Next(uint64_t DownloadPipeline::*count, uint64_t* k, bool* failed) {
  struct Wait {
    DownloadPipeline* self;
    uint64_t DownloadPipeline::*count;
  } wait{this, count};
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](Wait* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return w->self->done_ || w->self->submitted_ > w->self->*(w->count);
      },
      &wait));
  if (this->*count == submitted_) return false;  // done, and all taken
  *k = this->*count;
  *failed = !write_status_.ok();
  return true;
}

void DownloadPipeline::HashLoop() {
  uint64_t k;
  bool failed;
  while (Next(&DownloadPipeline::hashed_, &k, &failed)) {
    const Buffer& b = buffers_[k % kBuffers];
    sha_->Update(b.data.get(), b.size);
    absl::MutexLock lock(&mu_);
    ++hashed_;
  }
}

void DownloadPipeline::WriteLoop() {
  uint64_t k;
  bool failed;
  while (Next(&DownloadPipeline::written_, &k, &failed)) {
    absl::Status st;
    if (!failed) {
      const Buffer& b = buffers_[k % kBuffers];
      st = out_->WriteUncached(
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(b.data.get()), b.size));
    }
    absl::MutexLock lock(&mu_);
    if (write_status_.ok()) write_status_ = st;
    ++written_;
  }
}

}  // namespace quantd::client::internal
