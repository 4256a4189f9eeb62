// PopulateParallel: faults a fresh buffer's pages in on a RunContext's
// threads before anyone writes it.
//
// A large allocation is fresh anonymous memory; its first touch costs a page
// fault per 4 KiB page (and, on a VM that backs new guest pages lazily, far
// more than the bytes that fill it). std::vector's zero-fill touches every
// page on one thread. Populating the pages first (MADV_POPULATE_WRITE, Linux
// 5.14+) in 4 MiB pieces split over the loop's threads makes that cost
// parallel, and even on one thread the kernel populating a range in one call
// costs less than a fault per page (a GenAI INT4 job, 1 thread: system time
// 1.7 -> 0.95 s); the zero-fill that follows runs over pages already there.
// Where the kernel lacks it, nothing happens and the first touch faults as
// before. Contents are unchanged (populated pages read as zeros): purely a
// matter of speed. Thread safety: as RunContext::ParallelFor.
#ifndef QUANTD_CORE_BASE_POPULATE_H_
#define QUANTD_CORE_BASE_POPULATE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "quantd/core/run_context.h"

namespace quantd::core {

// Populates the whole pages within [data, data + bytes) for writing. `data`
// must be memory the caller owns and has not handed to anyone else (a
// reserved but empty std::vector's buffer, say). Small ranges (under 4 MiB)
// are left to fault on first touch.
void PopulateParallel(void* data, size_t bytes, const RunContext& ctx);

// `bytes` zero bytes in a vector whose pages are there before the zero-fill:
// for a large output the loop then fills. For 4 MiB or more it is a buffer
// given back with RecycleBuffer when one holds `bytes` (the smallest such),
// else a fresh vector whose pages were populated on ctx's threads.
std::vector<uint8_t> PopulatedZeros(size_t bytes, const RunContext& ctx);
// The same without the zero-fill of a reused buffer: `bytes` bytes whose
// contents are unspecified (a kept buffer's old bytes, zeros past them, or
// all zeros when fresh). Only for an output its caller writes whole.
std::vector<uint8_t> PopulatedBuffer(size_t bytes, const RunContext& ctx);

// Large buffers reused. A job computes a float32 buffer per weight (tens to
// hundreds of MB) and drops it once written; freeing it unmaps its pages and
// the next one faults in and zeroes fresh ones: on a checkpoint's GenAI INT4
// job about half of the system time (docs/benchmarks.md). RecycleBuffer
// keeps `buffer` for PopulatedZeros when its capacity is 4 MiB to 256 MiB
// (a layer's weights; smaller and larger ones are simply freed), at most
// two, the older one freed when a third comes. A request none of them holds
// frees them all before allocating afresh. Reusing the largest buffers (an
// embedding or LM head of several hundred MB) for smaller requests would
// keep them resident while the next large one is allocated: with them kept,
// a GenAI FP16 job's peak rose by a third, without them it is unchanged.
// core::Run releases the kept buffers when a job ends. Thread-safe.
void RecycleBuffer(std::vector<uint8_t>&& buffer);
void ReleaseRecycledBuffers();
// The capacity of the buffers kept now, in bytes.
size_t RecycledBufferBytes();

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_POPULATE_H_
