// Weight quantization pass (INT4 MatMulNBits / QDQ, INT8 weight-only QDQ and
// dynamic). The graph is rewritten at once; tensor numerics run later, one
// weight at a time, in deferred producers inside OnnxModel::Save(), so peak
// memory stays bounded by the largest tensor.
#include "quantd/core/onnx/quantize_pass.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "quantd/core/base/half.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/onnx/graph_utils.h"
#include "quantd/core/onnx/onnx_types.h"
#include "quantd/core/quant/weight_quantizer.h"

namespace quantd::core {
namespace {

using quant::Int4Options;
using quant::Int8Options;
using quant::MatrixSource;

// ---------------------------------------------------------------- helpers --

void SetIntAttr(onnx::NodeProto* n, const std::string& name, int64_t v) {
  for (auto& a : *n->mutable_attribute()) {
    if (a.name() == name) {
      a.set_i(v);
      return;
    }
  }
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

bool IsDefaultDomain(const std::string& d) { return d.empty() || d == "ai.onnx"; }

int64_t DefaultOpset(const onnx::ModelProto& m) {
  const int64_t v = DefaultOpsetVersion(m);
  return v > 0 ? v : 1;
}

void CollectOps(const onnx::GraphProto& g, std::set<std::string>* ops) {
  for (const auto& n : g.node()) {
    if (IsDefaultDomain(n.domain())) ops->insert(n.op_type());
    for (const auto& a : n.attribute()) {
      if (a.has_g()) CollectOps(a.g(), ops);
      for (const auto& sg : a.graphs()) CollectOps(sg, ops);
    }
  }
}

// Default-domain ops whose meaning changed (attributes became inputs, axis
// semantics, defaults) at the given opset version. Raising a model across
// one of these versions would silently change what it computes.
struct OpsetChange {
  const char* op;
  int version;
};
constexpr OpsetChange kBreakingChanges[] = {
    {"Upsample", 10}, {"Slice", 10}, {"TopK", 10}, {"Clip", 11}, {"Pad", 11}, {"Resize", 11},
    {"Scatter", 11}, {"Dropout", 12}, {"Softmax", 13}, {"LogSoftmax", 13}, {"Hardmax", 13},
    {"Squeeze", 13}, {"Unsqueeze", 13}, {"ReduceSum", 13}, {"Split", 13}, {"RoiAlign", 16},
    {"Split", 18}, {"ReduceMean", 18}, {"ReduceMax", 18}, {"ReduceMin", 18}, {"ReduceProd", 18},
    {"ReduceL1", 18}, {"ReduceL2", 18}, {"ReduceLogSum", 18}, {"ReduceLogSumExp", 18},
    {"ReduceSumSquare", 18}, {"GridSample", 20}, {"DFT", 20}, {"GroupNormalization", 21},
};

// OK when every default-domain op of `m` means the same at `to` as at `from`;
// otherwise the ops and versions that block the raise.
absl::Status CheckOpsetRaise(const onnx::ModelProto& m, int64_t from, int64_t to) {
  std::set<std::string> ops;
  CollectOps(m.graph(), &ops);
  std::vector<std::string> blockers;
  for (const auto& c : kBreakingChanges) {
    if (from < c.version && c.version <= to && ops.count(c.op) > 0) {
      blockers.push_back(absl::StrCat(c.op, " (changed in opset ", c.version, ")"));
    }
  }
  if (blockers.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the model uses opset ", from, " and cannot be raised to opset ", to,
      " without changing its meaning: ", absl::StrJoin(blockers, ", ")));
}

void SetDefaultOpset(onnx::ModelProto* m, int64_t v) {
  bool found = false;
  for (auto& o : *m->mutable_opset_import()) {
    if (IsDefaultDomain(o.domain())) {
      o.set_version(v);
      found = true;
    }
  }
  if (!found) {
    auto* o = m->add_opset_import();
    o->set_domain("");
    o->set_version(v);
  }
  const int64_t ir = v >= 21 ? 10 : v >= 19 ? 9 : v >= 15 ? 8 : v >= 13 ? 7 : 6;
  if (m->ir_version() < ir) m->set_ir_version(ir);
}

void EnsureMsDomain(onnx::ModelProto* m) {
  for (const auto& o : m->opset_import()) {
    if (o.domain() == "com.microsoft") return;
  }
  auto* o = m->add_opset_import();
  o->set_domain("com.microsoft");
  o->set_version(1);
}

// ------------------------------------------------------------------ jobs --

// Transposes a row-major [rows, cols] matrix of 4-bit codes (two per byte,
// low nibble = even flat index) to [cols, rows], packed the same way.
std::vector<uint8_t> TransposeNibbles(const std::vector<uint8_t>& in, int64_t rows, int64_t cols) {
  std::vector<uint8_t> out((rows * cols + 1) / 2, 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t src = r * cols + c, dst = c * rows + r;
      const uint8_t code = (in[src >> 1] >> ((src & 1) * 4)) & 0x0F;
      out[dst >> 1] |= static_cast<uint8_t>(code << ((dst & 1) * 4));
    }
  }
  return out;
}

// Transposes a row-major [rows, cols] matrix of `size`-byte elements.
std::vector<uint8_t> TransposeElements(const std::vector<uint8_t>& in, int64_t rows, int64_t cols,
                                       size_t size) {
  std::vector<uint8_t> out(in.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      std::memcpy(out.data() + (c * rows + r) * size, in.data() + (r * cols + c) * size, size);
    }
  }
  return out;
}

// One weight to quantize: computed on first use by any of its producers.
struct Job {
  OnnxModel* model = nullptr;
  std::shared_ptr<onnx::TensorProto> src;  // data source, set after graph edits
  MatrixSource geometry;                   // bytes filled at compute time
  bool int4 = true;
  Int4Options int4_options;
  Int8Options int8_options;
  int32_t scale_type = kOnnxFloat;  // int8: type of the scale tensor
  // int4 embedding: the kernel writes the QDQ layout of W[K=hidden, N=vocab]
  // (codes [K, N], scales/zero points [blocks, N]); transpose all three to
  // [vocab, hidden] / [vocab, blocks] for DequantizeLinear(axis=1).
  bool transpose_int4_outputs = false;
  const RunContext* ctx = nullptr;
  Report* report = nullptr;
  size_t report_index = 0;

  bool done = false;
  absl::Status status;
  std::vector<std::vector<uint8_t>> outputs;  // [codes, scales, zero points]

  absl::Status Compute() {
    QUANTD_ASSIGN_OR_RETURN(TensorData data, model->Read(*src));
    MatrixSource s = geometry;
    s.bytes = data.bytes();
    TensorReport quality;
    outputs.assign(3, {});
    if (int4) {
      QUANTD_ASSIGN_OR_RETURN(quant::Int4Result r,
                              quant::QuantizeInt4Matrix(s, int4_options, *ctx, &quality));
      outputs[0] = std::move(r.packed);
      outputs[1] = std::move(r.scales);
      outputs[2] = std::move(r.zero_points);
      if (transpose_int4_outputs) {
        const int64_t k = geometry.k, n = geometry.n;
        const int64_t blocks = (k + int4_options.block_size - 1) / int4_options.block_size;
        outputs[0] = TransposeNibbles(outputs[0], k, n);
        outputs[1] = TransposeElements(outputs[1], blocks, n, outputs[1].size() / (blocks * n));
        if (!int4_options.symmetric) outputs[2] = TransposeNibbles(outputs[2], blocks, n);
      }
    } else {
      QUANTD_ASSIGN_OR_RETURN(quant::Int8Result r,
                              quant::QuantizeInt8Matrix(s, int8_options, *ctx, &quality));
      outputs[0] = std::move(r.data);
      const size_t n = r.params.size();
      if (scale_type == kOnnxFloat16) {
        outputs[1].resize(n * 2);
        for (size_t i = 0; i < n; ++i) {
          uint16_t h = FloatToHalf(r.params[i].scale);
          std::memcpy(outputs[1].data() + 2 * i, &h, 2);
        }
      } else {
        outputs[1].resize(n * 4);
        for (size_t i = 0; i < n; ++i) std::memcpy(outputs[1].data() + 4 * i, &r.params[i].scale, 4);
      }
      outputs[2].resize(n);
      for (size_t i = 0; i < n; ++i) outputs[2][i] = static_cast<uint8_t>(r.params[i].zero_point);
    }
    TensorReport& entry = report->tensors[report_index];
    entry.sqnr_db = quality.sqnr_db;
    entry.rel_l2_error = quality.rel_l2_error;
    entry.max_abs_error = quality.max_abs_error;
    entry.rel_output_error = quality.rel_output_error;
    src.reset();  // the input mapping of this tensor is no longer needed
    return absl::OkStatus();
  }
};

TensorProducer ProducerFor(std::shared_ptr<Job> job, int slot) {
  return [job, slot]() -> absl::StatusOr<std::vector<uint8_t>> {
    if (!job->done) {
      job->status = job->Compute();
      job->done = true;
    }
    if (!job->status.ok()) return job->status;
    return std::move(job->outputs[slot]);
  };
}

// A constant weight feeding a node: the tensor holding data and how it got there.
struct ConstWeight {
  onnx::TensorProto* tensor = nullptr;
  onnx::NodeProto* constant = nullptr;   // Constant node holding it, or null
  onnx::NodeProto* transpose = nullptr;  // folded 2-D Transpose, or null
  std::string value;                     // the name the consumer reads
};

enum class Scheme { kNone, kInt4, kInt8 };

class QuantizePass {
 public:
  QuantizePass(OnnxModel* model, const Recipe& recipe, Report* report, const RunContext& ctx)
      : model_(model), recipe_(recipe), report_(report), ctx_(ctx),
        names_(model->proto().graph()) {}

  absl::Status Run();

 private:
  void CountUses(const onnx::GraphProto& g);
  std::string UniqueName(const std::string& base) { return names_.Unique(base); }
  const onnx::NodeProto* FindLmHead();
  absl::Status PrepareOpsets();
  absl::Status ProcessGraph(onnx::GraphProto* g);
  bool ResolveWeight(onnx::GraphProto* g, const std::string& value, ConstWeight* out);
  std::string SkipReason(const onnx::NodeProto& n, const ConstWeight& w);

  absl::Status RewriteMatMulNBits(onnx::GraphProto* g, onnx::NodeProto* n, const ConstWeight& w,
                                  bool transposed);
  absl::Status RewriteInt4Qdq(onnx::GraphProto* g, onnx::NodeProto* n, const ConstWeight& w,
                              bool transposed);
  absl::Status RewriteInt8Qdq(onnx::GraphProto* g, onnx::NodeProto* n, const ConstWeight& w,
                              bool transposed);
  absl::Status RewriteInt8Dynamic(onnx::GraphProto* g, onnx::NodeProto* n, const ConstWeight& w,
                                  bool transposed);
  absl::Status ProcessEmbedding(onnx::GraphProto* g, onnx::NodeProto* n);
  bool HasEmbedding(onnx::GraphProto* g);
  absl::Status RewriteEmbeddingInt4(onnx::GraphProto* g, onnx::NodeProto* n, const ConstWeight& w);
  absl::Status RewriteEmbeddingInt8(onnx::GraphProto* g, onnx::NodeProto* n, const ConstWeight& w);

  std::shared_ptr<Job> NewJob(const ConstWeight& w, const std::string& dtype_after);
  onnx::TensorProto* AddOutput(onnx::GraphProto* g, const std::string& name, int32_t type,
                               std::vector<int64_t> dims, const std::shared_ptr<Job>& job,
                               int slot);
  onnx::NodeProto MakeNode(const std::string& op, const std::string& name,
                           std::vector<std::string> inputs, std::vector<std::string> outputs);
  std::string AddInt8Dequantize(onnx::GraphProto* g, onnx::NodeProto* n, const ConstWeight& w,
                                const std::shared_ptr<Job>& job, int32_t qtype,
                                std::vector<int64_t> q_dims, int64_t channels, int64_t axis);
  absl::Status FinishSources();
  void RebuildNodes(onnx::GraphProto* g);

  OnnxModel* const model_;
  const Recipe& recipe_;
  Report* const report_;
  const RunContext& ctx_;

  int64_t opset_ = 1;
  bool int8_per_channel_ = false;   // per-channel QDQ/dynamic possible (opset >= 13 or dynamic)
  bool used_ms_domain_ = false;
  bool embedding_int4_ = false;     // INT4 embeddings (opset 21 blocked DequantizeLinear)
  const onnx::NodeProto* lm_head_ = nullptr;
  NameTable names_;
  std::unordered_map<std::string, int> uses_;
  std::set<std::string> op_types_;
  std::vector<std::regex> exclude_regex_;
  // Work gathered while rewriting.
  std::map<const onnx::NodeProto*, std::vector<onnx::NodeProto>> before_;
  std::map<const onnx::NodeProto*, std::vector<onnx::NodeProto>> replace_;
  std::map<std::string, std::vector<std::string>> cache_;  // (scheme, weight) -> names
  std::map<std::string, std::string> float_inputs_;        // fp16 value -> its float32 cast
  std::map<std::string, std::array<std::string, 3>> dynamic_inputs_;  // value -> q, scale, zp
  struct SourceUse {
    ConstWeight weight;
    std::vector<std::shared_ptr<Job>> jobs;
  };
  std::map<onnx::TensorProto*, SourceUse> sources_;
  std::set<const onnx::NodeProto*> transposes_;  // folded Transposes
  std::map<std::string, std::vector<std::string>> skipped_;  // reason -> node names
  std::set<std::string> notes_;
};

void QuantizePass::CountUses(const onnx::GraphProto& g) {
  for (const auto& v : g.output()) uses_[v.name()]++;
  for (const auto& n : g.node()) {
    for (const auto& s : n.input()) {
      if (!s.empty()) uses_[s]++;
    }
    for (const auto& a : n.attribute()) {
      if (a.has_g()) CountUses(a.g());
      for (const auto& sg : a.graphs()) CountUses(sg);
    }
  }
}

// The LM head: the MatMul/Gemm with a constant weight closest to the logits
// output (the first graph output whose name contains "logits"); none when the
// model has no such output.
const onnx::NodeProto* QuantizePass::FindLmHead() {
  const onnx::GraphProto& g = model_->proto().graph();
  if (g.output_size() == 0) return nullptr;
  std::string target;
  for (const auto& o : g.output()) {
    if (absl::StrContains(absl::AsciiStrToLower(o.name()), "logits")) {
      target = o.name();
      break;
    }
  }
  if (target.empty()) return nullptr;  // not a language model: no LM head
  std::unordered_map<std::string, const onnx::NodeProto*> producer;
  for (const auto& n : g.node()) {
    for (const auto& o : n.output()) producer[o] = &n;
  }
  std::set<std::string> inits;
  for (const auto& t : g.initializer()) inits.insert(t.name());
  std::vector<std::string> frontier = {target};
  std::set<std::string> seen;
  for (int depth = 0; depth < 8 && !frontier.empty(); ++depth) {
    std::vector<std::string> next;
    for (const auto& v : frontier) {
      auto it = producer.find(v);
      if (it == producer.end() || !seen.insert(v).second) continue;
      const onnx::NodeProto* n = it->second;
      if ((n->op_type() == "MatMul" || n->op_type() == "Gemm") && IsDefaultDomain(n->domain()) &&
          n->input_size() >= 2) {
        const std::string& b = n->input(1);
        auto p = producer.find(b);
        bool constant = inits.count(b) > 0 ||
                        (p != producer.end() &&
                         (p->second->op_type() == "Constant" || p->second->op_type() == "Transpose"));
        if (constant) return n;
      }
      for (const auto& in : n->input()) {
        if (!in.empty() && inits.count(in) == 0) next.push_back(in);
      }
    }
    frontier = std::move(next);
  }
  return nullptr;
}

bool QuantizePass::ResolveWeight(onnx::GraphProto* g, const std::string& value, ConstWeight* out) {
  for (const auto& in : g->input()) {
    if (in.name() == value) return false;  // an initializer a caller may override
  }
  for (auto& t : *g->mutable_initializer()) {
    if (t.name() == value) {
      out->tensor = &t;
      out->value = value;
      return true;
    }
  }
  for (auto& n : *g->mutable_node()) {
    if (n.output_size() != 1 || n.output(0) != value) continue;
    if (n.op_type() == "Constant" && IsDefaultDomain(n.domain())) {
      for (auto& a : *n.mutable_attribute()) {
        if (a.name() == "value" && a.has_t()) {
          out->tensor = a.mutable_t();
          out->constant = &n;
          out->value = value;
          return true;
        }
      }
      return false;
    }
    if (n.op_type() == "Transpose" && IsDefaultDomain(n.domain()) && n.input_size() == 1) {
      const auto* perm = FindAttr(n, "perm");
      if (perm != nullptr && !(perm->ints_size() == 2 && perm->ints(0) == 1 && perm->ints(1) == 0)) {
        return false;
      }
      ConstWeight inner;
      if (!ResolveWeight(g, n.input(0), &inner) || inner.transpose != nullptr) return false;
      if (inner.tensor->dims_size() != 2) return false;
      *out = inner;
      out->transpose = &n;
      out->value = value;
      return true;
    }
    return false;
  }
  return false;
}

std::shared_ptr<Job> QuantizePass::NewJob(const ConstWeight& w, const std::string& dtype_after) {
  auto job = std::make_shared<Job>();
  job->model = model_;
  job->ctx = &ctx_;
  job->report = report_;
  job->report_index = report_->tensors.size();
  const onnx::TensorProto& t = *w.tensor;
  TensorReport entry;
  entry.name = w.value;
  entry.shape.assign(t.dims().begin(), t.dims().end());
  entry.dtype_before = OnnxTypeName(t.data_type());
  entry.dtype_after = dtype_after;
  auto count = ElementCount({t.dims().data(), static_cast<size_t>(t.dims_size())});
  const uint64_t n = count.ok() ? *count : 0;
  entry.bytes_before = n * (OnnxTypeBits(t.data_type()) / 8);
  report_->tensors.push_back(std::move(entry));
  report_->tensors_converted++;
  report_->weights_quantized += n;
  report_->bytes_before += n * (OnnxTypeBits(t.data_type()) / 8);
  auto& use = sources_[w.tensor];
  use.weight = w;
  use.weight.transpose = nullptr;
  use.jobs.push_back(job);
  if (w.transpose != nullptr) transposes_.insert(w.transpose);
  return job;
}

onnx::TensorProto* QuantizePass::AddOutput(onnx::GraphProto* g, const std::string& name,
                                           int32_t type, std::vector<int64_t> dims,
                                           const std::shared_ptr<Job>& job, int slot) {
  onnx::TensorProto* t = g->add_initializer();
  t->set_name(name);
  t->set_data_type(type);
  uint64_t count = 1;
  for (int64_t d : dims) {
    t->add_dims(d);
    count *= static_cast<uint64_t>(d);
  }
  auto bytes = ByteSize(type, count);
  const uint64_t b = bytes.ok() ? *bytes : 0;
  report_->tensors[job->report_index].bytes_after += b;
  report_->bytes_after += b;
  model_->Defer(t, ProducerFor(job, slot));
  return t;
}

onnx::NodeProto QuantizePass::MakeNode(const std::string& op, const std::string& name,
                                       std::vector<std::string> inputs,
                                       std::vector<std::string> outputs) {
  onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name(UniqueName(name));
  for (auto& s : inputs) n.add_input(s);
  for (auto& s : outputs) n.add_output(s);
  return n;
}

// Geometry of W[K, N] as the consumer reads it, from the stored tensor.
MatrixSource Geometry(const onnx::TensorProto& t, bool transposed) {
  MatrixSource s;
  s.onnx_type = t.data_type();
  const int64_t r0 = t.dims(0), r1 = t.dims(1);
  if (!transposed) {
    s.k = r0;
    s.n = r1;
    s.row_stride = r1;
    s.col_stride = 1;
  } else {
    s.k = r1;
    s.n = r0;
    s.row_stride = 1;
    s.col_stride = r1;
  }
  return s;
}

// A Conv weight W[M, C/group, k...] as an INT8 matrix: channel m is one
// contiguous column of the view; codes keep W's shape.
MatrixSource ConvGeometry(const onnx::TensorProto& w, Int8Options* o,
                          std::vector<int64_t>* q_dims) {
  int64_t rest = 1;
  for (int i = 1; i < w.dims_size(); ++i) rest *= w.dims(i);
  MatrixSource geo;
  geo.onnx_type = w.data_type();
  geo.k = rest;
  geo.n = w.dims(0);
  geo.row_stride = 1;
  geo.col_stride = rest;
  o->out_row_stride = 1;
  o->out_col_stride = rest;
  q_dims->assign(w.dims().begin(), w.dims().end());
  return geo;
}

// The recipe's INT4 knobs for one output layout.
Int4Options Int4OptionsFor(const Recipe& recipe, quant::Int4Layout layout) {
  Int4Options o;
  o.block_size = recipe.block_size;
  o.symmetric = recipe.symmetric;
  o.layout = layout;
  o.algorithm = recipe.algorithm == QuantAlgorithm::kSearch ? quant::Int4Algorithm::kSearch
                                                            : quant::Int4Algorithm::kRtn;
  return o;
}

absl::Status QuantizePass::RewriteMatMulNBits(onnx::GraphProto* g, onnx::NodeProto* n,
                                              const ConstWeight& w, bool transposed) {
  const int32_t type = w.tensor->data_type();
  MatrixSource geo = Geometry(*w.tensor, transposed);
  const Int4Options o = Int4OptionsFor(recipe_, quant::Int4Layout::kMatMulNBits);
  const auto sizes = quant::ComputeInt4Sizes(geo.k, geo.n, o);
  const std::string key = absl::StrCat(reinterpret_cast<uintptr_t>(g), "/nbits/", w.value, "/", transposed);
  auto& names = cache_[key];
  if (names.empty()) {
    auto job = NewJob(w, "UINT4 (MatMulNBits)");
    job->geometry = geo;
    job->int4 = true;
    job->int4_options = o;
    names.push_back(UniqueName(w.value + "_Q4"));
    names.push_back(UniqueName(w.value + "_scales"));
    AddOutput(g, names[0], kOnnxUint8, {geo.n, sizes.blocks, o.block_size / 2}, job, 0);
    AddOutput(g, names[1], type, {sizes.scale_count}, job, 1);
    if (!o.symmetric) {
      names.push_back(UniqueName(w.value + "_zero_points"));
      AddOutput(g, names[2], kOnnxUint8, {sizes.zero_point_bytes}, job, 2);
    }
  }
  const bool gemm = n->op_type() == "Gemm";
  std::string bias = gemm && n->input_size() > 2 ? n->input(2) : "";
  const std::string a = n->input(0);
  std::string y = n->output(0);
  std::vector<onnx::NodeProto> nodes;
  std::string mm_out = y;
  if (!bias.empty()) mm_out = UniqueName(y + "_MatMulNBits");
  std::vector<std::string> inputs = {a, names[0], names[1]};
  if (names.size() > 2) inputs.push_back(names[2]);
  onnx::NodeProto q = MakeNode("MatMulNBits", n->name().empty() ? y + "_Q4" : n->name() + "_Q4",
                               inputs, {mm_out});
  q.set_domain("com.microsoft");
  SetIntAttr(&q, "K", geo.k);
  SetIntAttr(&q, "N", geo.n);
  SetIntAttr(&q, "bits", 4);
  SetIntAttr(&q, "block_size", o.block_size);
  if (recipe_.accuracy_level > 0) SetIntAttr(&q, "accuracy_level", recipe_.accuracy_level);
  nodes.push_back(std::move(q));
  if (!bias.empty()) nodes.push_back(MakeNode("Add", y + "_bias", {mm_out, bias}, {y}));
  replace_[n] = std::move(nodes);
  used_ms_domain_ = true;
  return absl::OkStatus();
}

absl::Status QuantizePass::RewriteInt4Qdq(onnx::GraphProto* g, onnx::NodeProto* n,
                                          const ConstWeight& w, bool transposed) {
  const int32_t type = w.tensor->data_type();
  MatrixSource geo = Geometry(*w.tensor, transposed);
  const Int4Options o = Int4OptionsFor(recipe_, quant::Int4Layout::kQdq);
  const auto sizes = quant::ComputeInt4Sizes(geo.k, geo.n, o);
  const std::string key = absl::StrCat(reinterpret_cast<uintptr_t>(g), "/qdq4/", w.value, "/", transposed);
  auto& names = cache_[key];
  if (names.empty()) {
    auto job = NewJob(w, o.symmetric ? "INT4" : "UINT4");
    job->geometry = geo;
    job->int4 = true;
    job->int4_options = o;
    names.push_back(UniqueName(w.value + "_Q4"));
    names.push_back(UniqueName(w.value + "_scales"));
    AddOutput(g, names[0], o.symmetric ? kOnnxInt4 : kOnnxUint4, {geo.k, geo.n}, job, 0);
    AddOutput(g, names[1], type, {sizes.blocks, geo.n}, job, 1);
    std::vector<std::string> inputs = {names[0], names[1]};
    if (!o.symmetric) {
      std::string zp = UniqueName(w.value + "_zero_points");
      AddOutput(g, zp, kOnnxUint4, {sizes.blocks, geo.n}, job, 2);
      inputs.push_back(zp);
    }
    std::string out = UniqueName(w.value + "_DQ");
    onnx::NodeProto dq = MakeNode("DequantizeLinear", out, inputs, {out});
    SetIntAttr(&dq, "axis", 0);
    SetIntAttr(&dq, "block_size", o.block_size);
    names.push_back(out);
    before_[n].push_back(std::move(dq));
  }
  n->set_input(1, names.back());
  if (n->op_type() == "Gemm") SetIntAttr(n, "transB", 0);
  return absl::OkStatus();
}

absl::Status QuantizePass::RewriteInt8Qdq(onnx::GraphProto* g, onnx::NodeProto* n,
                                          const ConstWeight& w, bool transposed) {
  const int32_t type = w.tensor->data_type();
  const bool conv = n->op_type() == "Conv";
  MatrixSource geo;
  std::vector<int64_t> q_dims;
  Int8Options o;
  o.type = recipe_.int8_weight_type == Int8WeightType::kQUInt8 ? quant::Int8Type::kUint8
                                                               : quant::Int8Type::kInt8;
  o.reduce_range = recipe_.reduce_range;
  // The INT8 LM head of an INT4 model is always per channel when the opset allows.
  o.per_channel = (recipe_.per_channel || recipe_.precision == Precision::kInt4) && int8_per_channel_;
  int axis = 1;
  if (conv) {
    geo = ConvGeometry(*w.tensor, &o, &q_dims);
    axis = 0;
  } else {
    geo = Geometry(*w.tensor, transposed);
    o.out_row_stride = geo.n;
    o.out_col_stride = 1;
    q_dims = {geo.k, geo.n};
  }
  // FP16 scales need DequantizeLinear-19; older opsets dequantize to float
  // and cast back.
  const bool fp16 = type == kOnnxFloat16;
  const int32_t scale_type = fp16 && opset_ >= 19 ? kOnnxFloat16 : kOnnxFloat;
  const std::string key = absl::StrCat(reinterpret_cast<uintptr_t>(g), "/qdq8/", w.value, "/", transposed);
  auto& names = cache_[key];
  if (names.empty()) {
    const int32_t qtype = o.type == quant::Int8Type::kInt8 ? kOnnxInt8 : kOnnxUint8;
    auto job = NewJob(w, OnnxTypeName(qtype));
    job->geometry = geo;
    job->int4 = false;
    job->int8_options = o;
    job->scale_type = scale_type;
    names.push_back(AddInt8Dequantize(g, n, w, job, qtype, q_dims, geo.n, axis));
  }
  n->set_input(1, names.back());
  if (n->op_type() == "Gemm") SetIntAttr(n, "transB", 0);
  return absl::OkStatus();
}

// Adds the INT8 codes (`qtype`, `q_dims`), scales and zero points of `job`
// (per channel along `axis` when the job is per channel, else per tensor) and
// a DequantizeLinear in front of `n`, plus a Cast back to FLOAT16 when the
// scales cannot be FP16. Returns the value the consumer reads.
std::string QuantizePass::AddInt8Dequantize(onnx::GraphProto* g, onnx::NodeProto* n,
                                            const ConstWeight& w, const std::shared_ptr<Job>& job,
                                            int32_t qtype, std::vector<int64_t> q_dims,
                                            int64_t channels, int64_t axis) {
  const bool per_channel = job->int8_options.per_channel;
  std::string q = UniqueName(w.value + "_quantized");
  std::string s = UniqueName(w.value + "_scale");
  std::string z = UniqueName(w.value + "_zero_point");
  std::vector<int64_t> p_dims;
  if (per_channel) p_dims = {channels};
  AddOutput(g, q, qtype, std::move(q_dims), job, 0);
  AddOutput(g, s, job->scale_type, p_dims, job, 1);
  AddOutput(g, z, qtype, p_dims, job, 2);
  std::string out = UniqueName(w.value + "_DQ");
  onnx::NodeProto dq = MakeNode("DequantizeLinear", out, {q, s, z}, {out});
  if (per_channel) SetIntAttr(&dq, "axis", axis);
  before_[n].push_back(std::move(dq));
  if (w.tensor->data_type() == kOnnxFloat16 && job->scale_type != kOnnxFloat16) {
    std::string cast = UniqueName(out + "_fp16");
    onnx::NodeProto c = MakeNode("Cast", cast, {out}, {cast});
    SetIntAttr(&c, "to", kOnnxFloat16);
    before_[n].push_back(std::move(c));
    out = cast;
  }
  return out;
}

absl::Status QuantizePass::RewriteInt8Dynamic(onnx::GraphProto* g, onnx::NodeProto* n,
                                              const ConstWeight& w, bool transposed) {
  const int32_t type = w.tensor->data_type();
  const bool conv = n->op_type() == "Conv";
  const bool fp16 = type == kOnnxFloat16;
  MatrixSource geo;
  std::vector<int64_t> q_dims, s_dims, z_dims;
  Int8Options o;
  o.type = recipe_.int8_weight_type == Int8WeightType::kQUInt8 ? quant::Int8Type::kUint8
                                                               : quant::Int8Type::kInt8;
  o.reduce_range = recipe_.reduce_range;
  o.per_channel = recipe_.per_channel;
  if (conv && o.per_channel) {
    // ORT's ConvInteger takes only a per-tensor weight zero point.
    o.per_channel = false;
    notes_.insert("dynamic Conv weights use per-tensor scales (ConvInteger has no per-channel "
                  "zero point in ONNX Runtime)");
  }
  if (conv) {
    geo = ConvGeometry(*w.tensor, &o, &q_dims);
    if (o.per_channel) {
      // Scale broadcasts over the output [N, M, spatial...]; zp stays 1-D.
      s_dims.assign(w.tensor->dims_size(), 1);
      s_dims[1] = geo.n;
      z_dims = {geo.n};
    }
  } else {
    geo = Geometry(*w.tensor, transposed);
    o.out_row_stride = geo.n;
    o.out_col_stride = 1;
    q_dims = {geo.k, geo.n};
    if (o.per_channel) s_dims = z_dims = {geo.n};
  }
  const int32_t qtype = o.type == quant::Int8Type::kInt8 ? kOnnxInt8 : kOnnxUint8;
  const std::string key = absl::StrCat(reinterpret_cast<uintptr_t>(g), "/dyn8/", w.value, "/", transposed);
  auto& names = cache_[key];
  if (names.empty()) {
    auto job = NewJob(w, OnnxTypeName(qtype));
    job->geometry = geo;
    job->int4 = false;
    job->int8_options = o;
    job->scale_type = kOnnxFloat;
    names.push_back(UniqueName(w.value + "_quantized"));
    names.push_back(UniqueName(w.value + "_scale"));
    names.push_back(UniqueName(w.value + "_zero_point"));
    AddOutput(g, names[0], qtype, q_dims, job, 0);
    AddOutput(g, names[1], kOnnxFloat, s_dims, job, 1);
    AddOutput(g, names[2], qtype, z_dims, job, 2);
  }
  std::vector<onnx::NodeProto> nodes;
  const std::string base = n->name().empty() ? n->output(0) : n->name();
  // Activation: float32, then DynamicQuantizeLinear (shared per value).
  const std::string scope = absl::StrCat(reinterpret_cast<uintptr_t>(g), "/");
  std::string a = n->input(0);
  if (fp16) {
    auto it = float_inputs_.find(scope + a);
    if (it == float_inputs_.end()) {
      std::string cast = UniqueName(a + "_float");
      onnx::NodeProto c = MakeNode("Cast", cast, {a}, {cast});
      SetIntAttr(&c, "to", kOnnxFloat);
      nodes.push_back(std::move(c));
      it = float_inputs_.emplace(scope + a, cast).first;
    }
    a = it->second;
  }
  auto dit = dynamic_inputs_.find(scope + a);
  if (dit == dynamic_inputs_.end()) {
    std::array<std::string, 3> outs = {UniqueName(a + "_quantized"), UniqueName(a + "_scale"),
                                       UniqueName(a + "_zero_point")};
    nodes.push_back(MakeNode("DynamicQuantizeLinear", a + "_QuantizeLinear", {a},
                             {outs[0], outs[1], outs[2]}));
    dit = dynamic_inputs_.emplace(scope + a, outs).first;
  }
  const auto& aq = dit->second;
  std::string y = n->output(0);
  std::string acc = UniqueName(base + "_output_quantized");
  if (conv) {
    onnx::NodeProto ci = MakeNode("ConvInteger", base + "_quant", {aq[0], names[0], aq[2], names[2]},
                                  {acc});
    for (const auto& attr : n->attribute()) *ci.add_attribute() = attr;
    nodes.push_back(std::move(ci));
  } else {
    nodes.push_back(
        MakeNode("MatMulInteger", base + "_quant", {aq[0], names[0], aq[2], names[2]}, {acc}));
  }
  std::string accf = UniqueName(acc + "_cast_output");
  onnx::NodeProto cast = MakeNode("Cast", accf, {acc}, {accf});
  SetIntAttr(&cast, "to", kOnnxFloat);
  nodes.push_back(std::move(cast));
  std::string scales = UniqueName(base + "_scales_mul");
  nodes.push_back(MakeNode("Mul", scales, {aq[1], names[1]}, {scales}));
  std::string bias = n->input_size() > 2 ? n->input(2) : "";
  const bool more = !bias.empty() || fp16;
  std::string out = more ? UniqueName(base + "_output_scaled") : y;
  nodes.push_back(MakeNode("Mul", out, {accf, scales}, {out}));
  if (!bias.empty()) {
    std::string b = bias;
    if (conv) {
      // Bias [M] -> [1, M, 1, ...] to broadcast over the output.
      std::string shape = UniqueName(base + "_bias_shape");
      onnx::TensorProto* t = g->add_initializer();
      t->set_name(shape);
      t->set_data_type(kOnnxInt64);
      t->add_dims(w.tensor->dims_size());
      std::string raw;
      for (int i = 0; i < w.tensor->dims_size(); ++i) {
        int64_t v = i == 1 ? -1 : 1;
        raw.append(reinterpret_cast<const char*>(&v), 8);
      }
      t->set_raw_data(raw);
      std::string reshaped = UniqueName(bias + "_reshaped");
      nodes.push_back(MakeNode("Reshape", reshaped, {bias, shape}, {reshaped}));
      b = reshaped;
    }
    if (fp16) {
      std::string bf = UniqueName(b + "_float");
      onnx::NodeProto c = MakeNode("Cast", bf, {b}, {bf});
      SetIntAttr(&c, "to", kOnnxFloat);
      nodes.push_back(std::move(c));
      b = bf;
    }
    std::string sum = fp16 ? UniqueName(base + "_output_biased") : y;
    nodes.push_back(MakeNode("Add", sum, {out, b}, {sum}));
    out = sum;
  }
  if (fp16) {
    onnx::NodeProto c = MakeNode("Cast", y + "_fp16", {out}, {y});
    SetIntAttr(&c, "to", kOnnxFloat16);
    nodes.push_back(std::move(c));
  }
  replace_[n] = std::move(nodes);
  return absl::OkStatus();
}

// Gather(data = constant 2-D float [vocab, hidden], axis 0): the data becomes
// weight-only quantized codes behind a DequantizeLinear. A weight also read
// elsewhere (a tied LM head) gets its own codes for each use; the float
// tensor stays while anything still reads it.
absl::Status QuantizePass::ProcessEmbedding(onnx::GraphProto* g, onnx::NodeProto* n) {
  if (n->input_size() < 2 || n->output_size() < 1) return absl::OkStatus();
  ConstWeight w;
  if (!ResolveWeight(g, n->input(0), &w)) return absl::OkStatus();  // data is not a constant
  const std::string label = n->name().empty() ? n->output(0) : n->name();
  bool excluded = std::find(recipe_.exclude_nodes.begin(), recipe_.exclude_nodes.end(),
                            n->name()) != recipe_.exclude_nodes.end();
  for (const auto& re : exclude_regex_) {
    try {
      excluded = excluded || std::regex_match(n->name(), re);
    } catch (const std::regex_error& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("--exclude-nodes: matching node '", n->name(), "' failed: ", e.what()));
    }
  }
  if (excluded) {
    skipped_["excluded by name"].push_back(label);
    return absl::OkStatus();
  }
  if (w.transpose != nullptr) {
    skipped_["embedding data is a Transpose"].push_back(label);
    return absl::OkStatus();
  }
  const int64_t axis = IntAttr(*n, "axis", 0);
  if (axis != 0 && axis != -2) {
    skipped_["Gather with axis != 0"].push_back(label);
    return absl::OkStatus();
  }
  std::string reason = SkipReason(*n, w);
  if (!reason.empty()) {
    skipped_[reason].push_back(label);
    return absl::OkStatus();
  }
  if (embedding_int4_) return RewriteEmbeddingInt4(g, n, w);
  return RewriteEmbeddingInt8(g, n, w);
}

// Whether some Gather reads a constant float 2-D weight along axis 0 (the
// opset is only raised for embeddings when there is one).
bool QuantizePass::HasEmbedding(onnx::GraphProto* g) {
  for (auto& n : *g->mutable_node()) {
    for (onnx::GraphProto* sub : Subgraphs(&n)) {
      if (HasEmbedding(sub)) return true;
    }
    if (n.op_type() != "Gather" || !IsDefaultDomain(n.domain()) || n.input_size() < 2) continue;
    const int64_t axis = IntAttr(n, "axis", 0);
    ConstWeight w;
    if ((axis == 0 || axis == -2) && ResolveWeight(g, n.input(0), &w) && w.transpose == nullptr &&
        SkipReason(n, w).empty()) {
      return true;
    }
  }
  return false;
}

// E[vocab, hidden] seen as W[K = hidden, N = vocab] (stored transposed), so
// the kernels' per-column scales are per-row scales of E.
MatrixSource EmbeddingGeometry(const onnx::TensorProto& t) { return Geometry(t, true); }

absl::Status QuantizePass::RewriteEmbeddingInt4(onnx::GraphProto* g, onnx::NodeProto* n,
                                                const ConstWeight& w) {
  const int32_t type = w.tensor->data_type();
  const MatrixSource geo = EmbeddingGeometry(*w.tensor);
  const Int4Options o = Int4OptionsFor(recipe_, quant::Int4Layout::kQdq);
  const auto sizes = quant::ComputeInt4Sizes(geo.k, geo.n, o);
  const std::string key = absl::StrCat(reinterpret_cast<uintptr_t>(g), "/emb4/", w.value);
  auto& names = cache_[key];
  if (names.empty()) {
    auto job = NewJob(w, o.symmetric ? "INT4 (Gather)" : "UINT4 (Gather)");
    job->geometry = geo;
    job->int4 = true;
    job->int4_options = o;
    job->transpose_int4_outputs = true;
    std::string q = UniqueName(w.value + "_quantized");
    std::string s = UniqueName(w.value + "_scale");
    AddOutput(g, q, o.symmetric ? kOnnxInt4 : kOnnxUint4, {geo.n, geo.k}, job, 0);
    AddOutput(g, s, type, {geo.n, sizes.blocks}, job, 1);
    std::vector<std::string> inputs = {q, s};
    if (!o.symmetric) {
      std::string zp = UniqueName(w.value + "_zero_point");
      AddOutput(g, zp, kOnnxUint4, {geo.n, sizes.blocks}, job, 2);
      inputs.push_back(zp);
    }
    std::string out = UniqueName(w.value + "_DQ");
    onnx::NodeProto dq = MakeNode("DequantizeLinear", out, inputs, {out});
    SetIntAttr(&dq, "axis", 1);
    SetIntAttr(&dq, "block_size", o.block_size);
    before_[n].push_back(std::move(dq));
    names.push_back(out);
  }
  n->set_input(0, names.back());
  return absl::OkStatus();
}

absl::Status QuantizePass::RewriteEmbeddingInt8(onnx::GraphProto* g, onnx::NodeProto* n,
                                                const ConstWeight& w) {
  const int32_t type = w.tensor->data_type();
  const MatrixSource geo = EmbeddingGeometry(*w.tensor);
  Int8Options o;
  o.type = quant::Int8Type::kInt8;  // symmetric, zero point 0
  o.per_channel = int8_per_channel_;  // one scale per row (DequantizeLinear axis 0)
  o.out_row_stride = 1;               // codes keep E's layout [vocab, hidden]
  o.out_col_stride = geo.k;
  const bool fp16 = type == kOnnxFloat16;
  const int32_t scale_type = fp16 && opset_ >= 19 ? kOnnxFloat16 : kOnnxFloat;
  const std::string key = absl::StrCat(reinterpret_cast<uintptr_t>(g), "/emb8/", w.value);
  auto& names = cache_[key];
  if (names.empty()) {
    auto job = NewJob(w, o.per_channel ? "INT8 (Gather, per row)" : "INT8 (Gather, per tensor)");
    job->geometry = geo;
    job->int4 = false;
    job->int8_options = o;
    job->scale_type = scale_type;
    names.push_back(AddInt8Dequantize(g, n, w, job, kOnnxInt8, {geo.n, geo.k}, geo.n, 0));
  }
  n->set_input(0, names.back());
  return absl::OkStatus();
}

std::string QuantizePass::SkipReason(const onnx::NodeProto& n, const ConstWeight& w) {
  const int32_t type = w.tensor->data_type();
  if (type != kOnnxFloat && type != kOnnxFloat16) {
    return absl::StrCat("weight type ", OnnxTypeName(type), " (only FLOAT/FLOAT16 are quantized)");
  }
  const bool conv = n.op_type() == "Conv";
  const int rank = w.tensor->dims_size();
  if (!conv && rank != 2) return "weight is not 2-D";
  if (conv && rank < 3) return "Conv weight rank < 3";
  for (int64_t d : w.tensor->dims()) {
    if (d <= 0) return "empty weight";
  }
  auto count = ElementCount({w.tensor->dims().data(), static_cast<size_t>(rank)});
  if (!count.ok()) return "bad weight shape";
  if (*count < recipe_.min_tensor_elements) {
    return absl::StrCat("fewer than --min-tensor-elements ", recipe_.min_tensor_elements,
                        " elements");
  }
  if (n.op_type() == "Gemm") {
    if (IntAttr(n, "transA", 0) != 0) return "Gemm with transA=1";
    if (FloatAttr(n, "alpha", 1.0f) != 1.0f) return "Gemm with alpha != 1";
    if (n.input_size() > 2 && !n.input(2).empty() && FloatAttr(n, "beta", 1.0f) != 1.0f) {
      return "Gemm with beta != 1";
    }
  }
  return "";
}

absl::Status QuantizePass::ProcessGraph(onnx::GraphProto* g) {
  std::vector<onnx::NodeProto*> nodes;
  for (auto& n : *g->mutable_node()) nodes.push_back(&n);
  for (onnx::NodeProto* n : nodes) {
    for (onnx::GraphProto* sub : Subgraphs(n)) QUANTD_RETURN_IF_ERROR(ProcessGraph(sub));
    if (!recipe_.keep_embeddings && n->op_type() == "Gather" && IsDefaultDomain(n->domain())) {
      QUANTD_RETURN_IF_ERROR(ProcessEmbedding(g, n));
      continue;
    }
    if (!IsDefaultDomain(n->domain()) || op_types_.count(n->op_type()) == 0) continue;
    if (n->input_size() < 2 || n->output_size() < 1) continue;
    ConstWeight w;
    if (!ResolveWeight(g, n->input(1), &w)) continue;  // activation x activation
    const std::string label = n->name().empty() ? n->output(0) : n->name();
    bool excluded = std::find(recipe_.exclude_nodes.begin(), recipe_.exclude_nodes.end(),
                              n->name()) != recipe_.exclude_nodes.end();
    for (const auto& re : exclude_regex_) {
      try {
        excluded = excluded || std::regex_match(n->name(), re);
      } catch (const std::regex_error& e) {  // pathological pattern: nothing crosses core
        return absl::InvalidArgumentError(
            absl::StrCat("--exclude-nodes: matching node '", n->name(), "' failed: ", e.what()));
      }
    }
    if (excluded) {
      skipped_["excluded by name"].push_back(label);
      continue;
    }
    std::string reason = SkipReason(*n, w);
    if (!reason.empty()) {
      skipped_[reason].push_back(label);
      continue;
    }
    Scheme scheme = recipe_.precision == Precision::kInt4 ? Scheme::kInt4 : Scheme::kInt8;
    if (n == lm_head_) {
      switch (recipe_.lm_head) {
        case LmHeadMode::kFloat: scheme = Scheme::kNone; break;
        case LmHeadMode::kInt8: scheme = Scheme::kInt8; break;
        case LmHeadMode::kInt4: scheme = Scheme::kInt4; break;
      }
      if (scheme == Scheme::kNone) {
        skipped_["LM head kept float (--lm-head float)"].push_back(label);
        continue;
      }
    }
    if (scheme == Scheme::kInt4 && n->op_type() == "Conv") {
      skipped_["INT4 applies to MatMul/Gemm, not Conv"].push_back(label);
      continue;
    }
    // B as the consumer reads it: [K, N], or stored transposed.
    bool transposed = w.transpose != nullptr;
    if (n->op_type() == "Gemm" && IntAttr(*n, "transB", 0) != 0) transposed = !transposed;
    if (scheme == Scheme::kInt4) {
      if (recipe_.int4_format == Int4Format::kQdq && recipe_.precision == Precision::kInt4) {
        QUANTD_RETURN_IF_ERROR(RewriteInt4Qdq(g, n, w, transposed));
      } else {
        QUANTD_RETURN_IF_ERROR(RewriteMatMulNBits(g, n, w, transposed));
      }
    } else if (recipe_.precision == Precision::kInt8 && recipe_.int8_mode == Int8Mode::kDynamic) {
      QUANTD_RETURN_IF_ERROR(RewriteInt8Dynamic(g, n, w, transposed));
    } else {
      QUANTD_RETURN_IF_ERROR(RewriteInt8Qdq(g, n, w, transposed));
    }
  }
  RebuildNodes(g);
  return absl::OkStatus();
}

void QuantizePass::RebuildNodes(onnx::GraphProto* g) {
  std::vector<onnx::NodeProto*> nodes;
  while (g->node_size() > 0) nodes.push_back(g->mutable_node()->ReleaseLast());
  std::reverse(nodes.begin(), nodes.end());
  for (onnx::NodeProto* n : nodes) {
    if (auto it = before_.find(n); it != before_.end()) {
      for (auto& b : it->second) *g->add_node() = std::move(b);
      before_.erase(it);
    }
    if (auto it = replace_.find(n); it != replace_.end()) {
      for (auto& r : it->second) *g->add_node() = std::move(r);
      replace_.erase(it);
      delete n;
      continue;
    }
    g->mutable_node()->AddAllocated(n);
  }
}

// Gives every job its data source: the original tensor's data when nothing
// else reads it (the initializer, Constant or Transpose is then removed), a
// copy of the tensor's reference otherwise.
absl::Status QuantizePass::FinishSources() {
  uses_.clear();
  CountUses(model_->proto().graph());
  // Drop folded Transposes nobody reads any more.
  std::function<void(onnx::GraphProto*)> drop = [&](onnx::GraphProto* g) {
    for (int i = 0; i < g->node_size();) {
      onnx::NodeProto* n = g->mutable_node(i);
      for (onnx::GraphProto* sub : Subgraphs(n)) drop(sub);
      if (transposes_.count(n) > 0 && uses_[n->output(0)] == 0) {
        uses_[n->input(0)]--;
        transposes_.erase(n);
        g->mutable_node()->DeleteSubrange(i, 1);
        continue;
      }
      ++i;
    }
  };
  drop(model_->proto().mutable_graph());
  std::set<const onnx::NodeProto*> dead_constants;
  std::set<std::string> dead_initializers;
  for (auto& [tensor, use] : sources_) {
    const std::string value = use.weight.constant != nullptr ? use.weight.constant->output(0)
                                                             : tensor->name();
    std::shared_ptr<onnx::TensorProto> src;
    if (uses_[value] == 0) {
      src = std::make_shared<onnx::TensorProto>(model_->TakeData(tensor));
      if (use.weight.constant != nullptr) {
        dead_constants.insert(use.weight.constant);
      } else {
        dead_initializers.insert(tensor->name());
      }
    } else {
      src = std::make_shared<onnx::TensorProto>(*tensor);
    }
    for (auto& job : use.jobs) job->src = src;
  }
  std::function<void(onnx::GraphProto*)> sweep = [&](onnx::GraphProto* g) {
    for (int i = 0; i < g->initializer_size();) {
      if (dead_initializers.count(g->initializer(i).name()) > 0 &&
          uses_[g->initializer(i).name()] == 0) {
        g->mutable_initializer()->DeleteSubrange(i, 1);
        continue;
      }
      ++i;
    }
    for (int i = 0; i < g->node_size();) {
      onnx::NodeProto* n = g->mutable_node(i);
      if (dead_constants.count(n) > 0) {
        g->mutable_node()->DeleteSubrange(i, 1);
        continue;
      }
      for (onnx::GraphProto* sub : Subgraphs(n)) sweep(sub);
      ++i;
    }
  };
  sweep(model_->proto().mutable_graph());
  return absl::OkStatus();
}

absl::Status QuantizePass::PrepareOpsets() {
  opset_ = DefaultOpset(model_->proto());
  const bool int4 = recipe_.precision == Precision::kInt4;
  const bool qdq4 = int4 && recipe_.int4_format == Int4Format::kQdq;
  const bool dynamic = !int4 && recipe_.int8_mode == Int8Mode::kDynamic;
  const bool emb = !recipe_.keep_embeddings && HasEmbedding(model_->proto().mutable_graph());
  if (!recipe_.keep_embeddings && !emb) {
    report_->notes.push_back(
        "--quantize-embeddings: no Gather reads a constant 2-D float weight on axis 0");
  }
  int64_t need = 1;
  if (qdq4) need = 21;
  // INT4 embeddings need blocked DequantizeLinear (opset 21); when the model
  // cannot be raised that far they fall back to INT8 per row.
  embedding_int4_ = emb && int4;
  if (embedding_int4_ && std::max(opset_, need) < 21) {
    absl::Status st = CheckOpsetRaise(model_->proto(), opset_, 21);
    if (st.ok()) {
      need = 21;
    } else {
      embedding_int4_ = false;
      report_->notes.push_back(absl::StrCat(
          "--quantize-embeddings: INT4 embeddings need DequantizeLinear-21 (block_size); ",
          st.message(), ". Embeddings use INT8 per-row scales instead"));
    }
  }
  const bool dq8 = (!int4 && !dynamic) || (int4 && recipe_.lm_head == LmHeadMode::kInt8) ||
                   (emb && !embedding_int4_);
  if (dynamic) need = std::max<int64_t>(need, 11);
  if (dq8) need = std::max<int64_t>(need, 10);
  if (opset_ < need) {
    absl::Status st = CheckOpsetRaise(model_->proto(), opset_, need);
    if (!st.ok()) {
      if (qdq4) {
        return absl::FailedPreconditionError(absl::StrCat(
            "INT4 QDQ needs DequantizeLinear from opset 21 (int4 types, block_size); ",
            st.message(), ". Use --int4-format matmulnbits instead"));
      }
      return st;
    }
    report_->notes.push_back(absl::StrCat("raised the default opset from ", opset_, " to ", need));
    SetDefaultOpset(&model_->proto(), need);
    opset_ = need;
  }
  int8_per_channel_ = opset_ >= 13;
  if (dq8 && (recipe_.per_channel || int4 || emb) && opset_ < 13) {
    // Per-axis DequantizeLinear is opset 13; raise when that keeps the meaning.
    if (CheckOpsetRaise(model_->proto(), opset_, 13).ok()) {
      report_->notes.push_back(absl::StrCat("raised the default opset from ", opset_,
                                            " to 13 for per-channel DequantizeLinear"));
      SetDefaultOpset(&model_->proto(), 13);
      opset_ = 13;
      int8_per_channel_ = true;
    } else {
      report_->notes.push_back(absl::StrCat(
          "opset ", opset_, " has no per-axis DequantizeLinear and cannot be raised to 13: "
          "INT8 weights use per-tensor scales"));
    }
  }
  return absl::OkStatus();
}

absl::Status QuantizePass::Run() {
  if (recipe_.precision != Precision::kInt4 && recipe_.precision != Precision::kInt8) {
    return absl::InvalidArgumentError("weight quantization needs precision int4 or int8");
  }
  for (const auto& re : recipe_.exclude_regex) {
    try {
      exclude_regex_.emplace_back(re, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("--exclude-nodes '", re, "' is not a valid regular expression: ", e.what()));
    }
  }
  if (!recipe_.op_types.empty()) {
    op_types_.insert(recipe_.op_types.begin(), recipe_.op_types.end());
  } else if (recipe_.precision == Precision::kInt4) {
    op_types_ = {"MatMul"};
  } else {
    op_types_ = {"MatMul", "Gemm", "Conv"};
  }
  for (const auto& op : op_types_) {
    if (op != "MatMul" && op != "Gemm" && op != "Conv") {
      return absl::InvalidArgumentError(absl::StrCat(
          "--op-types: '", op, "' cannot be quantized; use MatMul, Gemm and/or Conv"));
    }
  }
  report_->tensors_total = model_->Tensors().size();
  QUANTD_RETURN_IF_ERROR(PrepareOpsets());
  lm_head_ = FindLmHead();
  QUANTD_RETURN_IF_ERROR(ProcessGraph(model_->proto().mutable_graph()));
  QUANTD_RETURN_IF_ERROR(FinishSources());
  if (used_ms_domain_) EnsureMsDomain(&model_->proto());
  for (const auto& note : notes_) report_->notes.push_back(note);
  for (const auto& [reason, nodes] : skipped_) {
    std::vector<std::string> shown(nodes.begin(), nodes.begin() + std::min<size_t>(nodes.size(), 5));
    report_->notes.push_back(absl::StrCat("not quantized (", reason, "): ", nodes.size(),
                                          " node(s): ", absl::StrJoin(shown, ", "),
                                          nodes.size() > 5 ? ", ..." : ""));
  }
  if (report_->tensors_converted == 0) {
    report_->notes.push_back("no weight matched: nothing was quantized");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status QuantizeOnnxWeights(OnnxModel* model, const Recipe& recipe, Report* report,
                                 const RunContext& ctx) {
  QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());
  QuantizePass pass(model, recipe, report, ctx);
  return pass.Run();
}

}  // namespace quantd::core
