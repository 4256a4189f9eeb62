// Report: what one conversion did, for people (JSON) and dashboards.
//
// Filled by the core while it runs; plain data, copyable, not thread-safe.
#ifndef QUANTD_CORE_REPORT_H_
#define QUANTD_CORE_REPORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace quantd::core {

// One tensor that a pass changed.
struct TensorReport {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype_before;  // "FLOAT", "FLOAT16", "F32", "Q4_K", ...
  std::string dtype_after;
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;
  // Quality (quantizing passes; unset for lossless widening). A figure is set
  // only when it was computed and is finite: an exact result has no sqnr_db.
  std::optional<double> sqnr_db;       // 10 log10(sum w^2 / sum (w - w')^2)
  std::optional<double> rel_l2_error;  // ||w - w'|| / ||w||
  std::optional<double> max_abs_error;
  std::optional<double> rel_output_error;  // ||XW - XW'|| / ||XW||, fixed Gaussian X
  uint64_t values_clamped = 0;
  uint64_t values_flushed = 0;
};

// One tensor of a GGUF conversion's plan (every tensor of the output, in
// file order, whether converted or copied): what it becomes and why.
struct PlanEntry {
  std::string name;         // the output name (renumbered after pruned layers)
  std::string source_name;  // the input name when it differs
  std::vector<int64_t> shape;
  std::string type_before;  // "F32", ...
  std::string type_after;   // "Q4_K", ...
  uint64_t bytes_after = 0;
  bool importance = false;  // quantized with an importance-matrix entry
  std::string rule;         // "mix", "tensor_type[i]", "output_tensor_type", "copy", ...
  int split = 0;            // output part (0 without split output)
};

// A node the FP16 conversion kept in FP32 (Casts at its boundary) because
// FP16 would change its result: a constant it reads is outside the FP16
// range, a constant it needs flushes to zero, or an activation it reads or
// writes is known to exceed the range.
struct KeptFp32 {
  std::string node;
  std::string op;
  std::string input;   // the constant or value that is the cause
  double max_abs = 0;  // its magnitude (the largest |value| concerned)
  // "constant_out_of_range" | "underflow" | "activation_out_of_range"
  std::string reason = "constant_out_of_range";
};

// The plan as text, one line per output tensor: name, type before -> after,
// bytes, the rule that chose the type ("+imatrix" when an importance-matrix
// entry is used, "(was NAME)" for renamed tensors). Each line ends in '\n'.
std::string FormatPlan(const std::vector<PlanEntry>& plan);

struct Report {
  std::string format;              // "onnx" | "gguf"
  std::string precision;           // "fp16", "int4", "Q4_K_M", ...
  std::string recipe;              // canonical recipe text
  uint64_t tensors_total = 0;      // tensors holding data in the model
  uint64_t tensors_converted = 0;  // tensors a pass changed
  uint64_t bytes_before = 0;       // tensor bytes in
  uint64_t bytes_after = 0;        // tensor bytes out
  uint64_t input_file_bytes = 0;
  uint64_t output_file_bytes = 0;
  uint64_t weights_quantized = 0;  // elements of quantized tensors
  uint64_t values_clamped = 0;
  uint64_t values_flushed = 0;
  uint64_t casts_inserted = 0;
  double seconds = 0;
  std::vector<std::string> output_files;
  std::vector<std::string> notes;  // things the user should know (skipped nodes, ...)
  std::vector<KeptFp32> kept_fp32;  // FP16 only; in the JSON only when not empty
  std::vector<TensorReport> tensors;
  std::vector<PlanEntry> plan;  // GGUF: the per-tensor plan (empty for other formats)
  bool dry_run = false;         // the plan only; nothing was written

  // {"format":..., "totals":{...}, "tensors":[...]}; pretty: indented.
  std::string ToJson(bool pretty = true) const;
};

}  // namespace quantd::core

#endif  // QUANTD_CORE_REPORT_H_
