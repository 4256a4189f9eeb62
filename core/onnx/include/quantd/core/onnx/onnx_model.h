// OnnxModel: an ONNX model whose weights stay on disk until they are needed.
//
// Load() parses the .onnx protobuf and maps every external-data file
// read-only; tensor bytes are never copied at load. Passes edit the graph
// through proto() and replace tensor contents with *deferred producers* that
// run one tensor at a time inside Save(), so peak memory is bounded by the
// largest tensor rather than by the model (DESIGN.md, rules of the house).
//
// Weights are found wherever exporters put them: graph initializers, tensor
// attributes of nodes (Constant `value`, ConstantOfShape `value`, ...), and the
// same inside every subgraph (If/Loop/Scan bodies).
//
// Thread safety: not thread-safe. One OnnxModel belongs to one job.
#ifndef QUANTD_CORE_ONNX_ONNX_MODEL_H_
#define QUANTD_CORE_ONNX_ONNX_MODEL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "onnx/onnx_pb.h"
#include "quantd/core/base/half.h"
#include "quantd/core/base/mapped_file.h"
#include "quantd/core/run_context.h"

namespace quantd::core {

// A tensor that holds data somewhere in the model.
struct TensorSite {
  onnx::TensorProto* tensor = nullptr;
  onnx::GraphProto* graph = nullptr;  // graph holding the initializer or node
  onnx::NodeProto* node = nullptr;    // node whose attribute holds it; null for initializers
  std::string where;                  // "initializer 'w'", "Constant node 'c'", for messages
};

// Bytes of one tensor: a view into a mapped file or the proto, or an owned
// buffer (typed fields, deferred producers), or bytes a deferred reader
// lent. Mapped pages are released (and lent bytes given back) when the
// TensorData is destroyed.
class TensorData {
 public:
  TensorData() = default;
  // Moving hands the mapped pages over: only the destination releases them.
  TensorData(TensorData&& other) noexcept { *this = std::move(other); }
  TensorData& operator=(TensorData&& other) noexcept;
  ~TensorData();

  absl::Span<const uint8_t> bytes() const { return view_; }
  size_t size() const { return view_.size(); }
  template <typename T>
  absl::Span<const T> as() const {
    return {reinterpret_cast<const T*>(view_.data()), view_.size() / sizeof(T)};
  }
  // The bytes as a vector the caller may overwrite, when this holds its own
  // copy (a produced tensor, or one read from a protobuf); else empty and
  // nothing changes. Afterwards this is empty.
  std::vector<uint8_t> TakeOwned();

 private:
  friend class OnnxModel;
  void Release();
  absl::Span<const uint8_t> view_;
  std::vector<uint8_t> owned_;
  const MappedFile* file_ = nullptr;  // set when view_ points into a mapping
  uint64_t file_offset_ = 0;
  std::function<void()> release_;  // set when view_ is lent (LentBytes)
};

// Bytes a deferred reader lends (a span of a mapped checkpoint that outlives
// the read) or owns; `release`, when set, runs once the reader is done with
// them (it drops the mapping's pages).
struct LentBytes {
  absl::Span<const uint8_t> view;  // used when `owned` is empty
  std::vector<uint8_t> owned;
  std::function<void()> release;
};
using LendingProducer = std::function<absl::StatusOr<LentBytes>()>;

// Produces the little-endian bytes of a replaced tensor, during Save.
using TensorProducer = std::function<absl::StatusOr<std::vector<uint8_t>>()>;
// Gathers what FP16 would make of a deferred float32 tensor's values.
using RangeScanner = std::function<absl::StatusOr<FloatRangeStats>()>;
// Produces a deferred float32 tensor's values as IEEE half bytes, as
// FloatToHalfSpan narrows them, adding its counts to *stats.
using HalfProducer = std::function<absl::StatusOr<std::vector<uint8_t>>(NarrowingStats* stats)>;

// Other ways to read a deferred float32 tensor, each optional, for readers
// that can use them instead of its float32 bytes.
struct DeferredReaders {
  // The same values as [dims[1], dims[0]] (2-D only): a checkpoint's Linear
  // weight [out, in] behind a MatMul weight [in, out] (ReadTransposed).
  TensorProducer transposed = nullptr;
  // Their FloatRangeStats, gathered from the source without producing them
  // (ScanRange: the FP16 safety analysis reads every large weight so).
  RangeScanner range = nullptr;
  // Their FP16 bytes, made from the source without the float32 ones
  // (ProduceHalves: the FP16 conversion of a deferred weight).
  HalfProducer halves = nullptr;
  // `transposed` as bfloat16 bits, when those are exactly its values (a
  // BF16 checkpoint's rows, lent where they lie when they are one run): the
  // INT4 quantizer reads them instead of the float32 bytes
  // (ReadTransposedBfloat16).
  LendingProducer transposed_bfloat16 = nullptr;
};

struct SaveOptions {
  enum class ExternalData { kAuto, kAlways, kNever };
  // kAuto: external when the input used external data or the tensors total
  // more than 1 GiB; kNever fails for outputs a protobuf cannot hold (2 GiB).
  ExternalData external_data = ExternalData::kAuto;
  uint64_t size_threshold = 1024;  // smaller tensors stay inline in external mode
  uint64_t alignment = 4096;       // offset alignment inside the data file
  // Run CheckOnnxOutput (onnx_check.h) on the final graph before anything is
  // committed; a failure leaves no file behind.
  bool check = true;
};

struct SaveResult {
  std::vector<std::string> files;  // written files, model first
  uint64_t bytes = 0;              // total bytes of those files
  uint64_t tensor_bytes = 0;       // bytes of tensor data
  std::vector<std::string> notes;  // from the output check, for the report
};

class OnnxModel {
 public:
  // Loads `path` (a .onnx file) and maps its external data. Refuses, naming
  // the tensor: external locations that are absolute or escape the model's
  // folder (.., symlinks), ranges beyond the file, byte counts that differ from
  // dims x element size, unknown data types.
  static absl::StatusOr<std::unique_ptr<OnnxModel>> Load(const std::string& path);
  // Wraps an in-memory model (tests, generated models). External references
  // are resolved against `base_dir`.
  static absl::StatusOr<std::unique_ptr<OnnxModel>> FromProto(onnx::ModelProto proto,
                                                              const std::string& base_dir);

  OnnxModel(const OnnxModel&) = delete;
  OnnxModel& operator=(const OnnxModel&) = delete;
  ~OnnxModel();

  onnx::ModelProto& proto() { return proto_; }
  const onnx::ModelProto& proto() const { return proto_; }
  bool had_external_data() const { return !files_.empty(); }
  // Repairs Load() made that the user should know about (for the report).
  const std::vector<std::string>& notes() const { return notes_; }

  // Every tensor holding data, in a stable order: per graph, initializers then
  // node attributes in node order, subgraphs depth-first where they occur.
  std::vector<TensorSite> Tensors();

  // Reads the bytes of `tensor` (raw, external, deferred or typed fields).
  absl::StatusOr<TensorData> Read(const onnx::TensorProto& tensor) const;

  // Moves the data reference out of `tensor` into the returned proto (dims,
  // type and data), leaving `tensor` without data. Use with Defer() to replace
  // a tensor's contents: the returned proto stays readable through Read().
  onnx::TensorProto TakeData(onnx::TensorProto* tensor);

  // Marks `tensor` (with its final data_type and dims already set) as produced
  // by `producer` during Save(), with `readers` for the readers that can
  // take another form (transposed: 2-D tensors only; range and halves:
  // float32 tensors only).
  void Defer(onnx::TensorProto* tensor, TensorProducer producer, DeferredReaders readers = {});
  // Whether ReadTransposedBfloat16 can read `tensor`, and the bfloat16 bits
  // of its transposed layout.
  bool HasTransposedBfloat16(const onnx::TensorProto& tensor) const;
  absl::StatusOr<TensorData> ReadTransposedBfloat16(const onnx::TensorProto& tensor) const;
  // Whether ScanRange can scan `tensor`, and its range statistics.
  bool HasRangeScanner(const onnx::TensorProto& tensor) const;
  absl::StatusOr<FloatRangeStats> ScanRange(const onnx::TensorProto& tensor) const;
  // Whether ProduceHalves can make `tensor`'s FP16 bytes, and those bytes.
  bool HasHalfProducer(const onnx::TensorProto& tensor) const;
  absl::StatusOr<std::vector<uint8_t>> ProduceHalves(const onnx::TensorProto& tensor,
                                                     NarrowingStats* stats) const;
  // Whether ReadTransposed can read `tensor`, and its bytes in the transposed
  // layout.
  bool HasTransposed(const onnx::TensorProto& tensor) const;
  absl::StatusOr<TensorData> ReadTransposed(const onnx::TensorProto& tensor) const;

  // Writes the model to `path` (and `<name>.data` beside it in external mode),
  // atomically, tensor by tensor. The model is spent afterwards. Deferred
  // tensors are computed here, with ctx's threads; ctx.progress gets phase
  // "write" after each tensor and ctx.cancel is polled between tensors.
  absl::StatusOr<SaveResult> Save(const std::string& path, const SaveOptions& options,
                                  const RunContext& ctx = {});

 private:
  OnnxModel() = default;
  absl::Status Validate();
  void NormalizeOpsetImports();
  // A deferred tensor's bytes, computed now.
  static absl::StatusOr<TensorData> Produce(const TensorProducer& producer);
  // The other readers of a deferred tensor, or null when it is not one.
  const DeferredReaders* ReadersOf(const onnx::TensorProto& tensor) const;
  absl::StatusOr<const MappedFile*> MapExternal(const std::string& location,
                                                const std::string& where);

  onnx::ModelProto proto_;
  std::string base_dir_;  // folder of the .onnx file (canonical)
  std::map<std::string, std::unique_ptr<MappedFile>> files_;  // by location
  std::vector<TensorProducer> producers_;
  std::vector<DeferredReaders> readers_;  // by deferred id
  std::vector<std::string> notes_;
};

// Human-readable name of where a tensor is, e.g. "initializer 'w'".
std::string DescribeTensor(const TensorSite& site);

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_ONNX_MODEL_H_
