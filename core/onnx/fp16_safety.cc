#include "fp16_safety.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <unordered_set>

#include "quantd/core/base/half.h"
#include "quantd/core/onnx/graph_utils.h"
#include "quantd/core/onnx/onnx_types.h"

namespace quantd::core {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kHalfMaxD = kHalfMax;

// FP16 rounds magnitudes up to 2^-25 (half the smallest subnormal, a tie
// that rounds to the even zero) to zero.
bool FlushesToZero(float v) { return v != 0 && std::fabs(v) <= kHalfFlushLimit; }

// x * y with 0 * inf = 0 (a zero factor bounds the product).
double SafeMul(double x, double y) { return (x == 0 || y == 0) ? 0 : x * y; }

// The hull of op(x, y) over the corners x in {x_lo, x_hi}, y in {y_lo, y_hi}.
template <typename Op>
std::pair<double, double> Corners(double x_lo, double x_hi, double y_lo, double y_hi, Op op) {
  double lo = kInf, hi = -kInf;
  for (double x : {x_lo, x_hi}) {
    for (double y : {y_lo, y_hi}) {
      const double v = op(x, y);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  return {lo, hi};
}

double Sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

bool IsOp(const onnx::NodeProto& n, std::initializer_list<const char*> ops) {
  if (!n.domain().empty() && n.domain() != "ai.onnx") return false;
  for (const char* op : ops) {
    if (n.op_type() == op) return true;
  }
  return false;
}

ValueBound RangeOnly(double lo, double hi) {
  ValueBound b;
  b.lo = lo;
  b.hi = hi;
  b.has_reach = false;
  b.uniform = false;
  b.assumed = false;
  return b;
}

// A value nothing bounds on either side is an ordinary activation: the
// [-1, 1] default.
ValueBound Normalized(ValueBound b) {
  if (!b.has_reach && b.lo == -kInf && b.hi == kInf) {
    const double guard = b.lost_guard;
    b = ValueBound();
    b.lost_guard = guard;
  }
  return b;
}

// What is known to lie beyond the FP16 range on each side (magnitudes; 0:
// nothing known).
struct Beyond {
  double lo = 0, hi = 0;
  bool Any() const { return lo > 0 || hi > 0; }
  double Max() const { return std::max(lo, hi); }
};

Beyond BeyondRange(const ValueBound& b) {
  Beyond r;
  if (b.has_reach) {
    if (b.reach_hi > kHalfMaxD) r.hi = b.reach_hi;
    if (b.reach_lo < -kHalfMaxD) r.lo = -b.reach_lo;
  }
  if (b.lo > kHalfMaxD) r.hi = std::max(r.hi, b.lo);
  if (b.hi < -kHalfMaxD) r.lo = std::max(r.lo, -b.hi);
  r.lo = std::max(r.lo, b.carried_lo);
  r.hi = std::max(r.hi, b.carried_hi);
  return r;
}

// Ops whose output keeps the sign of a large input (or drops it).
bool IsSignPreserving(const onnx::NodeProto& n) {
  return IsOp(
      n, {"Add",       "Sum",       "Concat",     "Identity", "Reshape", "Transpose", "Flatten",
          "Squeeze",   "Unsqueeze", "Expand",     "Tile",     "Slice",   "Gather",    "Split",
          "Max",       "Min",       "Relu",       "Where",    "Cast",    "MaxPool",   "ReduceMax",
          "ReduceMin", "ReduceSum", "ReduceMean", "Pad"});
}

// Ops that compute the same result from +-inf as from a value beyond FP16's
// range (they saturate, or compare): reading one needs no FP32. Softmax only
// when the large values are negative (additive masks: exp(-inf) = 0; a +inf
// gives inf - inf = NaN).
bool AbsorbsInfinity(const onnx::NodeProto& n, const Beyond& read) {
  if (IsOp(n, {"Sigmoid", "Tanh", "Clip", "Erf", "HardSigmoid", "Sign", "Exp", "Greater", "Less",
               "GreaterOrEqual", "LessOrEqual", "Equal", "IsInf", "Shape", "Size"})) {
    return true;
  }
  return IsOp(n, {"Softmax"}) && read.hi == 0;
}

}  // namespace

void Fp16SafetyAnalysis::AddConstants(const onnx::GraphProto& g) {
  for (const auto& t : g.initializer()) constants_[t.name()] = &t;
  for (const auto& c : g.node()) {
    if (c.op_type() != "Constant" || c.output_size() != 1) continue;
    if (const onnx::AttributeProto* a = FindAttr(c, "value"); a != nullptr && a->has_t()) {
      constants_[c.output(0)] = &a->t();
    }
  }
}

const Fp16SafetyAnalysis::ConstantStats* Fp16SafetyAnalysis::Stats(const std::string& value) {
  if (value.empty()) return nullptr;
  auto it = constants_.find(value);
  if (it == constants_.end() || it->second->data_type() != kOnnxFloat) return nullptr;
  auto [entry, inserted] = stats_.try_emplace(it->second);
  ConstantStats& s = entry->second;
  if (inserted) {
    // The figures do not depend on the order of the values: a large tensor
    // is read in whichever layout its producer makes without a transpose
    // (small ones keep their values, in order).
    const onnx::TensorProto& t = *it->second;
    const absl::StatusOr<uint64_t> elements =
        ElementCount({t.dims().data(), static_cast<size_t>(t.dims_size())});
    const bool large = elements.ok() && *elements > kKeepValues;
    auto take = [&s](const FloatRangeStats& r, uint64_t count) {
      s.ok = true;
      s.count = count;
      s.min = kInf;
      s.max = -kInf;
      s.finite = r.non_finite == 0;
      s.nonzero = s.count - r.zeros - r.non_finite;
      s.flushed = r.flushed;
      s.max_flushed = r.max_flushed;
      if (r.min <= r.max) {
        s.min = r.min;
        s.max = r.max;
      }
      s.max_abs = r.max_abs;
    };
    if (large && model_->HasRangeScanner(t)) {
      // Gathered from the tensor's source (a checkpoint's 16-bit rows, say)
      // without producing its float32 bytes.
      if (absl::StatusOr<FloatRangeStats> r = model_->ScanRange(t); r.ok()) take(*r, *elements);
    } else {
      auto data = large && model_->HasTransposed(t) ? model_->ReadTransposed(t) : model_->Read(t);
      if (data.ok()) {  // else not ok: Save() reports unreadable tensors
        auto v = data->as<float>();
        FloatRangeStats r;  // one vectorized pass
        ScanFloatRange(v.data(), v.size(), ctx_, &r);
        take(r, v.size());
        if (s.count <= kKeepValues) s.values.assign(v.begin(), v.end());
      }
    }
  }
  return s.ok ? &s : nullptr;
}

ValueBound Fp16SafetyAnalysis::ConstantBound(const ConstantStats& s) const {
  ValueBound b;
  b.assumed = false;
  if (s.count == 0 || s.min > s.max) {  // empty, or no finite value
    b.has_reach = false;
    b.uniform = false;
    return b;
  }
  b.lo = s.finite ? s.min : -kInf;
  b.hi = s.finite ? s.max : kInf;
  b.reach_lo = s.min;
  b.reach_hi = s.max;
  b.uniform = s.finite && s.min == s.max;
  return b;
}

ValueBound Fp16SafetyAnalysis::Bound(const std::string& value) const {
  if (auto c = constants_.find(value); c != constants_.end()) {
    if (auto s = stats_.find(c->second); s != stats_.end() && s->second.ok) {
      return ConstantBound(s->second);
    }
  }
  auto it = bounds_.find(value);
  return it == bounds_.end() ? ValueBound() : it->second;
}

bool Fp16SafetyAnalysis::IsFloatConstant(const std::string& value) const {
  auto c = constants_.find(value);
  if (c == constants_.end()) return false;
  auto s = stats_.find(c->second);
  return s != stats_.end() && s->second.ok;
}

ValueBound Fp16SafetyAnalysis::Elementwise(const onnx::NodeProto& n) const {
  const std::string& op = n.op_type();
  const ValueBound a = Bound(n.input(0)), b = Bound(n.input(1));
  // Sound range by interval arithmetic.
  ValueBound out = RangeOnly(-kInf, kInf);
  if (op == "Add") {
    out.lo = a.lo + b.lo;
    out.hi = a.hi + b.hi;
  } else if (op == "Sub") {
    out.lo = a.lo - b.hi;
    out.hi = a.hi - b.lo;
  } else if (op == "Mul") {
    if (n.input(0) == n.input(1)) {  // a square
      const double l2 = SafeMul(a.lo, a.lo), h2 = SafeMul(a.hi, a.hi);
      out.lo = (a.lo <= 0 && a.hi >= 0) ? 0 : std::min(l2, h2);
      out.hi = std::max(l2, h2);
      return Normalized(out);
    }
    std::tie(out.lo, out.hi) = Corners(a.lo, a.hi, b.lo, b.hi, SafeMul);
  } else if (op == "Div" && (b.lo > 0 || b.hi < 0)) {
    std::tie(out.lo, out.hi) =
        Corners(a.lo, a.hi, b.lo, b.hi, [](double x, double y) { return SafeMul(x, 1 / y); });
  }
  if (std::isnan(out.lo) || std::isnan(out.hi)) out = RangeOnly(-kInf, kInf);
  // Reach: exactly one operand constant, the other with a reach.
  const bool ca = IsFloatConstant(n.input(0)), cb = IsFloatConstant(n.input(1));
  if (ca == cb) return Normalized(out);
  const ValueBound& x = ca ? b : a;
  const ValueBound& c = ca ? a : b;
  if (!x.has_reach || !c.has_reach || !(c.uniform || x.uniform)) return Normalized(out);
  // Reach endpoints of the first and second operand.
  const double l0 = ca ? c.reach_lo : x.reach_lo, h0 = ca ? c.reach_hi : x.reach_hi;
  const double l1 = ca ? x.reach_lo : c.reach_lo, h1 = ca ? x.reach_hi : c.reach_hi;
  std::pair<double, double> r;
  if (op == "Add") {
    r = Corners(l0, h0, l1, h1, [](double p, double q) { return p + q; });
  } else if (op == "Sub") {
    r = Corners(l0, h0, l1, h1, [](double p, double q) { return p - q; });
  } else if (op == "Mul") {
    r = Corners(l0, h0, l1, h1, SafeMul);
  } else if (op == "Div" && (l1 > 0 || h1 < 0)) {
    r = Corners(l0, h0, l1, h1, [](double p, double q) { return SafeMul(p, 1 / q); });
  } else {
    return Normalized(out);
  }
  if (std::isnan(r.first) || std::isnan(r.second)) return Normalized(out);
  out.has_reach = true;
  out.reach_lo = r.first;
  out.reach_hi = r.second;
  out.uniform = c.uniform && x.uniform;
  return out;
}

std::optional<ValueBound> Fp16SafetyAnalysis::BatchNorm(const onnx::NodeProto& n) {
  if (n.input_size() < 5 || n.output_size() != 1 || IntAttr(n, "training_mode", 0) != 0) {
    return std::nullopt;
  }
  const ConstantStats* p[4];
  for (int i = 0; i < 4; ++i) {
    p[i] = Stats(n.input(i + 1));
    if (p[i] == nullptr || p[i]->values.empty() || p[i]->values.size() != p[0]->values.size()) {
      return std::nullopt;
    }
  }
  const double eps = FloatAttr(n, "epsilon", 1e-5f);
  const ValueBound x = Bound(n.input(0));
  ValueBound out = RangeOnly(kInf, -kInf);
  out.has_reach = x.assumed || (x.has_reach && x.uniform);
  out.reach_lo = kInf;
  out.reach_hi = -kInf;
  for (size_t c = 0; c < p[0]->values.size(); ++c) {
    const double scale = p[0]->values[c], bias = p[1]->values[c], mean = p[2]->values[c],
                 var = p[3]->values[c];
    if (!(var + eps > 0)) return std::nullopt;
    // y = a * x + shift on this channel.
    const double a = scale / std::sqrt(var + eps), shift = bias - a * mean;
    if (!std::isfinite(a) || !std::isfinite(shift)) return std::nullopt;
    auto [lo, hi] = Corners(x.lo, x.hi, a, a, SafeMul);
    out.lo = std::min(out.lo, lo + shift);
    out.hi = std::max(out.hi, hi + shift);
    if (x.assumed) {
      // The BN's own statistics: x is about mean +- sqrt(var), y about bias +- |scale|.
      out.reach_lo = std::min(out.reach_lo, bias - std::fabs(scale));
      out.reach_hi = std::max(out.reach_hi, bias + std::fabs(scale));
    } else if (out.has_reach) {
      auto [rl, rh] = Corners(x.reach_lo, x.reach_hi, a, a, SafeMul);
      out.reach_lo = std::min(out.reach_lo, rl + shift);
      out.reach_hi = std::max(out.reach_hi, rh + shift);
    }
  }
  if (std::isnan(out.lo) || std::isnan(out.hi)) {
    out.lo = -kInf;
    out.hi = kInf;
  }
  out.uniform = false;
  return Normalized(out);
}

void Fp16SafetyAnalysis::ComputeBounds(const onnx::NodeProto& n) {
  if (n.output_size() == 0) return;
  auto in = [&](int i) { return i < n.input_size() ? Bound(n.input(i)) : ValueBound(); };
  std::vector<ValueBound> outs(n.output_size());  // unknown by default
  if (IsOp(n, {"Identity", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Expand",
               "Tile", "Dropout", "DepthToSpace", "SpaceToDepth"})) {
    outs[0] = in(0);
  } else if (IsOp(n, {"Cast"})) {
    const int64_t to = IntAttr(n, "to", 0);
    if (to == kOnnxFloat || to == kOnnxFloat16 || to == kOnnxBfloat16 || to == kOnnxDouble) {
      outs[0] = in(0);
    }
  } else if (IsOp(n, {"Slice", "Gather", "Split", "ReduceMax", "ReduceMin", "ReduceMean", "MaxPool",
                      "AveragePool", "GlobalAveragePool", "GlobalMaxPool"})) {
    // Sound (a subset or a mean of the input), but which elements survive is
    // not known: no reach.
    const ValueBound x = in(0);
    for (auto& o : outs) o = Normalized(RangeOnly(x.lo, x.hi));
    if (IsOp(n, {"MaxPool"}) && outs.size() > 1) outs.resize(1);
  } else if (IsOp(n, {"Concat"})) {
    ValueBound h = in(0);
    h.assumed = false;
    for (int i = 1; i < n.input_size(); ++i) {
      const ValueBound x = in(i);
      h.lo = std::min(h.lo, x.lo);
      h.hi = std::max(h.hi, x.hi);
      h.has_reach = h.has_reach && x.has_reach;
      h.reach_lo = std::min(h.reach_lo, x.reach_lo);
      h.reach_hi = std::max(h.reach_hi, x.reach_hi);
      h.uniform = false;
    }
    outs[0] = Normalized(h);
  } else if (IsOp(n, {"Neg"})) {
    ValueBound x = in(0);
    std::swap(x.lo, x.hi);
    x.lo = -x.lo;
    x.hi = -x.hi;
    std::swap(x.reach_lo, x.reach_hi);
    x.reach_lo = -x.reach_lo;
    x.reach_hi = -x.reach_hi;
    x.assumed = false;
    outs[0] = x;
  } else if (IsOp(n, {"Relu"})) {
    ValueBound x = in(0);
    x.lo = std::max(x.lo, 0.0);
    x.hi = std::max(x.hi, 0.0);
    x.reach_lo = std::max(x.reach_lo, 0.0);
    x.reach_hi = std::max(x.reach_hi, 0.0);
    x.assumed = false;
    outs[0] = x;
  } else if (IsOp(n, {"Sigmoid", "Tanh", "Clip", "Softmax"})) {
    // Saturating ops: [f(lo), f(hi)]; an unbounded side of the input is
    // assumed to drive the output to its limit.
    const ValueBound x = in(0);
    double floor = 0, ceil = 1;  // Sigmoid, Softmax
    std::function<double(double)> f = Sigmoid;
    if (n.op_type() == "Tanh") {
      floor = -1;
      f = [](double v) { return std::tanh(v); };
    } else if (n.op_type() == "Clip") {
      floor = -kInf;
      ceil = kInf;
      if (n.input_size() > 1 || FindAttr(n, "min") || FindAttr(n, "max")) {
        floor = FloatAttr(n, "min", -std::numeric_limits<float>::infinity());
        ceil = FloatAttr(n, "max", std::numeric_limits<float>::infinity());
        for (int i = 1; i < 3 && i < n.input_size(); ++i) {
          if (n.input(i).empty()) continue;
          const ConstantStats* s = Stats(n.input(i));
          if (s == nullptr || s->count != 1 || !s->finite) {  // a runtime limit
            floor = -kInf;
            ceil = kInf;
            break;
          }
          (i == 1 ? floor : ceil) = s->min;
        }
      }
      f = [floor, ceil](double v) { return std::clamp(v, floor, std::max(floor, ceil)); };
    }
    ValueBound out = RangeOnly(floor, ceil);
    if (n.op_type() != "Softmax") {
      out.lo = x.lo == -kInf ? floor : f(x.lo);
      out.hi = x.hi == kInf ? ceil : f(x.hi);
    }
    const bool saturates = x.lo == -kInf && x.hi == kInf;
    if (n.op_type() == "Softmax") {
      out.has_reach = saturates;
      out.reach_lo = 0;
      out.reach_hi = 1;
      out.uniform = saturates;
    } else if (saturates) {
      out.has_reach = true;
      out.reach_lo = x.has_reach ? std::min(floor, f(x.reach_lo)) : floor;
      out.reach_hi = x.has_reach ? std::max(ceil, f(x.reach_hi)) : ceil;
      out.uniform = x.uniform || !x.has_reach;
    } else if (x.has_reach) {
      out.has_reach = true;
      out.reach_lo = x.lo == -kInf ? floor : f(x.reach_lo);
      out.reach_hi = x.hi == kInf ? ceil : f(x.reach_hi);
      out.uniform = x.uniform;
    }
    if (!std::isfinite(out.reach_lo) || !std::isfinite(out.reach_hi)) out.has_reach = false;
    outs[0] = Normalized(out);
  } else if (IsOp(n, {"Add", "Sub", "Mul", "Div"}) && n.input_size() == 2) {
    outs[0] = Elementwise(n);
  } else if (IsOp(n, {"BatchNormalization"})) {
    if (auto b = BatchNorm(n)) outs[0] = *b;
  }
  for (int i = 0; i < n.output_size() && i < static_cast<int>(outs.size()); ++i) {
    if (!n.output(i).empty()) bounds_[n.output(i)] = outs[i];
  }
}

std::optional<Fp16Hazard> Fp16SafetyAnalysis::Underflow(const onnx::NodeProto& n) {
  // The node's own constants.
  auto flushed = [&](int i) -> const ConstantStats* {
    if (i >= n.input_size()) return nullptr;
    const ConstantStats* s = Stats(n.input(i));
    return s != nullptr && s->flushed > 0 ? s : nullptr;
  };
  if (IsOp(n, {"Div"})) {
    if (const ConstantStats* s = flushed(1))
      return Fp16Hazard{"underflow", n.input(1), s->max_flushed};
  }
  if (IsOp(n, {"Add", "Max"})) {
    for (int i = 0; i < n.input_size(); ++i) {
      const ConstantStats* s = flushed(i);
      if (s != nullptr && s->flushed == s->nonzero) {
        return Fp16Hazard{"underflow", n.input(i), s->max_flushed};
      }
    }
  }
  if (IsOp(n, {"Mul", "MatMul", "Gemm", "Conv", "ConvTranspose"})) {
    const bool conv = IsOp(n, {"Conv", "ConvTranspose"});
    for (int i = conv ? 1 : 0; i < std::min(n.input_size(), 2); ++i) {
      const ConstantStats* s = flushed(i);
      if (s != nullptr && 2 * s->flushed >= s->nonzero) {
        return Fp16Hazard{"underflow", n.input(i), s->max_flushed};
      }
    }
  }
  if (IsOp(n, {"BatchNormalization"}) && n.input_size() >= 5) {
    const ConstantStats* var = Stats(n.input(4));
    const float eps = FloatAttr(n, "epsilon", 1e-5f);
    if (var != nullptr && (eps == 0 || FlushesToZero(eps))) {
      for (float v : var->values) {
        if ((v == 0 || FlushesToZero(v)) && v + eps > 0) {
          return Fp16Hazard{"underflow", n.input(4), static_cast<double>(v) + eps};
        }
      }
    }
  }
  // A value that depends on a vanished epsilon guard.
  for (const auto& in : n.input()) {
    if (in.empty() || IsConstant(in)) continue;
    if (auto it = bounds_.find(in); it != bounds_.end() && it->second.lost_guard > 0) {
      return Fp16Hazard{"underflow", in, it->second.lost_guard};
    }
  }
  return std::nullopt;
}

std::optional<Fp16Hazard> Fp16SafetyAnalysis::Visit(const onnx::NodeProto& n) {
  // Constants beyond the range, first input first.
  std::optional<Fp16Hazard> hazard;
  for (const auto& in : n.input()) Stats(in);  // Bound() and Elementwise() read the stats
  for (const auto& in : n.input()) {
    const ConstantStats* s = Stats(in);
    if (s != nullptr && s->max_abs > kHalfMaxD) {
      hazard = Fp16Hazard{"constant_out_of_range", in, s->max_abs};
      break;
    }
  }
  ComputeBounds(n);
  if (!hazard) hazard = Underflow(n);
  // The guard lost by an epsilon Add/Max, and what Sqrt/reshapes pass on.
  if (hazard && hazard->reason == "underflow" && IsOp(n, {"Add", "Max"}) &&
      IsConstant(hazard->input)) {
    for (const auto& out : n.output()) bounds_[out].lost_guard = hazard->max_abs;
  } else if (IsOp(n, {"Sqrt", "Abs", "Cast", "Identity", "Reshape", "Squeeze", "Unsqueeze",
                      "Flatten", "Transpose", "Expand"}) &&
             n.input_size() > 0 && !n.input(0).empty()) {
    if (auto it = bounds_.find(n.input(0)); it != bounds_.end() && it->second.lost_guard > 0) {
      const double guard = it->second.lost_guard;
      for (const auto& out : n.output()) bounds_[out].lost_guard = guard;
    }
  }
  // A value beyond the range that the node passes on: its output is beyond
  // too when nothing (a reach, a range inside +-65504) says otherwise.
  Beyond read;
  const bool same_sign = IsSignPreserving(n);
  for (const auto& in : n.input()) {
    if (in.empty() || IsConstant(in)) continue;
    const Beyond b = BeyondRange(Bound(in));
    read.lo = std::max(read.lo, same_sign ? b.lo : b.Max());
    read.hi = std::max(read.hi, same_sign ? b.hi : b.Max());
  }
  if (read.Any()) {
    for (const auto& out : n.output()) {
      auto o = bounds_.find(out);
      // A reach (not the assumed default) says what the value takes.
      if (out.empty() || o == bounds_.end() || (o->second.has_reach && !o->second.assumed)) {
        continue;
      }
      if (o->second.lo < -kHalfMaxD) o->second.carried_lo = read.lo;
      if (o->second.hi > kHalfMaxD) o->second.carried_hi = read.hi;
    }
  }
  return hazard;
}

std::unordered_map<const onnx::NodeProto*, Fp16Hazard> Fp16SafetyAnalysis::Analyze(
    const onnx::GraphProto& g) {
  AddConstants(g);
  std::unordered_map<const onnx::NodeProto*, Fp16Hazard> hazards;
  for (const auto& n : g.node()) {
    if (auto h = Visit(n)) hazards.emplace(&n, *std::move(h));
  }
  // Backwards: the values beyond the range that some reader needs exactly
  // (FP16 would give it +-inf): graph outputs, what a kept node reads.
  std::unordered_set<std::string> needed;
  for (const auto& o : g.output()) {
    if (BeyondRange(Bound(o.name())).Any()) needed.insert(o.name());
  }
  for (int i = g.node_size() - 1; i >= 0; --i) {
    const onnx::NodeProto& n = g.node(i);
    Beyond read;
    std::string read_name;
    for (const auto& in : n.input()) {
      if (in.empty() || IsConstant(in)) continue;
      const Beyond b = BeyondRange(Bound(in));
      if (!b.Any()) continue;
      if (read_name.empty()) read_name = in;
      read.lo = std::max(read.lo, b.lo);
      read.hi = std::max(read.hi, b.hi);
    }
    bool writes_beyond = false;
    std::string needed_out;
    for (const auto& out : n.output()) {
      if (out.empty()) continue;
      if (BeyondRange(Bound(out)).Any()) writes_beyond = true;
      if (needed_out.empty() && needed.count(out) > 0) needed_out = out;
    }
    bool kept = hazards.count(&n) > 0;
    if (!kept && !needed_out.empty()) {
      // Writes a value beyond the range that is needed exactly.
      hazards.emplace(&n, Fp16Hazard{"activation_out_of_range", needed_out,
                                     BeyondRange(Bound(needed_out)).Max()});
      kept = true;
    } else if (!kept && read.Any() && !writes_beyond && !AbsorbsInfinity(n, read)) {
      // Brings a value beyond the range back inside: it needs the exact value.
      hazards.emplace(&n, Fp16Hazard{"activation_out_of_range", read_name, read.Max()});
      kept = true;
    }
    if (!kept) continue;
    for (const auto& in : n.input()) {
      if (!in.empty() && !IsConstant(in) && BeyondRange(Bound(in)).Any()) needed.insert(in);
    }
  }
  return hazards;
}

}  // namespace quantd::core
