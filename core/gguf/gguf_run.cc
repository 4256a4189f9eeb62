// RunGguf: llama-quantize compatible conversion of one GGUF model, read
// through a TensorSource (a GGUF file, or a checkpoint seen as its F32
// conversion).
//
// Flow: open the source (a file: map, parse and validate it), decide every tensor's output
// type (MixPlanner, in llama.cpp's tensor order), pre-compute the output
// header (the file's space is reserved up front), then stream tensor data
// through an AtomicFileWriter one tensor at a time. Each tensor's rows are
// quantized in parallel chunks on the RunContext's pool; a ChunkWriter
// writes the chunks in order as they finish, by whichever loop thread
// completes the written prefix (no writer thread: the job uses exactly its
// parallelism), so the bytes do not depend on the thread count. Peak
// memory: the input's resident pages of at most two tensors (a converted
// tensor's are released while the next one is computed) plus a ring of 2-8
// output chunks (up to 512 KiB) per thread and per-thread scratch.
#include "quantd/core/gguf/gguf_run.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
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

// Writes the chunks of one tensor to the output in chunk order while a
// ParallelFor computes them in any order. Chunk c is computed into ring slot
// c % slots; the thread whose chunk extends the written prefix writes every
// finished chunk in order (one such writer at a time, outside the lock), so
// writing needs no thread of its own: a loop of parallelism P uses exactly
// its P threads, and one thread's writing overlaps the others' computing.
// The slot of chunk c is free once chunk c - slots is written; a thread that
// waits for it takes the writer's role when that is free and there is
// something to write, so the loop always makes progress. Memory: slots x
// the largest chunk, whatever the tensor size. Each chunk is written while
// it is still in the computing core's cache.
//
// Thread safety: Acquire/Done/Fail from any loop thread (distinct chunks);
// Reset and Finish from the owning thread while no loop runs.
class ChunkWriter {
 public:
  explicit ChunkWriter(AtomicFileWriter* writer) : writer_(writer) {}
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;

  // Prepares for a tensor of `chunks` chunks of at most `chunk_bytes`.
  void Reset(int64_t chunks, size_t chunk_bytes, int slots) {
    absl::MutexLock lock(&mu_);
    chunks_ = chunks;
    chunk_bytes_ = chunk_bytes;
    slots_ = std::max(slots, 1);
    const size_t need = chunk_bytes * static_cast<size_t>(slots_);
    if (ring_.size() < need) ring_.resize(need);  // grows only: no refill per tensor
    done_.assign(static_cast<size_t>(slots_), -1);
    size_.assign(static_cast<size_t>(slots_), 0);
    next_ = 0;
    writing_ = false;
    stopped_ = false;
  }

  // The buffer for chunk c (chunk_bytes long), once its slot is free; null
  // when the tensor was stopped (Fail or a write error).
  uint8_t* Acquire(int64_t c) {
    absl::MutexLock lock(&mu_);
    auto can_go = [this, c]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopped_ || c < next_ + slots_ || (!writing_ && Ready());
    };
    for (;;) {
      mu_.Await(absl::Condition(&can_go));
      if (stopped_) return nullptr;
      if (c < next_ + slots_) return ring_.data() + Slot(c) * chunk_bytes_;
      WriteReady();  // the writer's role was free and a chunk was ready
    }
  }

  // Chunk c's `bytes` are in its buffer; writes them (and any later chunks
  // already done) unless another thread is writing, which then does.
  void Done(int64_t c, size_t bytes) {
    absl::MutexLock lock(&mu_);
    done_[Slot(c)] = c;
    size_[Slot(c)] = bytes;
    if (!writing_) WriteReady();
  }

  // Chunk c produced nothing (non-finite input): nothing more is written.
  void Fail() {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
  }

  // After the loop: the first write error, else OK. When no chunk failed,
  // every chunk has been written.
  absl::Status Finish() {
    absl::MutexLock lock(&mu_);
    if (!status_.ok()) return status_;
    if (!stopped_ && next_ != chunks_) return absl::InternalError("GGUF chunk writer lost a chunk");
    return absl::OkStatus();
  }

 private:
  size_t Slot(int64_t c) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return static_cast<size_t>(c % slots_);
  }
  bool Ready() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return next_ < chunks_ && done_[Slot(next_)] == next_;
  }

  // Writes ready chunks in order, releasing the lock around each write.
  void WriteReady() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    writing_ = true;
    while (!stopped_ && Ready()) {
      const uint8_t* data = ring_.data() + Slot(next_) * chunk_bytes_;
      const size_t bytes = size_[Slot(next_)];
      mu_.Unlock();
      absl::Status st = writer_->Write(data, bytes);
      mu_.Lock();
      if (!st.ok()) {
        status_ = std::move(st);
        stopped_ = true;
        break;
      }
      ++next_;
    }
    writing_ = false;
  }

  AtomicFileWriter* const writer_;  // used by the thread holding the writer's role

  absl::Mutex mu_;
  std::vector<uint8_t> ring_;  // slots_ x chunk_bytes_; each slot is owned by
                               // its chunk's computing thread, then the writer
  int64_t chunks_ ABSL_GUARDED_BY(mu_) = 0;
  size_t chunk_bytes_ = 0;  // set by Reset, read by loop threads after Acquire
  int slots_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<int64_t> done_ ABSL_GUARDED_BY(mu_);  // per slot: the chunk done in it
  std::vector<size_t> size_ ABSL_GUARDED_BY(mu_);
  int64_t next_ ABSL_GUARDED_BY(mu_) = 0;  // chunks [0, next_) are written
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
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
  const int threads = ctx.Parallelism();
  for (size_t i = 0; i < parts.size(); ++i) {
    QUANTD_RETURN_IF_ERROR(writers[i]->Reserve(parts[i].total_bytes));
    writers[i]->set_write_back_interval(kWriteBackBytes);
  }
  std::vector<uint8_t> out_buf;  // a kept tensor computed from a checkpoint
  // Output goes straight from the chunks to the part's file (ChunkWriter:
  // no writer thread; a loop's threads take turns writing in order).
  std::unique_ptr<ChunkWriter> chunk_writer;
  int cur_part = -1;
  uint64_t parts_done_bytes = 0;  // bytes of the parts already finished
  auto finish_part = [&]() -> absl::Status {
    if (cur_part < 0) return absl::OkStatus();
    const OutputPart& part = parts[static_cast<size_t>(cur_part)];
    if (writers[static_cast<size_t>(cur_part)]->offset() != part.total_bytes) {
      return absl::InternalError(
          absl::StrCat("GGUF writer produced ", writers[static_cast<size_t>(cur_part)]->offset(),
                       " bytes for ", part.path, ", expected ", part.total_bytes));
    }
    parts_done_bytes += part.total_bytes;
    return absl::OkStatus();
  };
  std::vector<std::vector<float>> src_scratch(threads), deq_scratch(threads);
  double total_w2 = 0, total_e2 = 0;
  Progress prog{"convert", 0, plans.size(), 0, total_bytes};
  ctx.Report(prog);

  // The converted tensor whose input pages are still to be released (-1:
  // none). Releasing them (unmapping a few MiB to GiB of page-table entries)
  // takes ~0.1 ms per 1 MB of F32 input: done between tensors it is a
  // serial step (11 ms of a 0.16 s 2-thread Q8_0 job), so the next tensor's
  // loop does it, on the thread that takes its first chunk, while the other
  // threads compute.
  int64_t pending_release = -1;
  for (const TensorPlan& plan : plans) {
    QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());
    if (plan.part != cur_part) {
      QUANTD_RETURN_IF_ERROR(finish_part());
      cur_part = plan.part;
      chunk_writer = std::make_unique<ChunkWriter>(writers[static_cast<size_t>(cur_part)].get());
    }
    AtomicFileWriter* const writer = writers[static_cast<size_t>(cur_part)].get();
    const gguf::GgufTensorInfo& src = tensors[plan.index];
    // Stored bytes where the source has them (a GGUF file), else F32 rows
    // computed on demand (a checkpoint).
    const uint8_t* src_data = source.StoredBytes(plan.index).data();
    if (!plan.convert && src_data != nullptr) {
      source.Prefetch(plan.index, 0, src.nbytes);
      QUANTD_RETURN_IF_ERROR(writer->Write(src_data, src.nbytes));
      QUANTD_RETURN_IF_ERROR(writer->PadTo(alignment));
      source.Release(plan.index);
    } else if (!plan.convert) {
      // Kept as is, from computed values: the rows are the output bytes
      // (the type can only be F32, as a source without stored bytes has).
      if (src.type != GgmlType::kF32) {
        return absl::InternalError(absl::StrCat(
            "tensor '", src.name, "' has no stored bytes and type ", gguf::TypeName(src.type)));
      }
      out_buf.resize(src.nbytes);
      if (src.Rows() > 0)
        source.ReadRows(plan.index, 0, src.Rows(), reinterpret_cast<float*>(out_buf.data()));
      QUANTD_RETURN_IF_ERROR(writer->Write(out_buf.data(), out_buf.size()));
      QUANTD_RETURN_IF_ERROR(writer->PadTo(alignment));
      source.Release(plan.index);
    } else {
      const GgmlType in_type = src.type;
      const GgmlType out_type = plan.out.type;
      const int64_t ne0 = src.ne[0];
      const int64_t rows = src.Rows();
      const int64_t in_row_bytes = gguf::RowBytes(in_type, ne0);
      const int64_t out_row_bytes = gguf::RowBytes(out_type, ne0);
      const int64_t rows_per_chunk =
          std::max<int64_t>(1, kChunkElements / std::max<int64_t>(ne0, 1));
      const int64_t chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
      const size_t chunk_bytes = static_cast<size_t>(rows_per_chunk * out_row_bytes);
      const int slots_per_thread = static_cast<int>(
          std::clamp<size_t>(kRingBytesPerThread / std::max<size_t>(chunk_bytes, 1),
                             kMinSlotsPerThread, kMaxSlotsPerThread));
      chunk_writer->Reset(chunks, chunk_bytes, slots_per_thread * threads);
      const bool direct = src_data != nullptr && in_type == GgmlType::kF32;  // rows used in place
      const int64_t out_block = gguf::TypeInfo(out_type).block_size;
      const int64_t out_type_size = gguf::TypeInfo(out_type).type_size;
      for (int t = 0; t < threads; ++t) {
        if (!direct) src_scratch[t].resize(static_cast<size_t>(rows_per_chunk * ne0));
        deq_scratch[t].resize(static_cast<size_t>(gguf::kQualitySpan));
      }
      std::vector<gguf::QualitySums> quality(static_cast<size_t>(chunks));
      // A quantized type would turn NaN/Inf into garbage scales: refuse them
      // (float outputs carry them over unchanged, as llama-quantize does).
      const bool check_finite = gguf::TypeInfo(out_type).quantized;
      std::vector<int64_t> first_non_finite(static_cast<size_t>(chunks), -1);
      // report_level none: no quality figures (summary and full: all of them).
      const bool measure = recipe.report_level != ReportLevel::kNone;
      const int64_t release = std::exchange(pending_release, -1);
      if (chunks == 0 && release >= 0) source.Release(static_cast<size_t>(release));
      ctx.ParallelFor(chunks, [&](int64_t c, int thread) {
        if (c == 0 && release >= 0) source.Release(static_cast<size_t>(release));
        const int64_t r0 = c * rows_per_chunk;
        const int64_t nr = std::min(rows_per_chunk, rows - r0);
        const int64_t n = nr * ne0;
        const float* x;
        // Each chunk's thread makes its input pages resident (page-cache
        // mapping is a good part of a fast type's time; this way the threads
        // share it instead of one doing the whole tensor before the loop).
        source.Prefetch(plan.index, static_cast<uint64_t>(r0 * in_row_bytes),
                        static_cast<uint64_t>(nr * in_row_bytes));
        if (direct) {
          x = reinterpret_cast<const float*>(src_data + r0 * in_row_bytes);
        } else if (src_data != nullptr) {
          gguf::DequantizeRow(in_type, src_data + r0 * in_row_bytes, src_scratch[thread].data(), n);
          x = src_scratch[thread].data();
        } else {
          source.ReadRows(plan.index, r0, nr, src_scratch[thread].data());
          x = src_scratch[thread].data();
        }
        uint8_t* y = chunk_writer->Acquire(c);
        // The quantizers get finite rows only: converting a NaN scale to an
        // integer code is undefined behaviour (the sanitizer fuzz build stops
        // on it), so every chunk of a quantized type is checked before (or,
        // in the one-pass kernels, block by block as) it is quantized.
        // Every chunk is checked even after one failed, so the error names
        // the first non-finite element whatever the thread count.
        if (y == nullptr) {  // the tensor failed: nothing more is written
          if (const int64_t bad = check_finite ? FirstNonFiniteF32(x, n) : -1; bad >= 0) {
            first_non_finite[static_cast<size_t>(c)] = r0 * ne0 + bad;
          }
          return;
        }
        gguf::QualitySums q;
        int64_t bad = -1;
        if (plan.quant_weights == nullptr || !gguf::UsesImportance(out_type)) {
          // One pass (check, quantize, measure) where the type has it. (A
          // type without a weighted quantizer ignores the importance.)
          bad = gguf::QuantizeRowChecked(out_type, x, y, n, measure ? &q : nullptr,
                                         deq_scratch[thread].data());
        } else if (bad = check_finite ? FirstNonFiniteF32(x, n) : -1; bad < 0) {
          // Rows of one matrix (a 3-D tensor has ne[2] of them) share its
          // importance; quantize each run of such rows together.
          const int64_t ne1 = src.ne.size() > 1 ? src.ne[1] : 1;
          const int64_t ne2 = src.ne.size() > 2 ? src.ne[2] : 1;
          for (int64_t r = r0; r < r0 + nr;) {
            const int64_t mat = (r / ne1) % ne2;
            const int64_t end = std::min(r0 + nr, (r / ne1 + 1) * ne1);
            gguf::QuantizeRows(out_type, x + (r - r0) * ne0, y + (r - r0) * out_row_bytes, end - r,
                               ne0, plan.quant_weights + mat * ne0);
            r = end;
          }
          if (measure) {
            // Compare the stored values with the source one span of
            // kQualitySpan at a time, so the dequantized values stay in L1.
            float* back = deq_scratch[thread].data();
            for (int64_t i0 = 0; i0 < n; i0 += gguf::kQualitySpan) {
              const int64_t len = std::min(gguf::kQualitySpan, n - i0);
              gguf::DequantizeRow(out_type, y + i0 / out_block * out_type_size, back, len);
              gguf::AddQualitySums(x + i0, back, len, &q);
            }
          }
        }
        if (bad >= 0) {
          first_non_finite[static_cast<size_t>(c)] = r0 * ne0 + bad;
          chunk_writer->Fail();
          return;
        }
        if (measure) quality[static_cast<size_t>(c)] = q;
        chunk_writer->Done(c, static_cast<size_t>(nr * out_row_bytes));
      });
      const absl::Status written = chunk_writer->Finish();
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
      QUANTD_RETURN_IF_ERROR(written);
      pending_release = static_cast<int64_t>(plan.index);  // by the next tensor's loop
      QUANTD_RETURN_IF_ERROR(writer->PadTo(alignment));

      gguf::QualitySums sum;
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
    prog.bytes_done = parts_done_bytes + writer->offset();
    ctx.Report(prog);
  }
  if (pending_release >= 0) source.Release(static_cast<size_t>(pending_release));
  QUANTD_RETURN_IF_ERROR(finish_part());
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
