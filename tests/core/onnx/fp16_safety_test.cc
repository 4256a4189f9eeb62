// The FP16 safety rules (core/onnx/fp16_safety.h) through the float pass:
// which nodes FP32 -> FP16 keeps in FP32, with which reason, and that
// ordinary models keep none.
#include "core/onnx/fp16_safety.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/base/half.h"
#include "quantd/core/onnx/float_pass.h"
#include "quantd/core/onnx/onnx_types.h"
#include "quantd/core/run.h"
#include "test_models.h"

namespace quantd::core {
namespace {

namespace fs = std::filesystem;
using ::quantd::testing::AddNode;
using ::quantd::testing::FindNode;
using ::quantd::testing::FloatTensor;
using ::quantd::testing::MakeTempDir;
using ::quantd::testing::ReadModelProto;
using ::quantd::testing::Value;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// A model x[dims] -> nodes -> y (FLOAT), opset 17; nodes added by the test.
struct Net {
  onnx::ModelProto m;
  onnx::GraphProto* g;
  explicit Net(std::vector<int64_t> dims = {1, 8}) {
    m.set_ir_version(8);
    m.add_opset_import()->set_version(17);
    g = m.mutable_graph();
    g->set_name("net");
    *g->add_input() = Value("x", kOnnxFloat, dims);
  }
  void Const(const std::string& name, std::vector<int64_t> dims, std::vector<float> v) {
    *g->add_initializer() = FloatTensor(name, std::move(dims), v);
  }
  void Scalar(const std::string& name, float v) { Const(name, {}, {v}); }
  onnx::NodeProto* Node(const std::string& op, std::vector<std::string> in,
                        const std::string& out) {
    return AddNode(g, op, out, std::move(in), {out});  // node named after its output
  }
  void Output(const std::string& name, std::vector<int64_t> dims = {1, 8}) {
    *g->add_output() = Value(name, kOnnxFloat, dims);
  }
};

void SetFloatAttr(onnx::NodeProto* n, const std::string& name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

Recipe Fp16(bool force = false) {
  Recipe r;
  r.precision = Precision::kFp16;
  r.force_fp16 = force;
  return r;
}

// Converts `m` to FP16; returns the saved proto, fills `report`.
onnx::ModelProto Convert(const onnx::ModelProto& m, Report* report, bool force = false) {
  std::string dir = MakeTempDir("quantd-fp16safety");
  auto model = OnnxModel::FromProto(m, dir);
  EXPECT_TRUE(model.ok()) << model.status();
  RunContext ctx;
  EXPECT_TRUE(ConvertFloatPrecision(model->get(), Fp16(force), report, ctx).ok());
  auto saved = (*model)->Save(dir + "/out.onnx", SaveOptions(), ctx);
  EXPECT_TRUE(saved.ok()) << saved.status();
  onnx::ModelProto out = ReadModelProto(dir + "/out.onnx");
  fs::remove_all(dir);
  return out;
}

// "node/reason/input" of each kept_fp32 entry.
std::vector<std::string> Kept(const Report& r) {
  std::vector<std::string> v;
  for (const auto& k : r.kept_fp32) v.push_back(k.node + "/" + k.reason + "/" + k.input);
  return v;
}

std::vector<std::string> KeptWith(const onnx::ModelProto& m, bool force = false) {
  Report r;
  Convert(m, &r, force);
  return Kept(r);
}

// Sigmoid reaches (0, 1); * 400 * 300 reaches 1.2e5 although both constants
// are in range: that Mul and its reader are kept, the scale-down brings the
// value back and the rest is FP16.
TEST(Fp16SafetyTest, ConstantChainAfterSigmoidBeyondRangeIsKept) {
  Net n;
  n.Scalar("k400", 400);
  n.Scalar("k300", 300);
  n.Scalar("milli", 1e-3f);
  n.Node("Sigmoid", {"x"}, "s");
  n.Node("Mul", {"s", "k400"}, "u");
  n.Node("Mul", {"u", "k300"}, "v");
  n.Node("Mul", {"v", "milli"}, "z");
  n.Node("Relu", {"z"}, "y");
  n.Output("y");
  Report r;
  onnx::ModelProto out = Convert(n.m, &r);
  EXPECT_THAT(Kept(r), ElementsAre("v/activation_out_of_range/v", "z/activation_out_of_range/v"));
  EXPECT_EQ(r.kept_fp32[0].max_abs, 120000.0);
  EXPECT_EQ(r.kept_fp32[0].op, "Mul");
  // v and z share FP32 (z reads v directly); u is FP16 and cast in front of v.
  EXPECT_EQ(FindNode(out.graph(), "z")->input(0), "v");
  EXPECT_NE(FindNode(out.graph(), "v")->input(0), "u");
  EXPECT_NE(r.ToJson().find("\"reason\": \"activation_out_of_range\""), std::string::npos)
      << r.ToJson();
  EXPECT_THAT(KeptWith(n.m, /*force=*/true), IsEmpty());
}

// The same chain whose product (6e4) stays in range keeps nothing.
TEST(Fp16SafetyTest, ConstantChainWithinRangeKeepsNothing) {
  Net n;
  n.Scalar("k200", 200);
  n.Scalar("k300", 300);
  n.Node("Tanh", {"x"}, "s");
  n.Node("Mul", {"s", "k200"}, "u");
  n.Node("Mul", {"u", "k300"}, "y");
  n.Output("y");
  EXPECT_THAT(KeptWith(n.m), IsEmpty());
}

// An unbounded upper bound alone never keeps a node: Relu(x) + 6e4 is in
// [6e4, inf) but realistic inputs stay near 6e4.
TEST(Fp16SafetyTest, UnboundedActivationIsNeverKept) {
  Net n;
  n.Scalar("big", 60000);
  n.Scalar("k", 50);
  n.Node("Relu", {"x"}, "r");
  n.Node("Add", {"r", "big"}, "a");
  n.Node("Relu", {"x"}, "r2");
  n.Node("Mul", {"r2", "k"}, "b");
  n.Node("Add", {"a", "b"}, "y");
  n.Output("y");
  EXPECT_THAT(KeptWith(n.m), IsEmpty());
}

// Two in-range constants added to an activation: 40000 + 40000 leaves the
// range. A Mul by 1e-2 brings it back and needs the exact value: both kept.
// A Sigmoid computes the same from +inf: nothing kept.
TEST(Fp16SafetyTest, AddedConstantsBeyondRangeAreKeptWhereTheyComeBack) {
  for (const char* reader : {"Mul", "Sigmoid"}) {
    Net n;
    n.Scalar("c", 40000);
    n.Scalar("centi", 1e-2f);
    n.Node("Add", {"x", "c"}, "a");
    n.Node("Add", {"a", "c"}, "b");
    if (std::string(reader) == "Mul") {
      n.Node("Mul", {"b", "centi"}, "y");
    } else {
      n.Node("Sigmoid", {"b"}, "y");
    }
    n.Output("y");
    if (std::string(reader) == "Mul") {
      EXPECT_THAT(KeptWith(n.m),
                  ElementsAre("b/activation_out_of_range/b", "y/activation_out_of_range/b"));
    } else {
      EXPECT_THAT(KeptWith(n.m), IsEmpty());
    }
  }
}

// A value beyond the range that is a graph output is kept (FP16 would give inf).
TEST(Fp16SafetyTest, GraphOutputBeyondRangeIsKept) {
  Net n;
  n.Scalar("c", 50000);
  n.Node("Tanh", {"x"}, "t");
  n.Node("Mul", {"t", "c"}, "u");
  n.Node("Add", {"u", "c"}, "y");
  n.Output("y");
  EXPECT_THAT(KeptWith(n.m), ElementsAre("y/activation_out_of_range/y"));
}

// Additive attention masks: a constant -1e9 keeps the Add reading it
// (constant_out_of_range); the Softmax reads -inf in FP16 and computes the
// same exp(-inf) = 0, so it stays FP16. The same for a mask computed as
// (1 - m) * -3.4e38 (the usual export): only the Mul is kept.
TEST(Fp16SafetyTest, AdditiveMaskKeepsOnlyTheNodeReadingTheConstant) {
  {
    Net n;
    n.Const("mask", {1, 8}, {0, 0, 0, 0, -1e9f, -1e9f, -1e9f, -1e9f});
    n.Node("Add", {"x", "mask"}, "s");
    n.Node("Softmax", {"s"}, "y");
    n.Output("y");
    EXPECT_THAT(KeptWith(n.m), ElementsAre("s/constant_out_of_range/mask"));
  }
  Net n;
  *n.g->add_input() = Value("m", kOnnxFloat, {1, 8});
  n.Scalar("one", 1);
  n.Scalar("lowest", -3.4e38f);
  n.Node("Sub", {"one", "m"}, "inv");
  n.Node("Mul", {"inv", "lowest"}, "bias");
  n.Node("Add", {"x", "bias"}, "s");
  n.Node("Softmax", {"s"}, "y");
  n.Output("y");
  EXPECT_THAT(KeptWith(n.m), ElementsAre("bias/constant_out_of_range/lowest"));
}

// A divisor that FP16 flushes to zero: the Div is kept (underflow); its
// output (1e8 times an activation) is beyond the range, but the Tanh reading
// it computes the same from inf and stays FP16. Dividing by 2 keeps nothing.
TEST(Fp16SafetyTest, DivisorFlushedToZeroIsKept) {
  for (float divisor : {1e-8f, 2.0f}) {
    Net n;
    n.Scalar("d", divisor);
    n.Node("Div", {"x", "d"}, "q");
    n.Node("Tanh", {"q"}, "y");
    n.Output("y");
    Report r;
    Convert(n.m, &r);
    if (divisor == 2.0f) {
      EXPECT_THAT(Kept(r), IsEmpty());
      continue;
    }
    EXPECT_THAT(Kept(r), ElementsAre("q/underflow/d"));
    EXPECT_EQ(r.kept_fp32[0].max_abs, static_cast<double>(1e-8f));
    EXPECT_EQ(r.values_flushed, 0u);  // the divisor stays FP32
  }
}

// A decomposed RMS norm whose epsilon (1e-9) flushes: the Add, the Sqrt and
// the Div that read the vanished guard are kept; the gamma Mul is FP16. With
// epsilon 1e-6 (representable) nothing is kept.
TEST(Fp16SafetyTest, VanishingEpsilonKeepsTheGuardedChain) {
  for (float eps : {1e-9f, 1e-6f}) {
    Net n;
    n.Scalar("eps", eps);
    n.Const("gamma", {8}, {1, 1, 1, 1, 2, 2, 2, 2});
    n.Node("Mul", {"x", "x"}, "sq");
    n.Node("ReduceMean", {"sq"}, "ms");
    n.Node("Add", {"ms", "eps"}, "ms_eps");
    n.Node("Sqrt", {"ms_eps"}, "rms");
    n.Node("Div", {"x", "rms"}, "normed");
    n.Node("Mul", {"normed", "gamma"}, "y");
    n.Output("y");
    if (eps == 1e-6f) {
      EXPECT_THAT(KeptWith(n.m), IsEmpty());
      continue;
    }
    EXPECT_THAT(KeptWith(n.m), ElementsAre("ms_eps/underflow/eps", "rms/underflow/ms_eps",
                                           "normed/underflow/rms"));
    EXPECT_THAT(KeptWith(n.m, /*force=*/true), IsEmpty());
  }
}

// A MatMul weight at least half of whose nonzero values flush collapses the
// output (kept); a few flushed values among many are ordinary (converted and
// counted as flushed).
TEST(Fp16SafetyTest, WeightMostlyFlushedToZeroIsKept) {
  for (int tiny : {6, 2}) {
    Net n;
    std::vector<float> w(8 * 2, 0.0f);
    for (int i = 0; i < 8; ++i) w[2 * i] = i < tiny ? 1e-9f : 0.5f;  // 8 nonzero values
    n.Const("w", {8, 2}, w);
    n.Node("MatMul", {"x", "w"}, "y");
    n.Output("y", {1, 2});
    Report r;
    Convert(n.m, &r);
    if (tiny == 6) {
      EXPECT_THAT(Kept(r), ElementsAre("y/underflow/w"));
      EXPECT_EQ(r.values_flushed, 0u);  // the weight stays FP32
    } else {
      EXPECT_THAT(Kept(r), IsEmpty());
      EXPECT_EQ(r.values_flushed, 2u);
    }
  }
}

// A scalar Mul by a constant that flushes collapses the output.
TEST(Fp16SafetyTest, ScaleFlushedToZeroIsKept) {
  Net n;
  n.Scalar("s", 1e-9f);
  n.Node("Mul", {"x", "s"}, "y");
  n.Output("y");
  EXPECT_THAT(KeptWith(n.m), ElementsAre("y/underflow/s"));
}

// The flush limit is FP16's own: 2^-25 rounds to zero (a tie to even), the
// next float up rounds to the smallest subnormal.
TEST(Fp16SafetyTest, FlushLimitMatchesTheConversion) {
  const float limit = std::ldexp(1.0f, -25);
  const float above = std::nextafter(limit, 1.0f);
  ASSERT_EQ(FloatToHalf(limit), 0u);
  ASSERT_NE(FloatToHalf(above), 0u);
  for (float scale : {limit, above}) {
    Net n;
    n.Scalar("s", scale);
    n.Node("Mul", {"x", "s"}, "y");
    n.Output("y");
    if (scale == limit) {
      EXPECT_THAT(KeptWith(n.m), ElementsAre("y/underflow/s"));
    } else {
      EXPECT_THAT(KeptWith(n.m), IsEmpty());
    }
  }
}

// BatchNormalization with a zero-variance channel and an epsilon that flushes
// divides by zero in FP16 arithmetic: kept. The default epsilon (1e-5) is fine.
TEST(Fp16SafetyTest, BatchNormDenominatorFlushedToZeroIsKept) {
  for (float eps : {1e-9f, 1e-5f}) {
    Net n({1, 2, 4});
    n.Const("scale", {2}, {1, 1});
    n.Const("bias", {2}, {0, 0});
    n.Const("mean", {2}, {0, 0});
    n.Const("var", {2}, {1, 0});
    SetFloatAttr(n.Node("BatchNormalization", {"x", "scale", "bias", "mean", "var"}, "y"),
                 "epsilon", eps);
    n.Output("y", {1, 2, 4});
    if (eps == 1e-5f) {
      EXPECT_THAT(KeptWith(n.m), IsEmpty());
    } else {
      EXPECT_THAT(KeptWith(n.m), ElementsAre("y/underflow/var"));
    }
  }
}

// A constant beyond the range keeps its reason and its old fields.
TEST(Fp16SafetyTest, ConstantBeyondRangeReasonIsReported) {
  Net n;
  n.Scalar("big", 1e5f);
  n.Node("Mul", {"x", "big"}, "y");
  n.Output("y");
  Report r;
  Convert(n.m, &r);
  ASSERT_THAT(Kept(r), ElementsAre("y/constant_out_of_range/big"));
  EXPECT_EQ(r.kept_fp32[0].max_abs, 1e5);
  const std::string json = r.ToJson(false);
  EXPECT_NE(json.find("\"kept_fp32\":[{\"node\":\"y\",\"op\":\"Mul\",\"input\":\"big\","
                      "\"max_abs\":100000,\"reason\":\"constant_out_of_range\"}]"),
            std::string::npos)
      << json;
}

// The analysis on its own: Softmax and Clip bound their outputs, Concat
// takes the hull, Reshape passes through.
TEST(Fp16SafetyTest, BoundsOfSaturatingAndShapeOps) {
  Net n;
  n.Scalar("lo", -2);
  n.Scalar("hi", 6);
  n.Node("Softmax", {"x"}, "p");
  n.Node("Clip", {"x", "lo", "hi"}, "c");
  n.Node("Concat", {"p", "c"}, "pc");
  n.Node("Flatten", {"pc"}, "r");
  n.Node("Exp", {"x"}, "e");
  const std::string dir = MakeTempDir("quantd-fp16bounds");
  auto model = OnnxModel::FromProto(n.m, dir);
  ASSERT_TRUE(model.ok());
  const RunContext ctx;
  Fp16SafetyAnalysis a(model->get(), ctx);
  a.AddConstants((*model)->proto().graph());
  for (const auto& node : (*model)->proto().graph().node()) EXPECT_FALSE(a.Visit(node));
  const ValueBound p = a.Bound("p"), c = a.Bound("c"), r = a.Bound("r"), e = a.Bound("e");
  EXPECT_EQ(p.lo, 0);
  EXPECT_EQ(p.hi, 1);
  EXPECT_TRUE(p.has_reach);
  EXPECT_EQ(c.lo, -2);
  EXPECT_EQ(c.hi, 6);
  EXPECT_EQ(c.reach_lo, -2);
  EXPECT_EQ(c.reach_hi, 6);
  EXPECT_EQ(r.lo, -2);
  EXPECT_EQ(r.hi, 6);
  EXPECT_EQ(r.reach_hi, 6);
  EXPECT_TRUE(e.assumed);  // not modelled: an ordinary activation
  fs::remove_all(dir);
}

std::string FileBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// The shared public models keep nothing in FP32, so their FP16 conversion is
// the same, byte for byte, as with --force-fp16 (which skips the analysis).
TEST(Fp16SafetyTest, PublicModelsKeepNothingAndConvertAsForced) {
  for (const char* rel :
       {"genai-tiny-random-gpt2-fp32/past.onnx", "genai-tiny-random-llama-fp16-extdata/model.onnx",
        "genai-webgpu-tiny-gqa/model.onnx",
        "openvino-matmulnbits-3x4/matmulnbits_3x4.as-published.onnx"}) {
    const std::string in = std::string(QUANTD_TESTDATA) + "/onnx/" + rel;
    std::string dir = MakeTempDir("quantd-fp16public");
    fs::create_directories(dir + "/safe");
    fs::create_directories(dir + "/forced");
    // The same file name in two folders: the model names its data file.
    auto safe = ::quantd::core::Run(Fp16(), in, dir + "/safe/model.onnx");
    auto forced = ::quantd::core::Run(Fp16(true), in, dir + "/forced/model.onnx");
    ASSERT_TRUE(safe.ok()) << rel << ": " << safe.status();
    ASSERT_TRUE(forced.ok()) << rel << ": " << forced.status();
    EXPECT_THAT(Kept(*safe), IsEmpty()) << rel;
    ASSERT_EQ(safe->output_files.size(), forced->output_files.size()) << rel;
    ASSERT_FALSE(safe->output_files.empty());
    for (size_t i = 0; i < safe->output_files.size(); ++i) {
      const std::string a = FileBytes(safe->output_files[i]);
      EXPECT_FALSE(a.empty()) << safe->output_files[i];
      EXPECT_EQ(a, FileBytes(forced->output_files[i]))
          << rel << ": " << safe->output_files[i] << " differs";
    }
    EXPECT_EQ(safe->values_flushed, forced->values_flushed) << rel;
    EXPECT_EQ(safe->values_clamped, forced->values_clamped) << rel;
    EXPECT_EQ(safe->casts_inserted, forced->casts_inserted) << rel;
    fs::remove_all(dir);
  }
}

}  // namespace
}  // namespace quantd::core
