// RunGguf: llama-quantize compatible conversion of one GGUF model, read
// through a TensorSource (a GGUF file, or a checkpoint seen as its F32
// conversion).
//
// Flow: open the source (a file: map, parse and validate it), decide every tensor's output
// type (MixPlanner, in llama.cpp's tensor order), pre-compute the output
// header, then stream tensor data through an AtomicFileWriter one tensor at
// a time. Each tensor's rows are quantized in parallel chunks on the
// RunContext's pool; chunks write to fixed positions of the tensor's output
// buffer, so the bytes do not depend on the thread count. Peak memory: the input's resident pages
// (released after each tensor) plus one output tensor and per-thread scratch.
#include "quantd/core/gguf/gguf_run.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
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
#include "quantd/core/gguf/quants.h"
#include "quantd/core/gguf/tensor_source.h"

namespace quantd::core {
namespace {

using gguf::GgmlType;

constexpr uint32_t kQuantizationVersion = 2;  // GGML_QNT_VERSION
constexpr int64_t kChunkElements = 1 << 16;   // work unit for the pool

struct TensorPlan {
  size_t index;  // in the source's tensors()
  gguf::GgufTensorInfo out;
  bool convert;
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

// Quality sums for one chunk.
struct ChunkQuality {
  double sum_w2 = 0;
  double sum_e2 = 0;
  double max_abs = 0;
};

// Adds sum x^2, sum (x-y)^2 and max |x-y| over n values to *q. Lane-split
// float partial sums over short spans (vectorisable, fixed order) feed
// double totals, so the result is deterministic and accurate.
void AddQualitySums(const float* x, const float* y, int64_t n, ChunkQuality* q) {
  constexpr int kLanes = 16;
  constexpr int64_t kSpan = 4096;
  for (int64_t i0 = 0; i0 < n; i0 += kSpan) {
    const int64_t end = std::min(n, i0 + kSpan);
    float w2[kLanes] = {}, e2[kLanes] = {}, emax[kLanes] = {};
    int64_t i = i0;
    for (; i + kLanes <= end; i += kLanes) {
      for (int k = 0; k < kLanes; ++k) {
        const float w = x[i + k];
        const float e = w - y[i + k];
        w2[k] += w * w;
        e2[k] += e * e;
        const float ae = std::fabs(e);
        emax[k] = emax[k] > ae ? emax[k] : ae;
      }
    }
    for (; i < end; ++i) {
      const float e = x[i] - y[i];
      w2[0] += x[i] * x[i];
      e2[0] += e * e;
      emax[0] = std::max(emax[0], std::fabs(e));
    }
    for (int k = 0; k < kLanes; ++k) {
      q->sum_w2 += w2[k];
      q->sum_e2 += e2[k];
      q->max_abs = std::max(q->max_abs, static_cast<double>(emax[k]));
    }
  }
}

// Writes tensor data (each padded to the alignment) in order. With `async`
// a background thread does the writing, so writing tensor k overlaps
// computing tensor k+1; at most one write is in flight, so two output
// buffers suffice. Thread safety: Put/Finish from the owning thread only.
class TensorSink {
 public:
  TensorSink(AtomicFileWriter* writer, uint64_t alignment, const gguf::TensorSource* input,
             bool async)
      : writer_(writer), alignment_(alignment), input_(input), written_(writer->offset()) {
    if (async) thread_ = std::thread([this] { Loop(); });
  }
  TensorSink(const TensorSink&) = delete;
  TensorSink& operator=(const TensorSink&) = delete;
  ~TensorSink() {
    if (!thread_.joinable()) return;
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }

  // Queues `size` bytes at `data`, which must stay valid until the next Put
  // or Finish returns. Afterwards input tensor `release` is released
  // (kNoRelease: none).
  static constexpr size_t kNoRelease = ~size_t{0};
  absl::Status Put(const uint8_t* data, uint64_t size, size_t release) {
    Job job{data, size, release};
    if (!thread_.joinable()) {
      absl::Status st = Write(job);
      written_.store(writer_->offset());
      return st;
    }
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](TensorSink* s) ABSL_NO_THREAD_SAFETY_ANALYSIS { return !s->has_job_; }, this));
    if (!status_.ok()) return status_;
    job_ = job;
    has_job_ = true;
    return absl::OkStatus();
  }

  // Waits until everything queued is written.
  absl::Status Finish() {
    if (!thread_.joinable()) return absl::OkStatus();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](TensorSink* s) ABSL_NO_THREAD_SAFETY_ANALYSIS { return !s->has_job_; }, this));
    return status_;
  }

  // Output bytes written so far (for progress).
  uint64_t written() const { return written_.load(); }

 private:
  struct Job {
    const uint8_t* data;
    uint64_t size;
    size_t release;
  };

  absl::Status Write(const Job& job) {
    QUANTD_RETURN_IF_ERROR(writer_->Write(job.data, job.size));
    QUANTD_RETURN_IF_ERROR(writer_->PadTo(alignment_));
    if (job.release != kNoRelease) input_->Release(job.release);
    return absl::OkStatus();
  }

  void Loop() {
    for (;;) {
      Job job;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](TensorSink* s) ABSL_NO_THREAD_SAFETY_ANALYSIS { return s->has_job_ || s->stop_; },
            this));
        if (!has_job_) return;  // stopped
        job = job_;
      }
      absl::Status st = status_ok_ ? Write(job) : absl::OkStatus();
      written_.store(writer_->offset());
      absl::MutexLock lock(&mu_);
      if (!st.ok()) {
        status_ = st;
        status_ok_ = false;
      }
      has_job_ = false;
    }
  }

  AtomicFileWriter* const writer_;  // used by one thread at a time
  const uint64_t alignment_;
  const gguf::TensorSource* const input_;
  std::atomic<uint64_t> written_;
  std::thread thread_;

  absl::Mutex mu_;
  bool has_job_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  Job job_ ABSL_GUARDED_BY(mu_) = {};
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  bool status_ok_ = true;  // written by the sink thread only
};

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
  return options;
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
      return absl::InvalidArgumentError(absl::StrCat(
          input_path,
          " is one part of a split GGUF model; merge it first (llama-gguf-split --merge)"));
    }
  }
  return RunGguf(recipe, *source, output_path, ctx);
}

absl::StatusOr<Report> RunGguf(const Recipe& recipe, const gguf::TensorSource& source,
                               const std::string& output_path, const RunContext& ctx) {
  QUANTD_ASSIGN_OR_RETURN(const gguf::MixOptions options, MixOptionsOf(recipe));
  const gguf::FileType ftype = options.ftype;
  const std::vector<gguf::GgufTensorInfo>& tensors = source.tensors();

  // Decide every tensor's output type, in llama.cpp's order.
  gguf::MixPlanner planner(gguf::GetModelFacts(source.kvs(), tensors), options);
  std::vector<TensorPlan> plans;
  for (size_t idx : gguf::ProcessingOrder(tensors)) {
    const gguf::GgufTensorInfo& src = tensors[idx];
    QUANTD_ASSIGN_OR_RETURN(GgmlType type, planner.Choose(src));
    TensorPlan plan{idx, src, type != src.type};
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
  std::vector<gguf::GgufTensorInfo> out_infos;
  for (const auto& p : plans) out_infos.push_back(p.out);
  const uint64_t alignment = source.alignment();
  QUANTD_ASSIGN_OR_RETURN(gguf::GgufFileStart start,
                          gguf::StartGgufFile(output_path, kvs, &out_infos, alignment));
  std::unique_ptr<AtomicFileWriter> writer = std::move(start.writer);
  const uint64_t total_bytes = start.total_bytes;

  Report report;
  report.format = "gguf";
  report.precision = gguf::FileTypeName(ftype);
  report.tensors_total = plans.size();
  const int threads = ctx.Parallelism();
  std::vector<uint8_t> out_bufs[2];  // declared before the sink: it may still read one
  int which = 0;
  // With more than one thread, output is written in the background.
  TensorSink sink(writer.get(), alignment, &source, threads > 1);
  std::vector<std::vector<float>> src_scratch(threads), deq_scratch(threads);
  double total_w2 = 0, total_e2 = 0;
  Progress prog{"convert", 0, plans.size(), writer->offset(), total_bytes};
  ctx.Report(prog);

  for (const TensorPlan& plan : plans) {
    QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());
    const gguf::GgufTensorInfo& src = tensors[plan.index];
    // Stored bytes where the source has them (a GGUF file), else F32 rows
    // computed on demand (a checkpoint).
    const uint8_t* src_data = source.StoredBytes(plan.index).data();
    source.Prefetch(plan.index);
    if (!plan.convert && src_data != nullptr) {
      QUANTD_RETURN_IF_ERROR(sink.Put(src_data, src.nbytes, plan.index));
    } else if (!plan.convert) {
      // Kept as is, from computed values: the rows are the output bytes
      // (the type can only be F32, as a source without stored bytes has).
      std::vector<uint8_t>& out_buf = out_bufs[which];
      if (threads > 1) which ^= 1;
      if (src.type != GgmlType::kF32) {
        return absl::InternalError(absl::StrCat(
            "tensor '", src.name, "' has no stored bytes and type ", gguf::TypeName(src.type)));
      }
      out_buf.resize(src.nbytes);
      if (src.Rows() > 0)
        source.ReadRows(plan.index, 0, src.Rows(), reinterpret_cast<float*>(out_buf.data()));
      QUANTD_RETURN_IF_ERROR(sink.Put(out_buf.data(), out_buf.size(), plan.index));
    } else {
      std::vector<uint8_t>& out_buf = out_bufs[which];
      if (threads > 1) which ^= 1;  // double-buffer only for the background writer
      const GgmlType in_type = src.type;
      const GgmlType out_type = plan.out.type;
      const int64_t ne0 = src.ne[0];
      const int64_t rows = src.Rows();
      const int64_t in_row_bytes = gguf::RowBytes(in_type, ne0);
      const int64_t out_row_bytes = gguf::RowBytes(out_type, ne0);
      const int64_t rows_per_chunk =
          std::max<int64_t>(1, kChunkElements / std::max<int64_t>(ne0, 1));
      const int64_t chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
      out_buf.resize(plan.out.nbytes);
      const bool direct = src_data != nullptr && in_type == GgmlType::kF32;  // rows used in place
      for (int t = 0; t < threads; ++t) {
        if (!direct) src_scratch[t].resize(static_cast<size_t>(rows_per_chunk * ne0));
        deq_scratch[t].resize(static_cast<size_t>(rows_per_chunk * ne0));
      }
      std::vector<ChunkQuality> quality(static_cast<size_t>(chunks));
      // A quantized type would turn NaN/Inf into garbage scales: refuse them
      // (float outputs carry them over unchanged, as llama-quantize does).
      const bool check_finite = gguf::TypeInfo(out_type).quantized;
      std::vector<int64_t> first_non_finite(static_cast<size_t>(chunks), -1);
      // report_level none: no quality figures (summary and full: all of them).
      const bool measure = recipe.report_level != ReportLevel::kNone;
      ctx.ParallelFor(chunks, [&](int64_t c, int thread) {
        const int64_t r0 = c * rows_per_chunk;
        const int64_t nr = std::min(rows_per_chunk, rows - r0);
        const int64_t n = nr * ne0;
        const float* x;
        if (direct) {
          x = reinterpret_cast<const float*>(src_data + r0 * in_row_bytes);
        } else if (src_data != nullptr) {
          gguf::DequantizeRow(in_type, src_data + r0 * in_row_bytes, src_scratch[thread].data(), n);
          x = src_scratch[thread].data();
        } else {
          source.ReadRows(plan.index, r0, nr, src_scratch[thread].data());
          x = src_scratch[thread].data();
        }
        uint8_t* y = out_buf.data() + r0 * out_row_bytes;
        if (!measure) {
          // No quality pass to carry the finite check: scan first.
          const int64_t bad = check_finite ? FirstNonFiniteF32(x, n) : -1;
          if (bad >= 0) {
            first_non_finite[static_cast<size_t>(c)] = r0 * ne0 + bad;
            return;
          }
          gguf::QuantizeRow(out_type, x, y, n);
          return;
        }
        gguf::QuantizeRow(out_type, x, y, n);
        // Quality: compare the stored values with the source.
        float* back = deq_scratch[thread].data();
        gguf::DequantizeRow(out_type, y, back, n);
        ChunkQuality q;
        AddQualitySums(x, back, n, &q);
        quality[static_cast<size_t>(c)] = q;
        // NaN/Inf in the chunk makes sum x^2 non-finite: the check rides on
        // the quality pass instead of a scan of its own. (The quantizers
        // handle such blocks as ggml does; the output is discarded.) A
        // finite sum can also overflow the float partial sums, so the scan
        // of the slow path decides.
        if (check_finite && !std::isfinite(q.sum_w2)) {
          const int64_t bad = FirstNonFiniteF32(x, n);
          if (bad >= 0) first_non_finite[static_cast<size_t>(c)] = r0 * ne0 + bad;
        }
      });
      for (int64_t bad : first_non_finite) {
        if (bad < 0) continue;
        std::vector<float> row(static_cast<size_t>(ne0));
        if (src_data != nullptr) {
          gguf::DequantizeRow(in_type, src_data + (bad / ne0) * in_row_bytes, row.data(), ne0);
        } else {
          source.ReadRows(plan.index, bad / ne0, 1, row.data());
        }
        return NonFiniteWeightError(src.name, bad, row[static_cast<size_t>(bad % ne0)]);
      }
      source.Release(plan.index);
      QUANTD_RETURN_IF_ERROR(sink.Put(out_buf.data(), out_buf.size(), TensorSink::kNoRelease));

      ChunkQuality sum;
      for (const auto& q : quality) {
        sum.sum_w2 += q.sum_w2;
        sum.sum_e2 += q.sum_e2;
        sum.max_abs = std::max(sum.max_abs, q.max_abs);
      }
      TensorReport tr;
      tr.name = src.name;
      tr.shape = src.ne;
      tr.dtype_before = source.SourceDtype(plan.index);
      tr.dtype_after = gguf::TypeName(out_type);
      tr.bytes_before = source.SourceBytes(plan.index);
      tr.bytes_after = plan.out.nbytes;
      if (measure) {
        if (sum.sum_w2 > 0) tr.rel_l2_error = std::sqrt(sum.sum_e2 / sum.sum_w2);
        if (sum.sum_w2 > 0 && sum.sum_e2 > 0) {
          tr.sqnr_db = 10.0 * std::log10(sum.sum_w2 / sum.sum_e2);
        }
        tr.max_abs_error = sum.max_abs;
      }
      report.tensors.push_back(std::move(tr));
      report.tensors_converted += 1;
      report.weights_quantized += static_cast<uint64_t>(src.Elements());
      total_w2 += sum.sum_w2;
      total_e2 += sum.sum_e2;
    }
    report.bytes_before += source.SourceBytes(plan.index);
    report.bytes_after += plan.out.nbytes;
    prog.tensors_done += 1;
    prog.bytes_done = sink.written();
    ctx.Report(prog);
  }
  QUANTD_RETURN_IF_ERROR(sink.Finish());
  QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());
  if (writer->offset() != total_bytes) {
    return absl::InternalError(
        absl::StrCat("GGUF writer produced ", writer->offset(), " bytes, expected ", total_bytes));
  }
  QUANTD_RETURN_IF_ERROR(writer->Commit());
  ctx.Report(Progress{"done", prog.tensors_done, prog.tensors_total, total_bytes, total_bytes});

  report.output_files = {output_path};
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
