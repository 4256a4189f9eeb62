// RunGguf: llama-quantize compatible conversion of one GGUF model, read
// through a TensorSource (a GGUF file, or a checkpoint seen as its F32
// conversion).
//
// Flow: open the source (a file: map, parse and validate it), decide every tensor's output
// type (MixPlanner, in llama.cpp's tensor order), pre-compute the output
// header (the file's space is reserved up front), then stream tensor data
// through an AtomicFileWriter one output part (file) at a time. A part's
// tensors are cut into chunks of rows, and ONE parallel loop on the
// RunContext's pool runs over the chunks of all of them, so no thread waits
// at the end of a tensor: a thread that finishes tensor k's last chunk goes
// on with tensor k+1 while another still computes tensor k. A ChunkWriter
// writes the chunks in order as they finish, with each tensor's padding
// after its last chunk and tensors kept as is in between, by whichever loop
// thread completes the written prefix (no writer thread: the job uses
// exactly its parallelism), so the bytes do not depend on the thread count.
// Peak memory: the input's resident pages of the tensors the loop is on
// (a converted tensor's are released once its last chunk is computed) plus
// a ring of 2-8 output chunks (up to 512 KiB) per thread, per-thread
// scratch and 32 bytes per chunk of the part (quality sums, failure index).
#include "quantd/core/gguf/gguf_run.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/base/finite.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/gguf/ggml_types.h"
#include "quantd/core/gguf/gguf_file.h"
#include "quantd/core/gguf/gguf_file_source.h"
#include "quantd/core/gguf/gguf_mix.h"
#include "quantd/core/gguf/gguf_split_source.h"
#include "quantd/core/gguf/imatrix.h"
#include "quantd/core/gguf/quants.h"
#include "quantd/core/gguf/tensor_source.h"

namespace quantd::core {
namespace {

using gguf::GgmlType;

constexpr uint32_t kQuantizationVersion = 2;  // GGML_QNT_VERSION
constexpr int64_t kChunkElements = 1 << 16;   // work unit for the pool
// Output chunks in flight per thread: as many as fit in kRingBytesPerThread,
// at least 2, at most 8. The slack lets the other threads go on computing
// while the thread holding the writer's role is in write(2) or starting
// write-back (sync_file_range, ~0.5 ms per 8 MiB). Measured on a Q8_0 job
// at 2 threads (68 KiB chunks): time in futex calls (threads waking each
// other) 21-25 ms per run with 2 slots per thread, 11-14 ms with 8.
constexpr size_t kRingBytesPerThread = 512 << 10;
constexpr int kMinSlotsPerThread = 2;
constexpr int kMaxSlotsPerThread = 8;
// Write-back is started every this many output bytes, so the disk works
// while the next tensors are computed and Commit's fsync has little left:
// at most this much plus what the disk has not finished. Measured on a
// 251 MB Q8_0 output at 2 threads (docs/benchmarks.md): the fsync took
// 16-46 ms with 32 MiB, 3.5-26 ms (mostly <= 14) with 8 MiB, 2-15 ms with
// 4 MiB, while the time spent in sync_file_range (on a loop thread, next to
// the compute) was 5-21 ms, 11-20 ms and 21-28 ms.
constexpr uint64_t kWriteBackBytes = 8 << 20;

struct TensorPlan {
  size_t index;  // in the source's tensors()
  gguf::GgufTensorInfo out;
  bool convert;
  // The tensor's importance (ne[0] floats per matrix of a 3-D tensor), owned
  // by the run's ImportanceMatrix; null without one.
  const float* quant_weights = nullptr;
  int part = 0;  // output file (split outputs), 0-based
};

// `field`: the recipe field the value came from, for the message.
absl::StatusOr<std::optional<GgmlType>> ParseUserType(const std::string& value, const char* field) {
  if (value.empty()) return std::optional<GgmlType>();
  auto t = gguf::ParseTypeName(value);
  if (!t || !gguf::CanQuantize(*t)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " '", value, "' is not a type Quantd writes; use one of: f32 f16 bf16 q8_0 ",
        "q4_0 q4_1 q5_0 q5_1 q2_K q3_K q4_K q5_K q6_K iq4_nl"));
  }
  return std::optional<GgmlType>(*t);
}

// Writes the chunks of one output part to its file in order while a
// ParallelFor computes them in any order (see ConvertPart). The loop's items
// are the chunks of the part's tensors one after the other; item c is
// computed into ring slot c % slots (or, for a tensor kept as is, names the
// source's bytes). The thread whose item extends the written prefix writes
// every finished item in order (one such writer at a time, outside the
// lock), so writing needs no thread of its own: a loop of parallelism P uses
// exactly its P threads, and one thread's writing overlaps the others'
// computing. After a tensor's last item the writer calls `tensor_written`
// (which pads the file to the alignment), so the padding lands in order too
// and no thread waits for a tensor to end before starting the next one.
// The slot of item c is free once item c - slots is written; a thread that
// waits for it takes the writer's role when that is free and there is
// something to write, so the loop always makes progress. Memory: slots x
// the largest chunk of the part. Each chunk is written while it is still in
// the computing core's cache.
//
// Thread safety: Acquire/Done/Stop from any loop thread (distinct items);
// `tensor_written` is called by one thread at a time, in tensor order;
// Finish from the owning thread once the loop is over.
class ChunkWriter {
 public:
  // `tensor_ends`: per tensor, one past its last item (ascending; every
  // tensor has at least one item). `slot_bytes`: the largest chunk.
  // `tensor_written(k)`: runs after tensor k's last item is written; an
  // error stops the writer like a write error.
  ChunkWriter(AtomicFileWriter* writer, std::vector<int64_t> tensor_ends, size_t slot_bytes,
              int slots, absl::FunctionRef<absl::Status(size_t)> tensor_written)
      : writer_(writer),
        tensor_written_(tensor_written),
        tensor_ends_(std::move(tensor_ends)),
        items_(tensor_ends_.empty() ? 0 : tensor_ends_.back()),
        slot_bytes_(slot_bytes),
        slots_(std::max(slots, 1)),
        ring_(slot_bytes_ * static_cast<size_t>(slots_)),
        done_(static_cast<size_t>(slots_), -1),
        size_(static_cast<size_t>(slots_), 0),
        data_(static_cast<size_t>(slots_), nullptr) {}
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;

  // The ring buffer for item c (slot_bytes long), once its slot is free;
  // null when the writer was stopped (Stop or a write error).
  uint8_t* Acquire(int64_t c) {
    absl::MutexLock lock(&mu_);
    auto can_go = [this, c]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopped_ || c < next_ + slots_ || (!writing_ && Ready());
    };
    for (;;) {
      mu_.Await(absl::Condition(&can_go));
      if (stopped_) return nullptr;
      if (c < next_ + slots_) return ring_.data() + Slot(c) * slot_bytes_;
      WriteReady();  // the writer's role was free and an item was ready
    }
  }

  // Item c (acquired) is done: its `bytes` are in its ring buffer, or at
  // `data` (bytes that outlive the loop, e.g. the source's). Writes them
  // (and any later items already done) unless another thread is writing,
  // which then does.
  void Done(int64_t c, size_t bytes, const uint8_t* data = nullptr) {
    absl::MutexLock lock(&mu_);
    done_[Slot(c)] = c;
    size_[Slot(c)] = bytes;
    data_[Slot(c)] = data;
    if (!writing_) WriteReady();
  }

  // Nothing more is written (a chunk had non-finite input, or the job was
  // cancelled).
  void Stop() {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
  }

  // After the loop: the first write error, else OK. When not stopped, every
  // item has been written.
  absl::Status Finish() {
    absl::MutexLock lock(&mu_);
    if (!status_.ok()) return status_;
    if (!stopped_ && next_ != items_) return absl::InternalError("GGUF chunk writer lost a chunk");
    return absl::OkStatus();
  }

 private:
  size_t Slot(int64_t c) const { return static_cast<size_t>(c % slots_); }
  bool Ready() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return next_ < items_ && done_[Slot(next_)] == next_;
  }

  // Writes ready items in order, releasing the lock around each write.
  void WriteReady() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    writing_ = true;
    while (!stopped_ && Ready()) {
      const size_t slot = Slot(next_);
      const uint8_t* data =
          data_[slot] != nullptr ? data_[slot] : ring_.data() + slot * slot_bytes_;
      const size_t bytes = size_[slot];
      const bool tensor_end = next_ + 1 == tensor_ends_[tensor_];
      const size_t tensor = tensor_;
      mu_.Unlock();
      absl::Status st = writer_->Write(data, bytes);
      if (st.ok() && tensor_end) st = tensor_written_(tensor);
      mu_.Lock();
      if (!st.ok()) {
        status_ = std::move(st);
        stopped_ = true;
        break;
      }
      ++next_;
      if (tensor_end) ++tensor_;
    }
    writing_ = false;
  }

  // Used by the thread holding the writer's role.
  AtomicFileWriter* const writer_;
  const absl::FunctionRef<absl::Status(size_t)> tensor_written_;

  const std::vector<int64_t> tensor_ends_;
  const int64_t items_;
  const size_t slot_bytes_;
  const int slots_;
  absl::Mutex mu_;
  // slots_ x slot_bytes_; each slot is owned by its item's computing
  // thread, then the writer.
  std::vector<uint8_t> ring_;
  std::vector<int64_t> done_ ABSL_GUARDED_BY(mu_);  // per slot: the item done in it
  std::vector<size_t> size_ ABSL_GUARDED_BY(mu_);
  std::vector<const uint8_t*> data_ ABSL_GUARDED_BY(mu_);  // null: the ring's slot
  int64_t next_ ABSL_GUARDED_BY(mu_) = 0;                  // items [0, next_) are written
  size_t tensor_ ABSL_GUARDED_BY(mu_) = 0;                 // the tensor of item next_
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

// One tensor of an output part's loop (ConvertPart): its items (chunks of
// rows) and how they are computed. A chunk is rows_per_chunk rows (about
// kChunkElements values) whatever the thread count, so the quality sums
// (kept per chunk, added in chunk order) do not depend on it either.
struct LoopTensor {
  enum class Kind {
    kConvert,     // rows converted chunk by chunk into the ring
    kCopyStored,  // kept as is: one item, written straight from the source's bytes
    kCopyRows,    // kept as is from computed F32 rows, read chunk by chunk into the ring
  };
  const TensorPlan* plan = nullptr;
  Kind kind = Kind::kConvert;
  const uint8_t* src_data = nullptr;  // the stored bytes; null: computed rows
  int64_t first_item = 0;             // the loop's item of chunk 0
  int64_t chunks = 1;                 // at least 1
  int64_t rows_per_chunk = 1;
  int64_t in_row_bytes = 0;
  int64_t out_row_bytes = 0;
  bool direct = false;        // F32 stored rows, used in place
  bool check_finite = false;  // a quantized output type: NaN / Inf are refused
};

// What ConvertPart needs of the job. Nothing is owned.
struct PartJob {
  const gguf::TensorSource* source;
  const RunContext* ctx;
  const TensorPlan* plans;  // the part's tensors, in file order
  size_t num_plans;
  AtomicFileWriter* writer;  // positioned at the part's first tensor
  uint64_t alignment;
  bool measure;               // compute the quality figures
  uint64_t bytes_before = 0;  // of the parts already written (for progress)
};

// Writes the data of one output part: every tensor's chunks are computed
// by ONE parallel loop over the part's items and written in order by a
// ChunkWriter, so a thread that finishes tensor k's last chunk goes on with
// tensor k+1 while another still computes tensor k (no barrier per tensor).
// Adds the tensors' figures to `report` and the totals, in tensor order;
// progress is reported (from the calling thread: slot 0 of the loop) once a
// tensor is written. On a non-finite input, names the first non-finite
// element of the first tensor that has one; nothing after it is written.
absl::Status ConvertPart(const PartJob& job, Report* report, Progress* prog, double* total_w2,
                         double* total_e2) {
  const gguf::TensorSource& source = *job.source;
  const RunContext& ctx = *job.ctx;
  const std::vector<gguf::GgufTensorInfo>& tensors = source.tensors();
  const int threads = ctx.Parallelism();

  std::vector<LoopTensor> loop;
  std::vector<int64_t> ends;  // per tensor: one past its last item
  int64_t items = 0;
  size_t slot_bytes = 64;
  int64_t scratch_floats = 0;  // input rows of a chunk that are not used in place
  for (size_t i = 0; i < job.num_plans; ++i) {
    const TensorPlan& plan = job.plans[i];
    const gguf::GgufTensorInfo& src = tensors[plan.index];
    LoopTensor t;
    t.plan = &plan;
    // Stored bytes where the source has them (a GGUF file), else F32 rows
    // computed on demand (a checkpoint).
    t.src_data = source.StoredBytes(plan.index).data();
    if (!plan.convert && t.src_data != nullptr) {
      t.kind = LoopTensor::Kind::kCopyStored;
    } else {
      if (!plan.convert) {
        // Kept as is, from computed values: the rows are the output bytes
        // (the type can only be F32, as a source without stored bytes has).
        if (src.type != GgmlType::kF32) {
          return absl::InternalError(absl::StrCat(
              "tensor '", src.name, "' has no stored bytes and type ", gguf::TypeName(src.type)));
        }
        t.kind = LoopTensor::Kind::kCopyRows;
      }
      const int64_t ne0 = src.ne[0];
      const int64_t rows = src.Rows();
      t.rows_per_chunk = std::max<int64_t>(1, kChunkElements / std::max<int64_t>(ne0, 1));
      t.chunks = std::max<int64_t>(1, (rows + t.rows_per_chunk - 1) / t.rows_per_chunk);
      t.in_row_bytes = gguf::RowBytes(src.type, ne0);
      t.out_row_bytes = gguf::RowBytes(plan.out.type, ne0);
      const int64_t chunk_rows = std::min(t.rows_per_chunk, rows);
      slot_bytes = std::max(slot_bytes, static_cast<size_t>(chunk_rows * t.out_row_bytes));
      if (t.kind == LoopTensor::Kind::kConvert) {
        t.direct = t.src_data != nullptr && src.type == GgmlType::kF32;
        if (!t.direct) scratch_floats = std::max(scratch_floats, chunk_rows * ne0);
        // A quantized type would turn NaN/Inf into garbage scales: refuse
        // them (float outputs carry them over unchanged, as llama-quantize
        // does).
        t.check_finite = gguf::TypeInfo(plan.out.type).quantized;
      }
    }
    t.first_item = items;
    items += t.chunks;
    ends.push_back(items);
    loop.push_back(t);
  }
  slot_bytes = (slot_bytes + 63) / 64 * 64;  // slots stay float- and line-aligned
  const int slots_per_thread = static_cast<int>(
      std::clamp<size_t>(kRingBytesPerThread / slot_bytes, kMinSlotsPerThread, kMaxSlotsPerThread));
  std::vector<std::vector<float>> src_scratch(static_cast<size_t>(threads));
  std::vector<std::vector<float>> deq_scratch(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    src_scratch[static_cast<size_t>(t)].resize(static_cast<size_t>(scratch_floats));
    deq_scratch[static_cast<size_t>(t)].resize(static_cast<size_t>(gguf::kQualitySpan));
  }
  std::vector<gguf::QualitySums> quality(static_cast<size_t>(items));
  std::vector<int64_t> first_non_finite(static_cast<size_t>(items), -1);  // per item
  // The first tensor (in file order) known to have a non-finite element;
  // loop.size(): none. Items of later tensors are skipped.
  std::atomic<size_t> first_failed{loop.size()};
  auto note_failure = [&](size_t k) {
    size_t seen = first_failed.load();
    while (k < seen && !first_failed.compare_exchange_weak(seen, k)) {
    }
  };
  // Per tensor: items not yet computed. The thread that computes a
  // converted tensor's last one releases its input pages (unmapping a few
  // MiB to GiB of page-table entries takes ~0.1 ms per 1 MB of F32 input:
  // 11 ms of a 0.16 s 2-thread Q8_0 job), off the writer's path, while the
  // other threads go on. A tensor kept as is is released by the writer once
  // its bytes are written.
  std::vector<std::atomic<int64_t>> unfinished(loop.size());
  for (size_t k = 0; k < loop.size(); ++k) unfinished[k].store(loop[k].chunks);

  // Progress: the writer records each tensor's end; the calling thread
  // reports it (RunContext: progress only from the calling thread).
  std::vector<uint64_t> bytes_done(loop.size());
  std::atomic<size_t> tensors_written{0};
  size_t reported = 0;
  auto report_written = [&] {
    for (const size_t n = tensors_written.load(std::memory_order_acquire); reported < n;
         ++reported) {
      prog->tensors_done += 1;
      prog->bytes_done = bytes_done[reported];
      ctx.Report(*prog);
    }
  };
  auto tensor_written = [&](size_t k) -> absl::Status {
    QUANTD_RETURN_IF_ERROR(job.writer->PadTo(job.alignment));
    if (loop[k].kind == LoopTensor::Kind::kCopyStored) source.Release(loop[k].plan->index);
    bytes_done[k] = job.bytes_before + job.writer->offset();
    tensors_written.store(k + 1, std::memory_order_release);
    return absl::OkStatus();
  };
  ChunkWriter chunk_writer(job.writer, ends, slot_bytes, slots_per_thread * threads,
                           tensor_written);

  ctx.ParallelFor(items, [&](int64_t item, int thread) {
    if (thread == 0) report_written();  // slot 0 is the calling thread
    const size_t k =
        static_cast<size_t>(std::upper_bound(ends.begin(), ends.end(), item) - ends.begin());
    if (k > first_failed.load(std::memory_order_relaxed)) return;  // not needed any more
    if (ctx.cancelled()) {
      chunk_writer.Stop();
      return;
    }
    const LoopTensor& t = loop[k];
    const TensorPlan& plan = *t.plan;
    const gguf::GgufTensorInfo& src = tensors[plan.index];
    if (t.kind == LoopTensor::Kind::kCopyStored) {
      source.Prefetch(plan.index, 0, src.nbytes);
      if (chunk_writer.Acquire(item) != nullptr) chunk_writer.Done(item, src.nbytes, t.src_data);
      return;
    }
    const int64_t ne0 = src.ne[0];
    const int64_t r0 = (item - t.first_item) * t.rows_per_chunk;
    const int64_t nr = std::min(t.rows_per_chunk, src.Rows() - r0);
    const int64_t n = nr * ne0;
    auto finished = [&] {  // every row of the chunk is read and its output done
      chunk_writer.Done(item, static_cast<size_t>(nr * t.out_row_bytes));
      if (unfinished[k].fetch_sub(1, std::memory_order_acq_rel) == 1) source.Release(plan.index);
    };
    if (t.kind == LoopTensor::Kind::kCopyRows) {
      uint8_t* y = chunk_writer.Acquire(item);
      if (y == nullptr) return;
      if (nr > 0) source.ReadRows(plan.index, r0, nr, reinterpret_cast<float*>(y));
      finished();
      return;
    }
    const GgmlType in_type = src.type;
    const GgmlType out_type = plan.out.type;
    const float* x;
    // Each chunk's thread makes its input pages resident (page-cache
    // mapping is a good part of a fast type's time; this way the threads
    // share it instead of one doing the whole tensor first).
    source.Prefetch(plan.index, static_cast<uint64_t>(r0 * t.in_row_bytes),
                    static_cast<uint64_t>(nr * t.in_row_bytes));
    if (t.direct) {
      x = reinterpret_cast<const float*>(t.src_data + r0 * t.in_row_bytes);
    } else if (t.src_data != nullptr) {
      gguf::DequantizeRow(in_type, t.src_data + r0 * t.in_row_bytes,
                          src_scratch[static_cast<size_t>(thread)].data(), n);
      x = src_scratch[static_cast<size_t>(thread)].data();
    } else {
      source.ReadRows(plan.index, r0, nr, src_scratch[static_cast<size_t>(thread)].data());
      x = src_scratch[static_cast<size_t>(thread)].data();
    }
    uint8_t* y = chunk_writer.Acquire(item);
    // The quantizers get finite rows only: converting a NaN scale to an
    // integer code is undefined behaviour (the sanitizer fuzz build stops
    // on it), so every chunk of a quantized type is checked before (or, in
    // the one-pass kernels, block by block as) it is quantized. After a
    // failure, every chunk of the failing tensor and of the ones before it
    // is still checked, so the error names the first non-finite element
    // whatever the thread count.
    if (y == nullptr) {                                        // stopped: nothing more is written
      const bool failing = first_failed.load() < loop.size();  // else a write error
      if (const int64_t bad = failing && t.check_finite ? FirstNonFiniteF32(x, n) : -1; bad >= 0) {
        first_non_finite[static_cast<size_t>(item)] = r0 * ne0 + bad;
        note_failure(k);
      }
      return;
    }
    gguf::QualitySums q;
    int64_t bad = -1;
    float* const deq = deq_scratch[static_cast<size_t>(thread)].data();
    if (plan.quant_weights == nullptr || !gguf::UsesImportance(out_type)) {
      // One pass (check, quantize, measure) where the type has it. (A type
      // without a weighted quantizer ignores the importance.)
      bad = gguf::QuantizeRowChecked(out_type, x, y, n, job.measure ? &q : nullptr, deq);
    } else if (bad = t.check_finite ? FirstNonFiniteF32(x, n) : -1; bad < 0) {
      // Rows of one matrix (a 3-D tensor has ne[2] of them) share its
      // importance; quantize each run of such rows together.
      const int64_t ne1 = src.ne.size() > 1 ? src.ne[1] : 1;
      const int64_t ne2 = src.ne.size() > 2 ? src.ne[2] : 1;
      for (int64_t r = r0; r < r0 + nr;) {
        const int64_t mat = (r / ne1) % ne2;
        const int64_t end = std::min(r0 + nr, (r / ne1 + 1) * ne1);
        gguf::QuantizeRows(out_type, x + (r - r0) * ne0, y + (r - r0) * t.out_row_bytes, end - r,
                           ne0, plan.quant_weights + mat * ne0);
        r = end;
      }
      if (job.measure) {
        // Compare the stored values with the source one span of
        // kQualitySpan at a time, so the dequantized values stay in L1.
        const int64_t out_block = gguf::TypeInfo(out_type).block_size;
        const int64_t out_type_size = gguf::TypeInfo(out_type).type_size;
        for (int64_t i0 = 0; i0 < n; i0 += gguf::kQualitySpan) {
          const int64_t len = std::min(gguf::kQualitySpan, n - i0);
          gguf::DequantizeRow(out_type, y + i0 / out_block * out_type_size, deq, len);
          gguf::AddQualitySums(x + i0, deq, len, &q);
        }
      }
    }
    if (bad >= 0) {
      first_non_finite[static_cast<size_t>(item)] = r0 * ne0 + bad;
      note_failure(k);
      chunk_writer.Stop();
      return;
    }
    if (job.measure) quality[static_cast<size_t>(item)] = q;
    finished();
  });
  const absl::Status written = chunk_writer.Finish();
  report_written();
  QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());
  if (const size_t k = first_failed.load(); k < loop.size()) {
    const LoopTensor& t = loop[k];
    const gguf::GgufTensorInfo& src = tensors[t.plan->index];
    const int64_t ne0 = src.ne[0];
    for (int64_t c = t.first_item; c < t.first_item + t.chunks; ++c) {
      const int64_t bad = first_non_finite[static_cast<size_t>(c)];
      if (bad < 0) continue;
      std::vector<float> row(static_cast<size_t>(ne0));
      if (t.src_data != nullptr) {
        gguf::DequantizeRow(src.type, t.src_data + (bad / ne0) * t.in_row_bytes, row.data(), ne0);
      } else {
        source.ReadRows(t.plan->index, bad / ne0, 1, row.data());
      }
      return NonFiniteWeightError(src.name, bad, row[static_cast<size_t>(bad % ne0)]);
    }
    return absl::InternalError("GGUF loop lost a non-finite element");
  }
  QUANTD_RETURN_IF_ERROR(written);

  for (const LoopTensor& t : loop) {
    const TensorPlan& plan = *t.plan;
    const gguf::GgufTensorInfo& src = tensors[plan.index];
    if (t.kind == LoopTensor::Kind::kConvert) {
      gguf::QualitySums sum;
      for (int64_t c = t.first_item; c < t.first_item + t.chunks; ++c) {
        const gguf::QualitySums& q = quality[static_cast<size_t>(c)];
        sum.sum_w2 += q.sum_w2;
        sum.sum_e2 += q.sum_e2;
        sum.max_abs = std::max(sum.max_abs, q.max_abs);
      }
      TensorReport tr;
      tr.name = src.name;
      tr.shape = src.ne;
      tr.dtype_before = source.SourceDtype(plan.index);
      tr.dtype_after = gguf::TypeName(plan.out.type);
      tr.bytes_before = source.SourceBytes(plan.index);
      tr.bytes_after = plan.out.nbytes;
      if (job.measure) {
        if (sum.sum_w2 > 0) tr.rel_l2_error = std::sqrt(sum.sum_e2 / sum.sum_w2);
        if (sum.sum_w2 > 0 && sum.sum_e2 > 0) {
          tr.sqnr_db = 10.0 * std::log10(sum.sum_w2 / sum.sum_e2);
        }
        tr.max_abs_error = sum.max_abs;
      }
      report->tensors.push_back(std::move(tr));
      report->tensors_converted += 1;
      report->weights_quantized += static_cast<uint64_t>(src.Elements());
      *total_w2 += sum.sum_w2;
      *total_e2 += sum.sum_e2;
    }
    report->bytes_before += source.SourceBytes(plan.index);
    report->bytes_after += plan.out.nbytes;
  }
  return absl::OkStatus();
}

// The recipe's llama-quantize options.
absl::StatusOr<gguf::MixOptions> MixOptionsOf(const Recipe& recipe) {
  QUANTD_ASSIGN_OR_RETURN(gguf::FileType ftype, gguf::ParseFileType(recipe.gguf_type));
  gguf::MixOptions options;
  options.ftype = ftype;
  options.quantize_output_tensor = !recipe.leave_output_tensor;
  options.pure = recipe.pure;
  QUANTD_ASSIGN_OR_RETURN(options.output_tensor_type,
                          ParseUserType(recipe.output_tensor_type, "output_tensor_type"));
  QUANTD_ASSIGN_OR_RETURN(options.token_embedding_type,
                          ParseUserType(recipe.token_embedding_type, "token_embedding_type"));
  options.has_imatrix = !recipe.imatrix.empty();
  std::vector<std::string> patterns;
  for (const std::string& entry : recipe.tensor_types) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor_types entry '", entry.substr(0, 80),
                                                     "' is not REGEX=TYPE (e.g. attn_v=q8_0)"));
    }
    const std::string type_name = entry.substr(eq + 1);
    const std::optional<GgmlType> type = gguf::ParseTypeName(type_name);
    const bool is_float =
        type && (*type == GgmlType::kF16 || *type == GgmlType::kBF16 || *type == GgmlType::kF32);
    if (!type || (!gguf::TypeInfo(*type).quantized && !is_float)) {
      return absl::InvalidArgumentError(absl::StrCat("tensor_types entry '", entry.substr(0, 80),
                                                     "': '", type_name, "' is not a ggml type"));
    }
    // llama-quantize lower-cases the pattern (tensor names are lower case).
    patterns.push_back(absl::AsciiStrToLower(entry.substr(0, eq)));
    options.tensor_type_types.push_back(*type);
  }
  QUANTD_ASSIGN_OR_RETURN(options.tensor_type_patterns,
                          NamePatterns::Compile(patterns, "tensor_types"));
  if (recipe.imatrix.empty() &&
      (!recipe.imatrix_include.empty() || !recipe.imatrix_exclude.empty())) {
    return absl::InvalidArgumentError("imatrix_include / imatrix_exclude need an imatrix");
  }
  if (gguf::RequiresImportance(ftype) && recipe.imatrix.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gguf_type ", gguf::FileTypeName(ftype),
        " needs an importance matrix (imatrix): at this few bits per weight the quantizers "
        "only give usable weights when they know which columns matter, so llama-quantize refuses "
        "IQ1_S, IQ1_M, IQ2_S, IQ2_XXS, IQ2_XS and Q2_K_S without one. Compute it with "
        "llama-imatrix and pass it as imatrix"));
  }
  return options;
}

// The name llama-quantize records in quantize.imatrix.file: the path it was
// given, at most 127 characters. Quantd records the file's name without
// its directory (the same bytes when the file is given by name; a server's
// storage path says nothing to the model's users).
std::string ImatrixFileLabel(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  if (name.size() > 127) name.resize(127);
  return name;
}

// The tensor's per-column importance, checked as llama-quantize does: an
// entry must hold ne[0] * ne[2] values (token_embd.weight is exempt: a
// mismatched entry is ignored there); the 1- and 2-bit types (and Q2_K in a
// Q2_K_S mix) refuse to run without one.
absl::StatusOr<const float*> TensorImportance(const gguf::ImportanceMatrix* imatrix,
                                              const gguf::GgufTensorInfo& t, GgmlType type,
                                              gguf::FileType ftype) {
  const float* qw = nullptr;
  if (imatrix != nullptr) {
    auto it = imatrix->entries.find(t.name);
    if (it != imatrix->entries.end()) {
      const int64_t ne2 = t.ne.size() > 2 ? t.ne[2] : 1;
      const int64_t want = t.ne[0] * ne2;
      if (static_cast<int64_t>(it->second.size()) == want) {
        qw = it->second.data();
      } else if (t.name != "token_embd.weight") {
        return absl::InvalidArgumentError(
            absl::StrCat("importance matrix entry '", t.name, "' has ", it->second.size(),
                         " values but tensor '", t.name, "' needs ", want, " (ne[0] ", t.ne[0],
                         " x ne[2] ", ne2, "); was the matrix computed for another model?"));
      }
    }
  }
  const bool iq1m_tensor =
      type == GgmlType::kIQ1_M && t.name != "token_embd.weight" && t.name != "output.weight";
  const bool q2ks_tensor =
      type == GgmlType::kQ2_K && ftype == gguf::FileType::kQ2_K_S && t.name != "token_embd.weight";
  if (qw == nullptr &&
      (type == GgmlType::kIQ2_XXS || type == GgmlType::kIQ2_XS || type == GgmlType::kIQ2_S ||
       type == GgmlType::kIQ1_S || iq1m_tensor || q2ks_tensor)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", t.name, "' would be ", gguf::TypeName(type),
                     " but the importance matrix has no entry for it; these very low-bit types "
                     "give garbage without one (as llama-quantize refuses)"));
  }
  return qw;
}

// The tensors a run writes: all of the source's, or without the blocks
// --prune-layers removes, the later blocks renumbered down ("blk.5." becomes
// "blk.4." when block 3 is pruned), as newer llama-quantize does.
struct PrunedView {
  std::vector<gguf::GgufTensorInfo> infos;  // output names
  std::vector<size_t> source_index;         // infos[i] is source tensor source_index[i]
  uint32_t blocks_kept = 0;
};

// Block index of "blk.N." names, -1 otherwise.
int BlockOf(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  size_t i = 4;
  int v = 0;
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  while (i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])) && v < 100000000) {
    v = v * 10 + (name[i++] - '0');
  }
  return i < name.size() && name[i] == '.' ? v : -1;
}

absl::StatusOr<PrunedView> PruneLayers(const gguf::TensorSource& source,
                                       const std::vector<int>& prune) {
  const std::vector<gguf::GgufTensorInfo>& tensors = source.tensors();
  PrunedView view;
  const int n_layer = gguf::GetModelFacts(source.kvs(), tensors).n_layer;
  std::vector<int> sorted = prune;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  for (int b : sorted) {
    if (b < 0 || b >= n_layer) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prune_layers: block ", b, " does not exist; the model has blocks 0..", n_layer - 1));
    }
  }
  if (!sorted.empty() && static_cast<int>(sorted.size()) >= n_layer) {
    return absl::InvalidArgumentError("prune_layers would remove every block of the model");
  }
  view.blocks_kept = static_cast<uint32_t>(std::max(0, n_layer - static_cast<int>(sorted.size())));
  for (size_t i = 0; i < tensors.size(); ++i) {
    gguf::GgufTensorInfo info = tensors[i];
    const int b = BlockOf(info.name);
    if (b >= 0 && !sorted.empty()) {
      if (std::binary_search(sorted.begin(), sorted.end(), b)) continue;
      const int below =
          static_cast<int>(std::lower_bound(sorted.begin(), sorted.end(), b) - sorted.begin());
      if (below > 0) {
        info.name = absl::StrCat("blk.", b - below, info.name.substr(info.name.find('.', 4)));
      }
    }
    view.infos.push_back(std::move(info));
    view.source_index.push_back(i);
  }
  return view;
}

// One output file: its path, metadata, tensor infos (laid out when the file
// is started) and final size.
struct OutputPart {
  std::string path;
  std::vector<gguf::GgufKv> kvs;
  std::vector<gguf::GgufTensorInfo> infos;
  uint64_t total_bytes = 0;
};

bool IsSplitOutput(const Recipe& recipe) { return recipe.keep_split || recipe.split_max_bytes > 0; }

// Assigns each plan its output part and builds the parts, as llama.cpp lays
// split models out: the first part has all metadata, every part the keys
// split.no (u16), split.count (u16) and split.tensors.count (i32, the
// tensors of all parts); files are named <prefix>-00001-of-0000N.gguf with
// the prefix the output path without ".gguf". keep_split follows the
// input's parts (llama-quantize adds the split keys only for more than one
// part); split_max_bytes starts a new part when the next tensor's padded
// data would pass the limit (llama-gguf-split --split-max-size).
absl::StatusOr<std::vector<OutputPart>> PlanOutputParts(
    const Recipe& recipe, const gguf::TensorSource& source, const std::string& output_path,
    const std::vector<gguf::GgufKv>& kvs, uint64_t alignment, std::vector<TensorPlan>* plans) {
  std::vector<OutputPart> parts;
  if (!IsSplitOutput(recipe)) {
    OutputPart part{output_path, kvs, {}, 0};
    for (const TensorPlan& p : *plans) part.infos.push_back(p.out);
    parts.push_back(std::move(part));
    return parts;
  }
  if (recipe.keep_split && recipe.split_max_bytes > 0) {
    return absl::InvalidArgumentError("keep_split and split_max_bytes cannot be used together");
  }
  int n = 1;
  bool split_keys = true;
  if (recipe.keep_split) {
    n = source.SplitCount();
    for (TensorPlan& p : *plans) p.part = source.SplitOf(p.index);
    split_keys = n > 1;
  } else {
    uint64_t cur = 0;
    int part = 0;
    for (size_t i = 0; i < plans->size(); ++i) {
      TensorPlan& p = (*plans)[i];
      const uint64_t padded = gguf::AlignUp(p.out.nbytes, alignment);
      if (cur + padded > recipe.split_max_bytes) {
        if (i == 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("split_max_bytes ", recipe.split_max_bytes, " is smaller than tensor '",
                           p.out.name, "' (", padded, " bytes): a part would hold no tensor"));
        }
        ++part;
        cur = padded;
      } else {
        cur += padded;
      }
      p.part = part;
    }
    n = part + 1;
  }
  std::string prefix = output_path;
  if (absl::EndsWith(prefix, ".gguf")) prefix.resize(prefix.size() - 5);
  int32_t total_tensors = 0;
  for (size_t i = 0; i < source.tensors().size(); ++i) ++total_tensors;
  if (!recipe.prune_layers.empty()) total_tensors = static_cast<int32_t>(plans->size());
  for (int i = 0; i < n; ++i) {
    OutputPart part;
    part.path = gguf::SplitPath(prefix, i, n);
    if (i == 0) part.kvs = kvs;
    if (split_keys) {
      gguf::SetKv(&part.kvs, gguf::GgufKv::Uint16("split.no", static_cast<uint16_t>(i)));
      gguf::SetKv(&part.kvs, gguf::GgufKv::Uint16("split.count", static_cast<uint16_t>(n)));
      gguf::SetKv(&part.kvs, gguf::GgufKv::Int32("split.tensors.count", total_tensors));
    }
    parts.push_back(std::move(part));
  }
  for (const TensorPlan& p : *plans) parts[static_cast<size_t>(p.part)].infos.push_back(p.out);
  return parts;
}

}  // namespace

absl::StatusOr<Report> RunGguf(const Recipe& recipe, const std::string& input_path,
                               const std::string& output_path, const RunContext& ctx) {
  QUANTD_RETURN_IF_ERROR(MixOptionsOf(recipe).status());  // refuse bad options before any I/O
  ctx.Report(Progress{"load", 0, 0, 0, 0});
  QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<gguf::GgufFileSource> source,
                          gguf::GgufFileSource::Open(input_path));
  if (const gguf::GgufKv* split = source->file().FindKv("split.count")) {
    if (split->AsInt().value_or(1) > 1) {
      // One part of a split model: read all parts as one model.
      source.reset();
      QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<gguf::GgufSplitSource> parts,
                              gguf::GgufSplitSource::Open(input_path));
      return RunGguf(recipe, *parts, output_path, ctx);
    }
  }
  return RunGguf(recipe, *source, output_path, ctx);
}

absl::StatusOr<Report> RunGguf(const Recipe& recipe, const gguf::TensorSource& source,
                               const std::string& output_path, const RunContext& ctx) {
  QUANTD_ASSIGN_OR_RETURN(gguf::MixOptions options, MixOptionsOf(recipe));
  const gguf::FileType ftype = options.ftype;
  const std::vector<gguf::GgufTensorInfo>& tensors = source.tensors();

  // The importance matrix, filtered as --include-weights/--exclude-weights
  // ask. One that ends up empty counts as none (as in llama-quantize).
  std::optional<gguf::ImportanceMatrix> imatrix;
  if (!recipe.imatrix.empty()) {
    QUANTD_ASSIGN_OR_RETURN(gguf::ImportanceMatrix m, gguf::ReadImportanceMatrix(recipe.imatrix));
    QUANTD_RETURN_IF_ERROR(
        gguf::FilterImportanceMatrix(recipe.imatrix_include, recipe.imatrix_exclude, &m));
    if (!m.entries.empty()) imatrix = std::move(m);
  }
  options.has_imatrix = imatrix.has_value();
  if (gguf::RequiresImportance(ftype) && !imatrix) {
    return absl::InvalidArgumentError(absl::StrCat(
        "gguf_type ", gguf::FileTypeName(ftype), " needs an importance matrix, and no entry of ",
        recipe.imatrix, " is left after imatrix_include / imatrix_exclude"));
  }

  // --prune-layers: the kept tensors, blocks renumbered in order.
  QUANTD_ASSIGN_OR_RETURN(const PrunedView view, PruneLayers(source, recipe.prune_layers));

  // Decide every tensor's output type, in llama.cpp's order. The mix rules
  // see the input's block count (as llama-quantize's do) and the kept
  // tensors.
  gguf::MixPlanner planner(gguf::GetModelFacts(source.kvs(), view.infos), options);
  std::vector<TensorPlan> plans;
  std::vector<std::string> rules;
  // keep_split writes each input part's tensors to its own output part in
  // file order, and llama-quantize then plans them in that order too.
  std::vector<size_t> order = gguf::ProcessingOrder(view.infos);
  if (recipe.keep_split) {
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const size_t ia = view.source_index[a], ib = view.source_index[b];
      if (source.SplitOf(ia) != source.SplitOf(ib)) return source.SplitOf(ia) < source.SplitOf(ib);
      return tensors[ia].offset < tensors[ib].offset;
    });
  }
  for (size_t v : order) {
    const size_t idx = view.source_index[v];
    const gguf::GgufTensorInfo& src = tensors[idx];
    std::string rule;
    QUANTD_ASSIGN_OR_RETURN(GgmlType type, planner.Choose(view.infos[v], &rule));
    rules.push_back(std::move(rule));
    TensorPlan plan{idx, view.infos[v], type != src.type};
    if (plan.convert) {
      if (gguf::TypeInfo(src.type).quantized && !recipe.allow_requantize) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor '", src.name, "' is already quantized (", gguf::TypeName(src.type),
                         "); requantizing loses quality. Start from an F32/F16/BF16 model, or set "
                         "allow_requantize"));
      }
      if (!gguf::CanDequantize(src.type)) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", src.name, "' has type ",
                                                       gguf::TypeName(src.type),
                                                       ", which Quantd cannot convert from"));
      }
      if (!gguf::CanQuantize(type)) {
        // A dry run still shows the plan (the mix rules do not need kernels).
        if (!recipe.dry_run) {
          return absl::UnimplementedError(
              absl::StrCat("tensor '", src.name, "' would be ", gguf::TypeName(type),
                           ", which this build of Quantd cannot write"));
        }
        rules.back() += " (no kernel in this build)";
      }
      QUANTD_ASSIGN_OR_RETURN(plan.quant_weights,
                              TensorImportance(imatrix ? &*imatrix : nullptr, src, type, ftype));
      plan.out.type = type;
      plan.out.nbytes = static_cast<uint64_t>(gguf::RowBytes(type, src.ne[0]) * src.Rows());
    }
    plans.push_back(std::move(plan));
  }

  // Output metadata and header (sizes are known, so the header is final).
  std::vector<gguf::GgufKv> kvs = source.kvs();
  gguf::SetKv(&kvs, gguf::GgufKv::Uint32("general.quantization_version", kQuantizationVersion));
  gguf::SetKv(&kvs, gguf::GgufKv::Uint32("general.file_type", static_cast<uint32_t>(ftype)));
  for (const char* key : {"split.no", "split.count", "split.tensors.count"})
    gguf::RemoveKv(&kvs, key);
  if (imatrix) {  // what llama-quantize records about the matrix, in its order
    gguf::SetKv(&kvs,
                gguf::GgufKv::String("quantize.imatrix.file", ImatrixFileLabel(recipe.imatrix)));
    if (!imatrix->dataset.empty()) {
      gguf::SetKv(
          &kvs, gguf::GgufKv::String("quantize.imatrix.dataset", imatrix->dataset.substr(0, 127)));
    }
    gguf::SetKv(&kvs, gguf::GgufKv::Int32("quantize.imatrix.entries_count",
                                          static_cast<int32_t>(imatrix->entries.size())));
    if (imatrix->chunks > 0) {
      gguf::SetKv(&kvs, gguf::GgufKv::Int32("quantize.imatrix.chunks_count", imatrix->chunks));
    }
  }
  if (!recipe.prune_layers.empty()) {
    const gguf::ModelFacts facts = gguf::GetModelFacts(source.kvs(), view.infos);
    gguf::SetKv(&kvs, gguf::GgufKv::Uint32(facts.arch + ".block_count", view.blocks_kept));
  }
  const uint64_t alignment = source.alignment();
  // Output parts: one file, the input's parts (keep_split), or parts of at
  // most split_max_bytes of tensor data (llama-gguf-split's rule).
  QUANTD_ASSIGN_OR_RETURN(std::vector<OutputPart> parts,
                          PlanOutputParts(recipe, source, output_path, kvs, alignment, &plans));
  std::vector<PlanEntry> plan_report;
  for (size_t i = 0; i < plans.size(); ++i) {
    const TensorPlan& p = plans[i];
    const gguf::GgufTensorInfo& src = tensors[p.index];
    PlanEntry e;
    e.name = p.out.name;
    if (src.name != p.out.name) e.source_name = src.name;
    e.shape = src.ne;
    e.type_before = gguf::TypeName(src.type);
    e.type_after = gguf::TypeName(p.out.type);
    e.bytes_after = p.out.nbytes;
    e.importance = p.quant_weights != nullptr && gguf::UsesImportance(p.out.type);
    e.rule = rules[i];
    e.split = parts.size() > 1 || IsSplitOutput(recipe) ? p.part + 1 : 0;
    plan_report.push_back(std::move(e));
  }
  uint64_t total_bytes = 0;
  for (OutputPart& part : parts) {
    std::vector<gguf::GgufTensorInfo> laid_out = part.infos;
    const uint64_t data_size = gguf::LayoutTensors(&laid_out, alignment);
    part.total_bytes =
        gguf::AlignUp(gguf::SerializeHeader(part.kvs, laid_out).size(), alignment) + data_size;
    total_bytes += part.total_bytes;
  }
  if (recipe.dry_run) {
    Report report;
    report.format = "gguf";
    report.precision = gguf::FileTypeName(ftype);
    report.dry_run = true;
    report.tensors_total = plans.size();
    report.output_file_bytes = total_bytes;
    for (const TensorPlan& p : plans) {
      report.bytes_before += source.SourceBytes(p.index);
      report.bytes_after += p.out.nbytes;
      if (p.convert) {
        ++report.tensors_converted;
        report.weights_quantized += static_cast<uint64_t>(tensors[p.index].Elements());
      }
    }
    report.plan = std::move(plan_report);
    for (const OutputPart& part : parts) report.output_files.push_back(part.path);
    report.notes.push_back(absl::StrCat("dry run: nothing written; the output would be ",
                                        total_bytes, " bytes in ", parts.size(), " file(s)"));
    return report;
  }
  std::vector<std::unique_ptr<AtomicFileWriter>> writers;
  for (OutputPart& part : parts) {
    QUANTD_ASSIGN_OR_RETURN(
        gguf::GgufFileStart start,
        gguf::StartGgufFile(part.path, part.kvs, &part.infos, alignment, ctx.output_digests));
    if (start.total_bytes != part.total_bytes) {
      return absl::InternalError("GGUF output part size disagrees with its plan");
    }
    writers.push_back(std::move(start.writer));
  }

  Report report;
  report.format = "gguf";
  report.precision = gguf::FileTypeName(ftype);
  report.tensors_total = plans.size();
  report.plan = std::move(plan_report);
  for (size_t i = 0; i < parts.size(); ++i) {
    QUANTD_RETURN_IF_ERROR(writers[i]->Reserve(parts[i].total_bytes));
    writers[i]->set_write_back_interval(kWriteBackBytes);
  }
  double total_w2 = 0, total_e2 = 0;
  Progress prog{"convert", 0, plans.size(), 0, total_bytes};
  ctx.Report(prog);
  // One parallel loop per output part (a part's tensors are consecutive).
  uint64_t parts_done_bytes = 0;  // bytes of the parts already finished
  for (size_t begin = 0; begin < plans.size();) {
    QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());
    size_t end = begin + 1;
    while (end < plans.size() && plans[end].part == plans[begin].part) ++end;
    const size_t part = static_cast<size_t>(plans[begin].part);
    AtomicFileWriter* const writer = writers[part].get();
    PartJob job{&source,
                &ctx,
                plans.data() + begin,
                end - begin,
                writer,
                alignment,
                /*measure=*/recipe.report_level != ReportLevel::kNone,
                parts_done_bytes};
    QUANTD_RETURN_IF_ERROR(ConvertPart(job, &report, &prog, &total_w2, &total_e2));
    if (writer->offset() != parts[part].total_bytes) {
      return absl::InternalError(absl::StrCat("GGUF writer produced ", writer->offset(),
                                              " bytes for ", parts[part].path, ", expected ",
                                              parts[part].total_bytes));
    }
    parts_done_bytes += parts[part].total_bytes;
    begin = end;
  }
  QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());
  for (size_t i = 0; i < parts.size(); ++i) {
    if (writers[i]->offset() != parts[i].total_bytes) {
      return absl::InternalError(absl::StrCat("GGUF writer produced ", writers[i]->offset(),
                                              " bytes for ", parts[i].path, ", expected ",
                                              parts[i].total_bytes));
    }
  }
  for (auto& w : writers) QUANTD_RETURN_IF_ERROR(w->Commit());
  ctx.Report(Progress{"done", prog.tensors_done, prog.tensors_total, total_bytes, total_bytes});

  for (const OutputPart& part : parts) report.output_files.push_back(part.path);
  report.output_file_bytes = total_bytes;
  if (total_w2 > 0 && total_e2 > 0) {  // exact (e2 = 0): no finite SQNR to state
    report.notes.push_back(absl::StrFormat(
        "quality over all %d converted tensors: SQNR %.2f dB, relative L2 error %.5f",
        report.tensors_converted, 10.0 * std::log10(total_w2 / total_e2),
        std::sqrt(total_e2 / total_w2)));
  }
  if (planner.fallbacks() > 0) {
    report.notes.push_back(absl::StrCat(
        planner.fallbacks(), " tensor(s) have rows that are not a multiple of 256 and use a ",
        "32-block fallback type (as llama-quantize does)"));
  }
  return report;
}

}  // namespace quantd::core
