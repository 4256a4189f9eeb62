#include "quantd/core/base/populate.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace quantd::core {
namespace {

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14 (older headers lack the name)
#endif

constexpr uintptr_t kMinBytes = 4u << 20;
constexpr uintptr_t kChunkBytes = 4u << 20;  // per task: enough to amortize the call

constexpr size_t kRecycleMinBytes = 4u << 20;
constexpr size_t kRecycleMaxBytes = 256u << 20;
constexpr size_t kRecycleSlots = 2;

struct Recycled {
  absl::Mutex mu;
  std::vector<std::vector<uint8_t>> kept ABSL_GUARDED_BY(mu);  // oldest first
};

Recycled& TheRecycled() {
  static auto* recycled = new Recycled;
  return *recycled;
}

// The smallest kept buffer that holds `bytes`, or none (then every kept one
// lands in *dropped, for the caller to free outside the lock).
std::vector<uint8_t> TakeRecycled(size_t bytes, std::vector<std::vector<uint8_t>>* dropped) {
  Recycled& r = TheRecycled();
  absl::MutexLock lock(&r.mu);
  size_t best = r.kept.size();
  for (size_t i = 0; i < r.kept.size(); ++i) {
    const size_t cap = r.kept[i].capacity();
    if (cap >= bytes && (best == r.kept.size() || cap < r.kept[best].capacity())) best = i;
  }
  if (best == r.kept.size()) {
    *dropped = std::move(r.kept);
    r.kept.clear();
    return {};
  }
  std::vector<uint8_t> taken = std::move(r.kept[best]);
  r.kept.erase(r.kept.begin() + static_cast<std::ptrdiff_t>(best));
  return taken;
}

}  // namespace

void PopulateParallel(void* data, size_t bytes, const RunContext& ctx) {
  if (bytes < kMinBytes) return;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) / page * page;
  if (end <= begin) return;
  const int64_t tasks = static_cast<int64_t>((end - begin + kChunkBytes - 1) / kChunkBytes);
  ctx.ParallelFor(tasks, [&](int64_t i, int) {
    const uintptr_t lo = begin + static_cast<uintptr_t>(i) * kChunkBytes;
    const uintptr_t hi = std::min(end, lo + kChunkBytes);
    // Best effort: EINVAL (an older kernel), ENOMEM and the like leave the
    // pages to fault on first touch.
    (void)::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_WRITE);
  });
}

namespace {

// A kept buffer that holds `bytes` (its size as it was), or an empty vector.
std::vector<uint8_t> Reuse(size_t bytes) {
  if (bytes < kRecycleMinBytes) return {};
  std::vector<std::vector<uint8_t>> dropped;
  std::vector<uint8_t> reused = TakeRecycled(bytes, &dropped);
  return reused;  // `dropped` is freed here, outside the lock, before any fresh allocation
}

std::vector<uint8_t> Fresh(size_t bytes, const RunContext& ctx) {
  std::vector<uint8_t> out;
  out.reserve(bytes);
  PopulateParallel(out.data(), bytes, ctx);
  out.resize(bytes);
  return out;
}

}  // namespace

std::vector<uint8_t> PopulatedZeros(size_t bytes, const RunContext& ctx) {
  std::vector<uint8_t> reused = Reuse(bytes);
  if (reused.capacity() >= bytes && bytes > 0) {
    reused.assign(bytes, 0);  // within its capacity: no new pages
    return reused;
  }
  return Fresh(bytes, ctx);
}

std::vector<uint8_t> PopulatedBuffer(size_t bytes, const RunContext& ctx) {
  std::vector<uint8_t> reused = Reuse(bytes);
  if (reused.capacity() >= bytes && bytes > 0) {
    reused.resize(bytes);  // zeros only past its old size
    return reused;
  }
  return Fresh(bytes, ctx);
}

void RecycleBuffer(std::vector<uint8_t>&& buffer) {
  const size_t cap = buffer.capacity();
  if (cap < kRecycleMinBytes || cap > kRecycleMaxBytes) return;  // the caller frees it
  std::vector<uint8_t> evicted;
  {
    Recycled& r = TheRecycled();
    absl::MutexLock lock(&r.mu);
    r.kept.push_back(std::move(buffer));
    if (r.kept.size() > kRecycleSlots) {
      evicted = std::move(r.kept.front());
      r.kept.erase(r.kept.begin());
    }
  }
}

void ReleaseRecycledBuffers() {
  std::vector<std::vector<uint8_t>> freed;
  Recycled& r = TheRecycled();
  absl::MutexLock lock(&r.mu);
  freed = std::move(r.kept);
  r.kept.clear();
}

size_t RecycledBufferBytes() {
  Recycled& r = TheRecycled();
  absl::MutexLock lock(&r.mu);
  size_t bytes = 0;
  for (const auto& b : r.kept) bytes += b.capacity();
  return bytes;
}

}  // namespace quantd::core
