// DeferredWeight: one weight the quantize pass rewrote, whose codes, scales
// and zero points are computed only when OnnxModel::Save() asks for the first
// of them, so peak memory stays bounded by the largest tensor.
//
// Internal to core/onnx; not installed. A DeferredWeight is shared by the
// producers of its output tensors and used from the thread that runs Save();
// it is not thread-safe.
#ifndef QUANTD_CORE_ONNX_DEFERRED_WEIGHT_H_
#define QUANTD_CORE_ONNX_DEFERRED_WEIGHT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "onnx/onnx_pb.h"
#include "quantd/core/onnx/onnx_model.h"
#include "quantd/core/onnx/onnx_types.h"
#include "quantd/core/quant/weight_quantizer.h"
#include "quantd/core/report.h"
#include "quantd/core/run_context.h"

namespace quantd::core {

// How one weight is quantized; fixed by the rewrite that creates it.
struct WeightSpec {
  quant::MatrixSource geometry;  // W[K, N] as the kernels read it; bytes set at compute time
  bool int4 = true;
  quant::Int4Options int4_options;
  quant::Int8Options int8_options;
  int32_t scale_type = kOnnxFloat;  // int8: type of the scale tensor
  // MatMulNBits bits=8 (int8_options unused): codes, scales and zero points
  // of quant::QuantizeBlockwise8Matrix with int4_options' block size and
  // symmetry.
  bool nbits8 = false;
  // With nbits8: codes [N, K] without the zero padding of each row's last
  // block (GatherBlockQuantized's uint8 layout, bits=8).
  bool nbits8_unpadded = false;
};

// The output tensors of a DeferredWeight, in producer slot order.
enum WeightOutput : int { kCodes = 0, kScales = 1, kZeroPoints = 2 };

struct DeferredWeight {
  WeightSpec spec;
  OnnxModel* model = nullptr;              // reads `src`; outlives the weight
  std::shared_ptr<onnx::TensorProto> src;  // data source, set after graph edits
  const RunContext* ctx = nullptr;         // threads and cancel; outlives Compute()
  Report* report = nullptr;                // receives quality at report_index
  size_t report_index = 0;
  // Quality figures: none (the entry keeps only sizes), or measured at
  // quality_level (quality.h).
  bool measure_quality = true;
  quant::QualityLevel quality_level = quant::QualityLevel::kSampled;

  bool done = false;
  absl::Status status;
  std::vector<std::vector<uint8_t>> outputs;  // indexed by WeightOutput

  // Reads `src`, quantizes it per `spec` into `outputs`, records quality in
  // report->tensors[report_index] and releases `src`.
  absl::Status Compute();
};

// A producer for output `slot` of `weight`: computes the weight on first use
// and hands over (moves out) that output. Each slot is asked for once.
TensorProducer ProducerFor(std::shared_ptr<DeferredWeight> weight, WeightOutput slot);

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_DEFERRED_WEIGHT_H_
