#include "quantd/core/genai/decoder_graph.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "quantd/core/base/half.h"
#include "quantd/core/base/populate.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/base/transpose.h"
#include "quantd/core/checkpoint/safetensors.h"
#include "quantd/core/onnx/graph_utils.h"
#include "quantd/core/onnx/onnx_types.h"

namespace quantd::core::genai {
namespace {

using checkpoint::Checkpoint;
using checkpoint::Hparams;

// Rows [begin, begin + rows) of a checkpoint matrix (or a whole 1-D tensor).
struct Piece {
  const Checkpoint::TensorRef* ref = nullptr;
  int64_t row_begin = 0;
  int64_t rows = 0;
};

// A float32 initializer made of checkpoint rows stacked in order, stored as
// is ([rows, cols]) or transposed ([cols, rows], the [in, out] layout MatMul
// reads).
struct WeightPlan {
  std::vector<Piece> pieces;
  int64_t cols = 1;
  bool transpose = false;

  int64_t rows() const {
    int64_t n = 0;
    for (const Piece& p : pieces) n += p.rows;
    return n;
  }
};

// Work items over a plan's rows: up to `block_rows` rows of one piece each.
struct BlockTask {
  const Piece* piece;
  int64_t r;        // first row within the piece
  int64_t row_out;  // the piece's first row in the plan

  int64_t Rows(int64_t block_rows) const { return std::min(block_rows, piece->rows - r); }
  // The block's first stored element in the mapped shard.
  const uint8_t* Source(int64_t cols) const {
    const checkpoint::SafetensorsTensor& t = *piece->ref->tensor;
    return piece->ref->shard->Data(t).data() +
           static_cast<size_t>((piece->row_begin + r) * cols * checkpoint::DtypeSize(t.dtype));
  }
};

// Drops the mapped pages of the plan's tensors (read: no longer needed).
void ReleasePieces(const WeightPlan& plan) {
  for (const Piece& piece : plan.pieces) piece.ref->shard->Release(*piece.ref->tensor);
}

std::vector<BlockTask> BlockTasks(const WeightPlan& plan, int64_t block_rows) {
  std::vector<BlockTask> tasks;
  int64_t row_out = 0;
  for (const Piece& piece : plan.pieces) {
    for (int64_t r = 0; r < piece.rows; r += block_rows) tasks.push_back({&piece, r, row_out});
    row_out += piece.rows;
  }
  return tasks;
}

// The plan's bytes as float32 (D = float) or as the IEEE halves
// FloatToHalfSpan makes of them (D = uint16_t; its counts added to *stats),
// made on ctx's threads: blocks of rows are widened (and transposed, and
// narrowed) into the output in parallel, after the output's pages have been
// faulted in by the same threads (a fresh 100 MB buffer costs more in page
// faults than in widening on a VM that backs new pages lazily). A
// transposed block goes in one pass straight from the mapped checkpoint
// (TransposeBfloat16ToFloats/ToHalves and kin; only a float32 tensor at an
// unaligned offset goes through a copy); its 256 rows make each
// destination row take 256 elements per block, so a page of the output is
// visited once per 1 KB (512 B for halves), not once per 256 bytes. Plain
// blocks to halves are widened on the stack, 4096 values at a time.
template <typename D>
absl::StatusOr<std::vector<uint8_t>> ProduceAs(const WeightPlan& plan, const RunContext& ctx,
                                               NarrowingStats* stats) {
  constexpr bool kHalves = std::is_same_v<D, uint16_t>;
  const int64_t rows = plan.rows();
  const int64_t cols = plan.cols;
  // Every element is written below (the tasks cover every row of every piece).
  std::vector<uint8_t> out = PopulatedBuffer(static_cast<size_t>(rows * cols) * sizeof(D), ctx);
  D* dst = reinterpret_cast<D*>(out.data());
  const int64_t block_rows = plan.transpose ? 256 : 64;
  const std::vector<BlockTask> tasks = BlockTasks(plan, block_rows);
  std::vector<NarrowingStats> part(kHalves ? tasks.size() : 0);
  std::vector<std::vector<float>> scratch(plan.transpose ? ctx.Parallelism() : 0);
  ctx.ParallelFor(static_cast<int64_t>(tasks.size()), [&](int64_t i, int slot) {
    const BlockTask& task = tasks[static_cast<size_t>(i)];
    const checkpoint::SafetensorsTensor& t = *task.piece->ref->tensor;
    const size_t esize = static_cast<size_t>(checkpoint::DtypeSize(t.dtype));
    const int64_t n = task.Rows(block_rows);
    const uint8_t* src = task.Source(cols);
    NarrowingStats* counts = kHalves ? &part[static_cast<size_t>(i)] : nullptr;
    if (!plan.transpose) {
      D* out_rows = dst + (task.row_out + task.r) * cols;
      const size_t count = static_cast<size_t>(n * cols);
      if constexpr (kHalves) {
        constexpr size_t kPiece = 4096;
        float values[kPiece];
        for (size_t b = 0; b < count; b += kPiece) {
          const size_t m = std::min(kPiece, count - b);
          checkpoint::DtypeToFloat(t.dtype, src + b * esize, m, values);
          FloatToHalfSpan(values, out_rows + b, m, counts);
        }
      } else {
        checkpoint::DtypeToFloat(t.dtype, src, count, out_rows);
      }
      return;
    }
    D* out_block = dst + task.row_out + task.r;
    auto from_floats = [&](const float* f) {
      if constexpr (kHalves) {
        TransposeFloatsToHalves(f, n, cols, cols, out_block, rows, counts);
      } else {
        TransposeFloats(f, n, cols, cols, out_block, rows);
      }
    };
    switch (t.dtype) {
      case checkpoint::SafetensorsDtype::kBF16:
        if constexpr (kHalves) {
          return TransposeBfloat16ToHalves(src, n, cols, cols, out_block, rows, counts);
        } else {
          return TransposeBfloat16ToFloats(src, n, cols, cols, out_block, rows);
        }
      case checkpoint::SafetensorsDtype::kF16:
        if constexpr (kHalves) {
          return TransposeHalfToHalves(src, n, cols, cols, out_block, rows, counts);
        } else {
          return TransposeHalfToFloats(src, n, cols, cols, out_block, rows);
        }
      case checkpoint::SafetensorsDtype::kF32:
        if (reinterpret_cast<uintptr_t>(src) % alignof(float) == 0) {
          return from_floats(reinterpret_cast<const float*>(src));
        }
        break;
    }
    std::vector<float>& block = scratch[static_cast<size_t>(slot)];
    block.resize(static_cast<size_t>(block_rows * cols));
    checkpoint::DtypeToFloat(t.dtype, src, static_cast<size_t>(n * cols), block.data());
    from_floats(block.data());
  });
  ReleasePieces(plan);
  for (const NarrowingStats& p : part) stats->Add(p);
  return out;
}

absl::StatusOr<std::vector<uint8_t>> Produce(const WeightPlan& plan, const RunContext& ctx) {
  return ProduceAs<float>(plan, ctx, nullptr);
}

// The plan's rows as they are stored (bfloat16 bits, every piece BF16), as
// one [rows, cols] run: lent where they lie in the mapped shard when the
// plan is one piece at an even address (its pages dropped once read), else
// copied on ctx's threads. What the INT4 and blockwise INT8 quantizers read
// in place of the float32 rows (half the bytes, no widening).
absl::StatusOr<LentBytes> StoredRows(const WeightPlan& plan, const RunContext& ctx) {
  const int64_t cols = plan.cols;
  LentBytes lent;
  if (plan.pieces.size() == 1) {
    const Piece& piece = plan.pieces[0];
    const absl::Span<const uint8_t> data = piece.ref->shard->Data(*piece.ref->tensor);
    if (reinterpret_cast<uintptr_t>(data.data()) % sizeof(uint16_t) == 0) {
      lent.view = data.subspan(static_cast<size_t>(piece.row_begin * cols) * sizeof(uint16_t),
                               static_cast<size_t>(piece.rows * cols) * sizeof(uint16_t));
      lent.release = [ref = piece.ref]() { ref->shard->Release(*ref->tensor); };
      return lent;
    }
  }
  lent.owned = PopulatedBuffer(static_cast<size_t>(plan.rows() * cols) * sizeof(uint16_t), ctx);
  constexpr int64_t kBlockRows = 256;
  const std::vector<BlockTask> tasks = BlockTasks(plan, kBlockRows);
  ctx.ParallelFor(static_cast<int64_t>(tasks.size()), [&](int64_t i, int) {
    const BlockTask& task = tasks[static_cast<size_t>(i)];
    std::memcpy(lent.owned.data() + static_cast<size_t>((task.row_out + task.r) * cols) * 2,
                task.Source(cols), static_cast<size_t>(task.Rows(kBlockRows) * cols) * 2);
  });
  ReleasePieces(plan);
  return lent;
}

// What FP16 would make of the plan's values (their order aside), read from
// the checkpoint's rows and widened in registers (ScanBfloat16Range and
// kin): the FP16 safety analysis needs no float32 copy of a weight. Blocks
// of rows on ctx's threads, folded in block order.
absl::StatusOr<FloatRangeStats> ScanPlan(const WeightPlan& plan, const RunContext& ctx) {
  constexpr int64_t kBlockRows = 64;
  const int64_t cols = plan.cols;
  const std::vector<BlockTask> tasks = BlockTasks(plan, kBlockRows);
  std::vector<FloatRangeStats> part(tasks.size());
  ctx.ParallelFor(static_cast<int64_t>(tasks.size()), [&](int64_t i, int) {
    const BlockTask& task = tasks[static_cast<size_t>(i)];
    const checkpoint::SafetensorsTensor& t = *task.piece->ref->tensor;
    const size_t n = static_cast<size_t>(task.Rows(kBlockRows) * cols);
    const uint8_t* src = task.Source(cols);
    FloatRangeStats* stats = &part[static_cast<size_t>(i)];
    switch (t.dtype) {
      case checkpoint::SafetensorsDtype::kBF16:
        return ScanBfloat16Range(src, n, stats);
      case checkpoint::SafetensorsDtype::kF16:
        return ScanHalfRange(src, n, stats);
      case checkpoint::SafetensorsDtype::kF32:
        break;
    }
    constexpr size_t kPiece = 4096;  // floats copied at a time (any alignment; 16 KiB, in L1)
    float values[kPiece];
    for (size_t b = 0; b < n; b += kPiece) {
      const size_t m = std::min(kPiece, n - b);
      std::memcpy(values, src + b * sizeof(float), m * sizeof(float));
      ScanFloatRange(values, m, stats);
    }
  });
  ReleasePieces(plan);
  FloatRangeStats stats;
  for (const FloatRangeStats& p : part) MergeFloatRange(p, &stats);
  return stats;
}

std::string Join(const std::vector<int64_t>& v) { return absl::StrJoin(v, ", "); }

class Builder {
 public:
  Builder(const Checkpoint& ckpt, const DecoderSpec& spec, const RunContext& ctx)
      : ckpt_(ckpt), spec_(spec), h_(spec.hparams), ctx_(ctx) {}

  absl::StatusOr<std::unique_ptr<OnnxModel>> Build(const std::string& base_dir);

 private:
  // The checkpoint tensor `name`, checked against `shape`.
  absl::StatusOr<const Checkpoint::TensorRef*> Need(const std::string& name,
                                                    const std::vector<int64_t>& shape);
  onnx::NodeProto* Node(const std::string& op, const std::string& name,
                        std::vector<std::string> inputs, int outputs,
                        const std::string& domain = "");
  static std::string Out(const onnx::NodeProto* n, int i = 0) { return n->output(i); }
  std::string ConstInt64(std::vector<int64_t> values, bool scalar);
  void Weight(const std::string& name, std::vector<int64_t> dims, WeightPlan plan);
  void Table(const std::string& name, bool large, bool sin);

  absl::Status Layer(int64_t i, std::string* residual, std::string* skip,
                     const std::string& seqlens, const std::string& total, const std::string& cos,
                     const std::string& sin);
  // q | k | v rows as one [H, (heads + 2 kv) * hd] weight.
  absl::StatusOr<WeightPlan> QkvPlan(int64_t i);

  const Checkpoint& ckpt_;
  const DecoderSpec& spec_;
  const Hparams& h_;
  const RunContext& ctx_;  // the weights' producers run on its threads
  onnx::ModelProto proto_;
  onnx::GraphProto* g_ = proto_.mutable_graph();
  std::set<std::string> constants_;
  struct Pending {
    std::string name;
    std::vector<int64_t> dims;
    TensorProducer producer;
    // A transposed plan's rows as they are, ScanPlan, ProduceAs<uint16_t>.
    DeferredReaders readers;
  };
  std::vector<Pending> weights_;
};

absl::StatusOr<const Checkpoint::TensorRef*> Builder::Need(const std::string& name,
                                                           const std::vector<int64_t>& shape) {
  const Checkpoint::TensorRef* ref = ckpt_.Find(name);
  if (ref == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("the checkpoint has no tensor '", name,
                                                   "', which ", spec_.arch->hf_class, " needs"));
  }
  if (ref->tensor->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has shape [",
                                                   Join(ref->tensor->shape),
                                                   "]; config.json implies [", Join(shape), "]"));
  }
  return ref;
}

onnx::NodeProto* Builder::Node(const std::string& op, const std::string& name,
                               std::vector<std::string> inputs, int outputs,
                               const std::string& domain) {
  onnx::NodeProto* n = g_->add_node();
  n->set_op_type(op);
  n->set_name(name);
  if (!domain.empty()) n->set_domain(domain);
  for (std::string& in : inputs) n->add_input(std::move(in));
  for (int i = 0; i < outputs; ++i) n->add_output(absl::StrCat(name, "/output_", i));
  return n;
}

void SetFloat(onnx::NodeProto* n, const char* name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}
void SetInts(onnx::NodeProto* n, const char* name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

std::string Builder::ConstInt64(std::vector<int64_t> values, bool scalar) {
  const std::string name = absl::StrCat("/model/constants/INT64/", scalar ? "" : "[",
                                        absl::StrJoin(values, ", "), scalar ? "" : "]");
  if (!constants_.insert(name).second) return name;
  onnx::NodeProto* n = g_->add_node();
  n->set_op_type("Constant");
  n->set_name(name);
  n->add_output(name);
  auto* a = n->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  SetInt64Tensor(a->mutable_t(), values, scalar);
  return name;
}

void Builder::Weight(const std::string& name, std::vector<int64_t> dims, WeightPlan plan) {
  TensorProducer transposed;
  if (plan.transpose) {
    WeightPlan rows = plan;
    rows.transpose = false;
    transposed = [rows = std::move(rows), ctx = &ctx_]() { return Produce(rows, *ctx); };
  }
  DeferredReaders readers;
  readers.transposed = std::move(transposed);
  const bool all_bf16 = std::all_of(plan.pieces.begin(), plan.pieces.end(), [](const Piece& p) {
    return p.ref->tensor->dtype == checkpoint::SafetensorsDtype::kBF16;
  });
  if (plan.transpose && all_bf16) {
    WeightPlan rows = plan;
    rows.transpose = false;
    readers.transposed_bfloat16 = [rows = std::move(rows), ctx = &ctx_]() {
      return StoredRows(rows, *ctx);
    };
  }
  readers.range = [plan, ctx = &ctx_]() { return ScanPlan(plan, *ctx); };
  readers.halves = [plan, ctx = &ctx_](NarrowingStats* stats) {
    return ProduceAs<uint16_t>(plan, *ctx, stats);
  };
  weights_.push_back({name, std::move(dims),
                      [plan = std::move(plan), ctx = &ctx_]() { return Produce(plan, *ctx); },
                      std::move(readers)});
}

void Builder::Table(const std::string& name, bool large, bool sin) {
  const int64_t rows =
      spec_.rope.longrope && !large ? spec_.rope.original_positions : spec_.rope.max_positions;
  RopeSpec rope = spec_.rope;
  weights_.push_back({name,
                      {rows, rope.rotary_dim / 2},
                      [rope, large, sin]() -> absl::StatusOr<std::vector<uint8_t>> {
                        RopeTable t = ComputeRopeTable(rope, large);
                        const std::vector<float>& v = sin ? t.sin : t.cos;
                        std::vector<uint8_t> out(v.size() * sizeof(float));
                        std::memcpy(out.data(), v.data(), out.size());
                        return out;
                      },
                      DeferredReaders()});
}

absl::StatusOr<WeightPlan> Builder::QkvPlan(int64_t i) {
  const std::string p = absl::StrCat("model.layers.", i, ".self_attn.");
  const int64_t q = h_.heads * h_.head_dim, kv = h_.kv_heads * h_.head_dim;
  WeightPlan plan{.pieces = {}, .cols = h_.hidden, .transpose = true};
  if (ckpt_.Find(p + "qkv_proj.weight") != nullptr) {
    QUANTD_ASSIGN_OR_RETURN(auto ref, Need(p + "qkv_proj.weight", {q + 2 * kv, h_.hidden}));
    plan.pieces.push_back({ref, 0, q + 2 * kv});
    return plan;
  }
  QUANTD_ASSIGN_OR_RETURN(auto qr, Need(p + "q_proj.weight", {q, h_.hidden}));
  QUANTD_ASSIGN_OR_RETURN(auto kr, Need(p + "k_proj.weight", {kv, h_.hidden}));
  QUANTD_ASSIGN_OR_RETURN(auto vr, Need(p + "v_proj.weight", {kv, h_.hidden}));
  plan.pieces = {{qr, 0, q}, {kr, 0, kv}, {vr, 0, kv}};
  return plan;
}

absl::Status Builder::Layer(int64_t i, std::string* residual, std::string* skip,
                            const std::string& seqlens, const std::string& total,
                            const std::string& cos, const std::string& sin) {
  const std::string hf = absl::StrCat("model.layers.", i, ".");
  const std::string prefix = absl::StrCat("/model/layers.", i);
  const std::string wprefix = absl::StrCat("model.layers.", i);
  const int64_t H = h_.hidden, F = h_.ffn;
  const int64_t q = h_.heads * h_.head_dim, kv = h_.kv_heads * h_.head_dim;

  // Input norm: the first layer normalizes the embeddings; later ones add the
  // previous layer's MLP output to the residual first.
  const std::string ln_w = wprefix + ".input_layernorm.weight";
  QUANTD_ASSIGN_OR_RETURN(auto ln_ref, Need(hf + "input_layernorm.weight", {H}));
  Weight(ln_w, {H}, WeightPlan{.pieces = {{ln_ref, 0, 1}}, .cols = H});
  std::string normed;
  if (skip->empty()) {
    onnx::NodeProto* n = Node("SimplifiedLayerNormalization", prefix + "/input_layernorm/LayerNorm",
                              {*residual, ln_w}, 1);
    SetIntAttr(n, "axis", -1);
    SetFloat(n, "epsilon", static_cast<float>(spec_.rms_eps));
    SetIntAttr(n, "stash_type", 1);
    normed = Out(n);
  } else {
    onnx::NodeProto* n =
        Node("SkipSimplifiedLayerNormalization", prefix + "/input_layernorm/SkipLayerNorm",
             {*residual, *skip, ln_w}, 4, "com.microsoft");
    n->set_output(1, "");
    n->set_output(2, "");
    SetFloat(n, "epsilon", static_cast<float>(spec_.rms_eps));
    normed = Out(n);
    *residual = Out(n, 3);
  }

  // Attention.
  QUANTD_ASSIGN_OR_RETURN(WeightPlan qkv_plan, QkvPlan(i));
  const std::string qkv_w = wprefix + ".attn.qkv_proj.MatMul.weight";
  Weight(qkv_w, {H, q + 2 * kv}, std::move(qkv_plan));
  std::string qkv = Out(Node("MatMul", prefix + "/attn/qkv_proj/MatMul", {normed, qkv_w}, 1));
  if (ckpt_.Find(hf + "self_attn.q_proj.bias") != nullptr) {
    QUANTD_ASSIGN_OR_RETURN(auto qb, Need(hf + "self_attn.q_proj.bias", {q}));
    QUANTD_ASSIGN_OR_RETURN(auto kb, Need(hf + "self_attn.k_proj.bias", {kv}));
    QUANTD_ASSIGN_OR_RETURN(auto vb, Need(hf + "self_attn.v_proj.bias", {kv}));
    const std::string bias = wprefix + ".attn.qkv_proj.Add.bias";
    // 1-D tensors: one column, as many rows as elements.
    Weight(bias, {q + 2 * kv},
           WeightPlan{.pieces = {{qb, 0, q}, {kb, 0, kv}, {vb, 0, kv}}, .cols = 1});
    qkv = Out(Node("Add", prefix + "/attn/qkv_proj/Add", {qkv, bias}, 1));
  }
  onnx::NodeProto* gqa =
      Node("GroupQueryAttention", prefix + "/attn/GroupQueryAttention",
           {qkv, "", "", absl::StrCat("past_key_values.", i, ".key"),
            absl::StrCat("past_key_values.", i, ".value"), seqlens, total, cos, sin},
           3, "com.microsoft");
  gqa->set_output(1, absl::StrCat("present.", i, ".key"));
  gqa->set_output(2, absl::StrCat("present.", i, ".value"));
  SetIntAttr(gqa, "num_heads", h_.heads);
  SetIntAttr(gqa, "kv_num_heads", h_.kv_heads);
  SetFloat(gqa, "scale", static_cast<float>(1.0 / std::sqrt(static_cast<double>(h_.head_dim))));
  SetIntAttr(gqa, "local_window_size", spec_.local_window);
  SetFloat(gqa, "softcap", 0.0f);
  SetIntAttr(gqa, "do_rotary", 1);
  SetIntAttr(gqa, "rotary_interleaved", 0);

  const std::string o_w = wprefix + ".attn.o_proj.MatMul.weight";
  QUANTD_ASSIGN_OR_RETURN(auto o_ref, Need(hf + "self_attn.o_proj.weight", {H, q}));
  Weight(o_w, {q, H}, WeightPlan{.pieces = {{o_ref, 0, H}}, .cols = q, .transpose = true});
  const std::string attn = Out(Node("MatMul", prefix + "/attn/o_proj/MatMul", {Out(gqa), o_w}, 1));

  const std::string post_w = wprefix + ".post_attention_layernorm.weight";
  QUANTD_ASSIGN_OR_RETURN(auto post_ref, Need(hf + "post_attention_layernorm.weight", {H}));
  Weight(post_w, {H}, WeightPlan{.pieces = {{post_ref, 0, 1}}, .cols = H});
  onnx::NodeProto* post =
      Node("SkipSimplifiedLayerNormalization", prefix + "/post_attention_layernorm/SkipLayerNorm",
           {*residual, attn, post_w}, 4, "com.microsoft");
  post->set_output(1, "");
  post->set_output(2, "");
  SetFloat(post, "epsilon", static_cast<float>(spec_.rms_eps));
  *residual = Out(post, 3);

  // MLP.
  WeightPlan gate{.pieces = {}, .cols = H, .transpose = true};
  WeightPlan up{.pieces = {}, .cols = H, .transpose = true};
  if (ckpt_.Find(hf + "mlp.gate_up_proj.weight") != nullptr) {
    QUANTD_ASSIGN_OR_RETURN(auto ref, Need(hf + "mlp.gate_up_proj.weight", {2 * F, H}));
    gate.pieces = {{ref, 0, F}};
    up.pieces = {{ref, F, F}};
  } else {
    QUANTD_ASSIGN_OR_RETURN(auto gr, Need(hf + "mlp.gate_proj.weight", {F, H}));
    QUANTD_ASSIGN_OR_RETURN(auto ur, Need(hf + "mlp.up_proj.weight", {F, H}));
    gate.pieces = {{gr, 0, F}};
    up.pieces = {{ur, 0, F}};
  }
  const std::string gate_w = wprefix + ".mlp.gate_proj.MatMul.weight";
  const std::string up_w = wprefix + ".mlp.up_proj.MatMul.weight";
  Weight(gate_w, {H, F}, std::move(gate));
  Weight(up_w, {H, F}, std::move(up));
  const std::string normed2 = Out(post);
  const std::string g = Out(Node("MatMul", prefix + "/mlp/gate_proj/MatMul", {normed2, gate_w}, 1));
  const std::string u = Out(Node("MatMul", prefix + "/mlp/up_proj/MatMul", {normed2, up_w}, 1));
  const std::string sig = Out(Node("Sigmoid", prefix + "/mlp/act_fn/Sigmoid", {g}, 1));
  const std::string act = Out(Node("Mul", prefix + "/mlp/act_fn/Mul", {g, sig}, 1));
  const std::string prod = Out(Node("Mul", prefix + "/mlp/Mul", {act, u}, 1));
  const std::string down_w = wprefix + ".mlp.down_proj.MatMul.weight";
  QUANTD_ASSIGN_OR_RETURN(auto down_ref, Need(hf + "mlp.down_proj.weight", {H, F}));
  Weight(down_w, {F, H}, WeightPlan{.pieces = {{down_ref, 0, H}}, .cols = F, .transpose = true});
  *skip = Out(Node("MatMul", prefix + "/mlp/down_proj/MatMul", {prod, down_w}, 1));
  return absl::OkStatus();
}

void AddValueInfo(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list,
                  const std::string& name, int32_t type,
                  const std::vector<std::variant<int64_t, std::string>>& dims) {
  onnx::ValueInfoProto* v = list->Add();
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(type);
  auto* shape = tt->mutable_shape();
  for (const auto& d : dims) {
    auto* dim = shape->add_dim();
    if (std::holds_alternative<int64_t>(d)) {
      dim->set_dim_value(std::get<int64_t>(d));
    } else {
      dim->set_dim_param(std::get<std::string>(d));
    }
  }
}

absl::StatusOr<std::unique_ptr<OnnxModel>> Builder::Build(const std::string& base_dir) {
  proto_.set_ir_version(10);
  proto_.set_producer_name("quantd");
  {
    auto* o = proto_.add_opset_import();
    o->set_domain("");
    o->set_version(21);
    auto* ms = proto_.add_opset_import();
    ms->set_domain("com.microsoft");
    ms->set_version(1);
  }
  g_->set_name("main_graph");
  const int64_t L = h_.layers, H = h_.hidden, V = h_.vocab;
  using D = std::vector<std::variant<int64_t, std::string>>;
  AddValueInfo(g_->mutable_input(), "input_ids", kOnnxInt64, D{"batch_size", "sequence_length"});
  AddValueInfo(g_->mutable_input(), "attention_mask", kOnnxInt64,
               D{"batch_size", "total_sequence_length"});
  for (const char* kind : {"key", "value"}) {
    for (int64_t i = 0; i < L; ++i) {
      AddValueInfo(g_->mutable_input(), absl::StrCat("past_key_values.", i, ".", kind), kOnnxFloat,
                   D{"batch_size", h_.kv_heads, "past_sequence_length", h_.head_dim});
    }
  }
  AddValueInfo(g_->mutable_output(), "logits", kOnnxFloat, D{"batch_size", "sequence_length", V});
  for (const char* kind : {"key", "value"}) {
    for (int64_t i = 0; i < L; ++i) {
      AddValueInfo(g_->mutable_output(), absl::StrCat("present.", i, ".", kind), kOnnxFloat,
                   D{"batch_size", h_.kv_heads, "total_sequence_length", h_.head_dim});
    }
  }

  // attention_mask -> seqlens_k, total_seq_len.
  const std::string mask = "/model/attn_mask_reformat/attn_mask_subgraph";
  const std::string sum =
      Out(Node("ReduceSum", mask + "/ReduceSum", {"attention_mask", ConstInt64({1}, false)}, 1));
  SetIntAttr(g_->mutable_node(g_->node_size() - 1), "keepdims", 0);
  const std::string sub = Out(Node("Sub", mask + "/Sub", {sum, ConstInt64({1}, true)}, 1));
  onnx::NodeProto* seqlens = Node("Cast", mask + "/Sub/Cast", {sub}, 1);
  SetIntAttr(seqlens, "to", kOnnxInt32);
  const std::string shape = Out(Node("Shape", mask + "/Shape", {"attention_mask"}, 1));
  const std::string total64 =
      Out(Node("Gather", mask + "/Gather", {shape, ConstInt64({1}, true)}, 1));
  SetIntAttr(g_->mutable_node(g_->node_size() - 1), "axis", 0);
  onnx::NodeProto* total = Node("Cast", mask + "/Gather/Cast", {total64}, 1);
  SetIntAttr(total, "to", kOnnxInt32);

  // cos/sin caches.
  std::string cos = "cos_cache", sin = "sin_cache";
  if (!spec_.rope.longrope) {
    Table("cos_cache", false, false);
    Table("sin_cache", false, true);
  } else {
    Table("cos_cache_large", true, false);
    Table("sin_cache_large", true, true);
    Table("cos_cache_small", false, false);
    Table("sin_cache_small", false, true);
    const std::string cond =
        Out(Node("Greater", "/model/rope_caches_subgraph/Greater",
                 {total64, ConstInt64({spec_.rope.original_positions}, true)}, 1));
    onnx::NodeProto* n = Node("If", "/model/rope_caches_subgraph/If", {cond}, 0);
    n->add_output(cos);
    n->add_output(sin);
    for (const char* branch : {"large", "small"}) {
      auto* a = n->add_attribute();
      a->set_name(std::string(branch) == "large" ? "then_branch" : "else_branch");
      a->set_type(onnx::AttributeProto::GRAPH);
      onnx::GraphProto* b = a->mutable_g();
      b->set_name(absl::StrCat("rope_caches_", branch));
      const int64_t rows =
          std::string(branch) == "large" ? spec_.rope.max_positions : spec_.rope.original_positions;
      for (const char* which : {"cos", "sin"}) {
        const std::string in = absl::StrCat(which, "_cache_", branch);
        const std::string out = absl::StrCat(in, "_out");
        onnx::NodeProto* id = b->add_node();
        id->set_op_type("Identity");
        id->set_name(absl::StrCat("/model/rope_caches_subgraph/", in, "/Identity"));
        id->add_input(in);
        id->add_output(out);
        AddValueInfo(b->mutable_output(), out, kOnnxFloat, D{rows, spec_.rope.rotary_dim / 2});
      }
    }
  }

  // Embedding.
  QUANTD_ASSIGN_OR_RETURN(auto embed_ref, Need("model.embed_tokens.weight", {V, H}));
  const Checkpoint::TensorRef* head_ref = ckpt_.Find("lm_head.weight");
  const bool tied = head_ref == nullptr && h_.tied_embeddings;
  if (head_ref == nullptr && !tied) {
    return absl::InvalidArgumentError(
        "the checkpoint has no tensor 'lm_head.weight' and config.json does not tie the "
        "embeddings (tie_word_embeddings)");
  }
  std::string hidden;
  if (tied) {
    Weight(kLmHeadWeight, {H, V},
           WeightPlan{.pieces = {{embed_ref, 0, V}}, .cols = H, .transpose = true});
    onnx::NodeProto* t = Node("Transpose", kEmbeddingTranspose, {kLmHeadWeight}, 1);
    SetInts(t, "perm", {1, 0});
    hidden = Out(Node("Gather", kEmbeddingNode, {Out(t), "input_ids"}, 1));
  } else {
    Weight("model.embed_tokens.weight", {V, H},
           WeightPlan{.pieces = {{embed_ref, 0, V}}, .cols = H});
    hidden = Out(Node("Gather", kEmbeddingNode, {"model.embed_tokens.weight", "input_ids"}, 1));
    QUANTD_ASSIGN_OR_RETURN(head_ref, Need("lm_head.weight", {V, H}));
    Weight(kLmHeadWeight, {H, V},
           WeightPlan{.pieces = {{head_ref, 0, V}}, .cols = H, .transpose = true});
  }
  SetIntAttr(g_->mutable_node(g_->node_size() - 1), "axis", 0);

  std::string residual = hidden, skip;
  for (int64_t i = 0; i < L; ++i) {
    QUANTD_RETURN_IF_ERROR(Layer(i, &residual, &skip, Out(seqlens), Out(total), cos, sin));
  }
  const std::string final_w = absl::StrCat("model.layers.", L, ".final_norm_layernorm.weight");
  QUANTD_ASSIGN_OR_RETURN(auto norm_ref, Need("model.norm.weight", {H}));
  Weight(final_w, {H}, WeightPlan{.pieces = {{norm_ref, 0, 1}}, .cols = H});
  onnx::NodeProto* fin =
      Node("SkipSimplifiedLayerNormalization",
           absl::StrCat("/model/layers.", L, "/final_norm_layernorm/SkipLayerNorm"),
           {residual, skip, final_w}, 1, "com.microsoft");
  SetFloat(fin, "epsilon", static_cast<float>(spec_.rms_eps));
  onnx::NodeProto* head = Node("MatMul", kLmHeadNode, {Out(fin), kLmHeadWeight}, 0);
  head->add_output("logits");

  QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<OnnxModel> model,
                          OnnxModel::FromProto(std::move(proto_), base_dir));
  onnx::GraphProto* g = model->proto().mutable_graph();
  for (Pending& w : weights_) {
    onnx::TensorProto* t = g->add_initializer();
    t->set_name(w.name);
    t->set_data_type(kOnnxFloat);
    for (int64_t d : w.dims) t->add_dims(d);
    model->Defer(t, std::move(w.producer), std::move(w.readers));
  }
  return model;
}

}  // namespace

absl::StatusOr<DecoderSpec> ReadDecoderSpec(const Checkpoint& ckpt) {
  DecoderSpec spec;
  const nlohmann::json& config = ckpt.config();
  QUANTD_ASSIGN_OR_RETURN(spec.arch, checkpoint::FindArchitecture(config));
  QUANTD_ASSIGN_OR_RETURN(spec.hparams, checkpoint::ReadHparams(config));
  QUANTD_ASSIGN_OR_RETURN(spec.rope, ReadRopeSpec(config, spec.hparams));
  if (spec.rope.rotary_dim < spec.hparams.head_dim && (spec.rope.rotary_dim / 2) % 8 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "partial rotary dimension ", spec.rope.rotary_dim,
        ": ONNX Runtime's GroupQueryAttention needs rotary_dim / 2 to be a multiple of 8"));
  }
  QUANTD_ASSIGN_OR_RETURN(std::optional<double> eps,
                          checkpoint::ConfigNumber(config, "rms_norm_eps"));
  spec.rms_eps = eps.value_or(1e-5);
  if (!(spec.rms_eps > 0 && spec.rms_eps < 1)) {
    return absl::InvalidArgumentError("config.json: rms_norm_eps is not in (0, 1)");
  }
  QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> window,
                          checkpoint::ConfigInt(config, "sliding_window"));
  auto use = config.find("use_sliding_window");
  const bool window_on = use == config.end() || !use->is_boolean() || use->get<bool>();
  if (window && *window > 0 && window_on) {
    spec.local_window = std::min<int64_t>(*window, int64_t{1} << 30);
  }
  return spec;
}

absl::StatusOr<std::unique_ptr<OnnxModel>> BuildDecoderGraph(const Checkpoint& ckpt,
                                                             const DecoderSpec& spec,
                                                             const std::string& base_dir,
                                                             const RunContext& ctx) {
  Builder builder(ckpt, spec, ctx);
  return builder.Build(base_dir);
}

}  // namespace quantd::core::genai
