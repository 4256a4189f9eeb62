#include "quantd/core/base/populate.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

namespace quantd::core {
namespace {

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14 (older headers lack the name)
#endif

constexpr uintptr_t kMinBytes = 4u << 20;
constexpr uintptr_t kChunkBytes = 4u << 20;  // per task: enough to amortize the call

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

std::vector<uint8_t> PopulatedZeros(size_t bytes, const RunContext& ctx) {
  std::vector<uint8_t> out;
  out.reserve(bytes);
  PopulateParallel(out.data(), bytes, ctx);
  out.resize(bytes);
  return out;
}

}  // namespace quantd::core
