#include "quantd/core/report.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "quantd/core/base/json_writer.h"

namespace quantd::core {

std::string Report::ToJson(bool pretty) const {
  JsonWriter w(pretty);
  w.BeginObject();
  w.Field("format", format);
  w.Field("precision", precision);
  w.Field("recipe", recipe);
  w.Key("totals");
  w.BeginObject();
  w.Field("tensors_total", tensors_total);
  w.Field("tensors_converted", tensors_converted);
  w.Field("bytes_before", bytes_before);
  w.Field("bytes_after", bytes_after);
  w.Field(
      "compression_ratio",
      bytes_after > 0 ? static_cast<double>(bytes_before) / static_cast<double>(bytes_after) : 0.0);
  w.Field("input_file_bytes", input_file_bytes);
  w.Field("output_file_bytes", output_file_bytes);
  w.Field("weights_quantized", weights_quantized);
  w.Field("values_clamped", values_clamped);
  w.Field("values_flushed", values_flushed);
  w.Field("casts_inserted", casts_inserted);
  w.Field("seconds", seconds);
  w.EndObject();
  // The worst layers by SQNR (lowest first), when quality was measured.
  std::vector<const TensorReport*> measured;
  for (const auto& t : tensors) {
    if (t.sqnr_db) measured.push_back(&t);
  }
  std::sort(measured.begin(), measured.end(),
            [](const TensorReport* a, const TensorReport* b) { return *a->sqnr_db < *b->sqnr_db; });
  w.Key("worst_tensors");
  w.BeginArray();
  for (size_t i = 0; i < measured.size() && i < 5; ++i) {
    w.BeginObject();
    w.Field("name", measured[i]->name);
    w.Field("sqnr_db", *measured[i]->sqnr_db);
    w.EndObject();
  }
  w.EndArray();
  w.Key("output_files");
  w.BeginArray();
  for (const auto& f : output_files) w.String(f);
  w.EndArray();
  w.Key("notes");
  w.BeginArray();
  for (const auto& n : notes) w.String(n);
  w.EndArray();
  if (!kept_fp32.empty()) {
    w.Key("kept_fp32");
    w.BeginArray();
    for (const auto& k : kept_fp32) {
      w.BeginObject();
      w.Field("node", k.node);
      w.Field("op", k.op);
      w.Field("input", k.input);
      w.Field("max_abs", k.max_abs);
      w.Field("reason", k.reason);
      w.EndObject();
    }
    w.EndArray();
  }
  w.Key("tensors");
  w.BeginArray();
  for (const auto& t : tensors) {
    w.BeginObject();
    w.Field("name", t.name);
    w.Key("shape");
    w.BeginArray();
    for (int64_t d : t.shape) w.Int(d);
    w.EndArray();
    w.Field("dtype_before", t.dtype_before);
    w.Field("dtype_after", t.dtype_after);
    w.Field("bytes_before", t.bytes_before);
    w.Field("bytes_after", t.bytes_after);
    if (t.sqnr_db) w.Field("sqnr_db", *t.sqnr_db);
    if (t.rel_l2_error) w.Field("rel_l2_error", *t.rel_l2_error);
    if (t.max_abs_error) w.Field("max_abs_error", *t.max_abs_error);
    if (t.rel_output_error) w.Field("rel_output_error", *t.rel_output_error);
    if (t.values_clamped) w.Field("values_clamped", t.values_clamped);
    if (t.values_flushed) w.Field("values_flushed", t.values_flushed);
    w.EndObject();
  }
  w.EndArray();
  if (dry_run) w.Field("dry_run", true);
  if (!plan.empty()) {
    w.Key("plan");
    w.BeginArray();
    for (const auto& e : plan) {
      w.BeginObject();
      w.Field("name", e.name);
      if (!e.source_name.empty()) w.Field("source_name", e.source_name);
      w.Key("shape");
      w.BeginArray();
      for (int64_t d : e.shape) w.Int(d);
      w.EndArray();
      w.Field("type_before", e.type_before);
      w.Field("type_after", e.type_after);
      w.Field("bytes_after", e.bytes_after);
      w.Field("rule", e.rule);
      if (e.importance) w.Field("importance", true);
      if (e.split > 0) w.Field("split", static_cast<uint64_t>(e.split));
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  std::string out = w.str();
  if (pretty) out.push_back('\n');
  return out;
}

std::string FormatPlan(const std::vector<PlanEntry>& plan) {
  std::string out;
  for (const PlanEntry& e : plan) {
    absl::StrAppendFormat(&out, "%-40s %-6s -> %-7s %10u bytes  %s%s%s\n", e.name, e.type_before,
                          e.type_after, e.bytes_after, e.rule, e.importance ? " +imatrix" : "",
                          e.source_name.empty() ? "" : " (was " + e.source_name + ")");
  }
  return out;
}

}  // namespace quantd::core
