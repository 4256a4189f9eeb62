// The FP32 -> FP16 safety analysis: which nodes of an ONNX graph would
// compute a different result in FP16 in a way that corrupts the model, so
// the float pass keeps them in FP32 (Casts at their boundary).
//
// Three hazards, checked in this order for every node:
//  - "constant_out_of_range": the node reads a FLOAT constant with a finite
//    value beyond +-65504 (it would be clamped).
//  - "underflow": a constant the node reads would flush to zero in FP16 and
//    that changes the node's result: a Div divisor with an element that
//    flushes (division by zero); an Add/Max operand all of whose nonzero
//    elements flush (an epsilon guard that vanishes; the nodes that then
//    read the guarded value through Sqrt/reshapes are kept too); a
//    Mul/MatMul/Gemm/Conv weight or scale at least half of whose nonzero
//    elements flush (the output collapses); a BatchNormalization whose
//    denominator var + epsilon flushes on some channel.
//  - "activation_out_of_range": a value known to exceed +-65504 for a
//    realistic input (see ValueBound) would reach a reader as +-inf and change
//    its result: the node that brings such a value back inside the range
//    (a Mul by 1e-3, a MatMul, a normalization) is kept, and so, backwards,
//    is every node writing a value beyond the range that a kept node or a
//    graph output needs. Readers that saturate or compare (Sigmoid, Tanh,
//    Clip, Exp, comparisons; Softmax of large negative values, as additive
//    masks are) compute the same from +-inf and need nothing.
//
// Thread-safety: not thread-safe; one analysis per pass, used by one thread.
#ifndef QUANTD_CORE_ONNX_FP16_SAFETY_H_
#define QUANTD_CORE_ONNX_FP16_SAFETY_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "onnx/onnx_pb.h"
#include "quantd/core/onnx/onnx_model.h"
#include "quantd/core/run_context.h"

namespace quantd::core {

// What the analysis knows about one FLOAT value.
//
// [lo, hi] is sound: every element the value can ever hold lies in it
// (infinite ends when nothing bounds it).
// [reach_lo, reach_hi], when has_reach, are values the tensor does take for
// a realistic input: both ends are attained (or approached) by some element.
// They come from constants, from saturating ops whose input is unbounded
// (Sigmoid and Softmax reach 0 and 1, Tanh -1 and 1, Clip its limits), and
// from elementwise arithmetic with constants. A value nothing bounds (a graph
// input, the output of an op the analysis does not model) is assumed to reach
// [-1, 1]: activations of a working network take values of order one, so a
// chain of constants whose product alone leaves the FP16 range is caught
// (e.g. Div by 1e-5, Mul by 300 then by 300), while an unbounded upper bound
// alone never is. `uniform`: every element can take every reach value (then a
// per-element constant can be combined with it element by element).
struct ValueBound {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool has_reach = true;
  double reach_lo = -1;
  double reach_hi = 1;
  bool uniform = true;
  bool assumed = true;  // the [-1, 1] default of a value nothing bounds
  // Set while the value depends on an epsilon constant that FP16 flushes to
  // zero (the vanished guard's largest magnitude, else 0).
  double lost_guard = 0;
  // Set when the value, without a reach, is written by a node that reads a
  // value beyond the FP16 range and its own range is not proven back inside
  // on that side (the magnitude read, else 0): it is beyond the range too.
  double carried_lo = 0, carried_hi = 0;
};

// A reason to keep one node in FP32.
struct Fp16Hazard {
  std::string reason;  // "constant_out_of_range" | "underflow" | "activation_out_of_range"
  std::string input;   // the constant or value (or attribute) that is the cause
  double max_abs = 0;  // its magnitude: the largest |value| concerned
};

class Fp16SafetyAnalysis {
 public:
  // `model` reads constant data, and large constants are scanned on ctx's
  // threads; both must outlive the analysis.
  Fp16SafetyAnalysis(const OnnxModel* model, const RunContext& ctx) : model_(model), ctx_(ctx) {}

  Fp16SafetyAnalysis(const Fp16SafetyAnalysis&) = delete;
  Fp16SafetyAnalysis& operator=(const Fp16SafetyAnalysis&) = delete;

  // Registers the constants of `g` (initializers and Constant values).
  // REQUIRES: `g` outlives the analysis.
  void AddConstants(const onnx::GraphProto& g);

  // Analyzes the nodes of `g` (after the graphs enclosing it, whose bounds
  // its nodes may read): returns the hazard of every node FP16 would break.
  // REQUIRES: `g` outlives the analysis; the returned pointers are its nodes.
  std::unordered_map<const onnx::NodeProto*, Fp16Hazard> Analyze(const onnx::GraphProto& g);

  // Visits `n` (nodes in graph order, after AddConstants): computes the
  // bounds of its outputs and returns the node's own hazard (a constant
  // beyond the range, an underflow), if any. Analyze() calls it.
  std::optional<Fp16Hazard> Visit(const onnx::NodeProto& n);

  // The bound of a value (the default for unknown values).
  ValueBound Bound(const std::string& value) const;

 private:
  // Summary of one FLOAT constant, computed once.
  struct ConstantStats {
    bool ok = false;            // readable FLOAT data
    uint64_t count = 0;         // elements
    uint64_t nonzero = 0;       // nonzero elements
    uint64_t flushed = 0;       // nonzero elements that FP16 rounds to zero
    double max_flushed = 0;     // the largest |value| among the flushed
    double min = 0, max = 0;    // over finite values
    double max_abs = 0;         // over finite values
    bool finite = true;         // no inf/NaN
    std::vector<float> values;  // kept for small constants (<= kKeepValues)
  };
  static constexpr uint64_t kKeepValues = 1 << 16;

  const ConstantStats* Stats(const std::string& value);
  std::optional<Fp16Hazard> Underflow(const onnx::NodeProto& n);
  void ComputeBounds(const onnx::NodeProto& n);
  ValueBound ConstantBound(const ConstantStats& s) const;
  ValueBound Elementwise(const onnx::NodeProto& n) const;
  std::optional<ValueBound> BatchNorm(const onnx::NodeProto& n);
  bool IsConstant(const std::string& value) const { return constants_.count(value) > 0; }
  // A FLOAT constant whose stats were computed (Visit computes its inputs').
  bool IsFloatConstant(const std::string& value) const;

  const OnnxModel* const model_;
  const RunContext& ctx_;
  std::unordered_map<std::string, const onnx::TensorProto*> constants_;
  std::unordered_map<const onnx::TensorProto*, ConstantStats> stats_;
  std::unordered_map<std::string, ValueBound> bounds_;
};

}  // namespace quantd::core

#endif  // QUANTD_CORE_ONNX_FP16_SAFETY_H_
