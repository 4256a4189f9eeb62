#include "core/onnx/opset_convert.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/onnx/opset.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/onnx/onnx_check.h"
#include "quantd/core/onnx/onnx_types.h"
#include "quantd/core/onnx/quantize_pass.h"
#include "test_models.h"

namespace quantd::core {
namespace {

using ::quantd::testing::AddNode;
using ::quantd::testing::CountOps;
using ::quantd::testing::FindNode;
using ::quantd::testing::FloatTensor;
using ::quantd::testing::Init;
using ::quantd::testing::NodeOfType;
using ::quantd::testing::RandomFloats;
using ::quantd::testing::Value;
using ::testing::Contains;
using ::testing::HasSubstr;

onnx::AttributeProto* Attr(onnx::NodeProto* n, const std::string& name,
                           onnx::AttributeProto::AttributeType type) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(type);
  return a;
}
void Ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
  auto* a = Attr(n, name, onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}
void Float(onnx::NodeProto* n, const std::string& name, float v) {
  Attr(n, name, onnx::AttributeProto::FLOAT)->set_f(v);
}
void String(onnx::NodeProto* n, const std::string& name, const std::string& v) {
  Attr(n, name, onnx::AttributeProto::STRING)->set_s(v);
}
const onnx::AttributeProto* FindAttr(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

// An opset-9 graph of ops that changed meaning after 9, with values named by
// number as PyTorch names them:
//   x[1,96] -> Slice(attrs) -> "3" -> Clip(attrs) -> "4" -> MatMul(W[64,48]) -> "5"
//   -> MatMul(Constant "6" [48,64]) -> "7" -> Gemm(G[32,64], Gb, transB) -> y[1,32]
//   img[1,2,3,4] -> Upsample(scales) -> BatchNormalization -> up
//   x -> com.microsoft.Gelu -> "8" (a node of another domain)
onnx::ModelProto Opset9Net() {
  onnx::ModelProto m;
  m.set_ir_version(4);
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(9);
  auto* ms = m.add_opset_import();
  ms->set_domain("com.microsoft");
  ms->set_version(1);
  auto* g = m.mutable_graph();
  g->set_name("opset9");
  *g->add_input() = Value("x", kOnnxFloat, {1, 96});
  *g->add_input() = Value("img", kOnnxFloat, {1, 2, 3, 4});
  *g->add_output() = Value("y", kOnnxFloat, {1, 32});
  *g->add_output() = Value("up", kOnnxFloat, {1, 2, 6, 8});
  *g->add_output() = Value("8", kOnnxFloat, {1, 96});
  *g->add_initializer() = FloatTensor("W", {64, 48}, RandomFloats(64 * 48, 1, 0.1f));
  *g->add_initializer() = FloatTensor("G", {32, 64}, RandomFloats(32 * 64, 2, 0.1f));
  *g->add_initializer() = FloatTensor("scales", {4}, {1, 1, 2, 2});
  for (const char* bn : {"bn_scale", "bn_bias", "bn_mean", "bn_var"}) {
    *g->add_initializer() = FloatTensor(bn, {2}, {0.5f, 1.5f});
  }
  auto* slice = AddNode(g, "Slice", "slice", {"x"}, {"3"});
  Ints(slice, "starts", {16});
  Ints(slice, "ends", {80});
  Ints(slice, "axes", {1});
  auto* clip = AddNode(g, "Clip", "clip", {"3"}, {"4"});
  Float(clip, "min", -1.5f);
  Float(clip, "max", 1.5f);
  AddNode(g, "MatMul", "fc1", {"4", "W"}, {"5"});
  auto* c = AddNode(g, "Constant", "fc2_weight", {}, {"6"});
  *Attr(c, "value", onnx::AttributeProto::TENSOR)->mutable_t() =
      FloatTensor("fc2_weight_value", {48, 64}, RandomFloats(48 * 64, 3, 0.1f));
  AddNode(g, "MatMul", "fc2", {"5", "6"}, {"7"});
  *g->add_initializer() = FloatTensor("Gb", {32}, RandomFloats(32, 4, 0.1f));
  auto* gemm = AddNode(g, "Gemm", "fc3", {"7", "G", "Gb"}, {"y"});
  Attr(gemm, "transB", onnx::AttributeProto::INT)->set_i(1);
  String(AddNode(g, "Upsample", "upsample", {"img", "scales"}, {"up0"}), "mode", "linear");
  AddNode(g, "BatchNormalization", "bn", {"up0", "bn_scale", "bn_bias", "bn_mean", "bn_var"},
          {"up"});
  AddNode(g, "Gelu", "gelu", {"x"}, {"8"})->set_domain("com.microsoft");
  return m;
}

TEST(OpsetConvertTest, ConverterReachesOpset17) { EXPECT_GE(MaxConvertibleOpset(), 17); }

TEST(OpsetConvertTest, ConvertsAttributesToInputsAndKeepsTheTensorsInPlace) {
  onnx::ModelProto m = Opset9Net();
  // Values "20".."99": the numbers the converter would give its new values.
  *m.mutable_graph()->add_output() = Value("99", kOnnxFloat, {1, 96});
  for (int i = 20; i < 99; ++i) {
    AddNode(m.mutable_graph(), "Identity", absl::StrCat("id", i),
            {i == 20 ? "x" : absl::StrCat(i - 1)}, {absl::StrCat(i)});
  }
  AddNode(m.mutable_graph(), "Identity", "id99", {"98"}, {"99"});
  // The weights must move into the converted graph, not be copied: their
  // bytes stay at the same address.
  const void* w_bytes = Init(m.graph(), "W")->raw_data().data();
  const void* c_bytes = FindNode(m.graph(), "fc2_weight")->attribute(0).t().raw_data().data();
  const std::string w_raw = Init(m.graph(), "W")->raw_data();

  ASSERT_TRUE(ConvertOpset(&m, 13).ok());
  const auto& g = m.graph();
  EXPECT_EQ(DefaultOpset(m), 13);
  EXPECT_GE(m.ir_version(), 7);
  EXPECT_EQ(m.opset_import_size(), 2);  // com.microsoft kept

  EXPECT_EQ(Init(g, "W")->raw_data().data(), w_bytes);
  EXPECT_EQ(Init(g, "W")->raw_data(), w_raw);
  const onnx::NodeProto* c = FindNode(g, "fc2_weight");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->attribute(0).t().raw_data().data(), c_bytes);
  EXPECT_EQ(c->attribute(0).t().name(), "fc2_weight_value");

  // Slice: starts, ends, axes as inputs; Clip: min, max as inputs.
  const onnx::NodeProto* slice = FindNode(g, "slice");
  ASSERT_NE(slice, nullptr);
  EXPECT_EQ(slice->input_size(), 4);
  EXPECT_EQ(slice->attribute_size(), 0);
  const onnx::NodeProto* clip = FindNode(g, "clip");
  ASSERT_NE(clip, nullptr);
  EXPECT_EQ(clip->input_size(), 3);
  EXPECT_EQ(clip->attribute_size(), 0);
  // Upsample became Resize with Upsample's sampling.
  EXPECT_EQ(CountOps(g, "Upsample"), 0);
  const onnx::NodeProto* resize = NodeOfType(g, "Resize");
  ASSERT_NE(resize, nullptr);
  ASSERT_NE(FindAttr(*resize, "coordinate_transformation_mode"), nullptr);
  EXPECT_EQ(FindAttr(*resize, "coordinate_transformation_mode")->s(), "asymmetric");
  EXPECT_EQ(CountOps(g, "BatchNormalization"), 1);
  // The node of another domain is back as it was.
  const onnx::NodeProto* gelu = FindNode(g, "gelu");
  ASSERT_NE(gelu, nullptr);
  EXPECT_EQ(gelu->op_type(), "Gelu");
  EXPECT_EQ(gelu->domain(), "com.microsoft");

  // The constants the converter made hold their data as raw bytes (what
  // OnnxModel reads), and no value name is produced twice: the converter's
  // numbered names cannot collide with the model's "3".."8".
  std::set<std::string> produced;
  for (const auto& n : g.node()) {
    for (const auto& out : n.output()) {
      EXPECT_TRUE(produced.insert(out).second) << "'" << out << "' produced twice";
    }
    if (n.op_type() != "Constant") continue;
    const auto& t = n.attribute(0).t();
    EXPECT_TRUE(t.has_raw_data()) << n.output(0);
    EXPECT_EQ(t.int64_data_size() + t.float_data_size(), 0) << n.output(0);
  }
  for (const char* v : {"3", "4", "5", "6", "7", "8"}) EXPECT_EQ(produced.count(v), 1u) << v;
  EXPECT_EQ(FindNode(g, "id21")->input(0), "20");
  EXPECT_EQ(slice->input(0), "x");
  EXPECT_EQ(clip->input(0), "3");
  EXPECT_EQ(FindNode(g, "fc1")->input(0), "4");
}

TEST(OpsetConvertTest, ConvertsSubgraphs) {
  onnx::ModelProto m = Opset9Net();
  auto* g = m.mutable_graph();
  *g->add_input() = Value("cond", kOnnxBool, {});
  *g->add_output() = Value("branch", kOnnxFloat, {1, 4});
  onnx::GraphProto body;
  body.set_name("body");
  *body.add_output() = Value("s", kOnnxFloat, {1, 4});
  auto* s = AddNode(&body, "Slice", "inner_slice", {"x"}, {"s"});
  Ints(s, "starts", {0});
  Ints(s, "ends", {4});
  Ints(s, "axes", {1});
  auto* iff = AddNode(g, "If", "if", {"cond"}, {"branch"});
  *Attr(iff, "then_branch", onnx::AttributeProto::GRAPH)->mutable_g() = body;
  *Attr(iff, "else_branch", onnx::AttributeProto::GRAPH)->mutable_g() = body;

  ASSERT_TRUE(ConvertOpset(&m, 11).ok());
  const onnx::NodeProto* inner =
      FindNode(FindNode(m.graph(), "if")->attribute(0).g(), "inner_slice");
  ASSERT_NE(inner, nullptr);
  EXPECT_EQ(inner->input_size(), 4);
}

TEST(OpsetConvertTest, RefusesOpsWithoutAnAdapterNamingThem) {
  // Equal-7 broadcasts where Equal-1 did not; libonnx has no 6 -> 7 adapter.
  onnx::ModelProto m = Opset9Net();
  m.mutable_opset_import(0)->set_version(6);
  AddNode(m.mutable_graph(), "Equal", "eq", {"x", "x"}, {"eq_out"});
  const onnx::ModelProto before = m;
  absl::Status st = ConvertOpset(&m, 10);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), HasSubstr("no adapter for Equal (opset 6 to 7)"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("libonnx"));
  EXPECT_EQ(m.SerializeAsString(), before.SerializeAsString());  // untouched

  st = ConvertOpset(&m, MaxConvertibleOpset() + 1);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), HasSubstr("converts up to opset"));
}

Recipe Int8(Int8Mode mode, bool per_channel) {
  Recipe r;
  r.precision = Precision::kInt8;
  r.int8_mode = mode;
  r.per_channel = per_channel;
  return r;
}

TEST(OpsetConvertTest, PlanConvertsWhenTheCheapRaiseWouldChangeTheMeaning) {
  struct Case {
    Recipe recipe;
    int64_t opset;
  };
  for (const Case& c :
       {Case{Int8(Int8Mode::kWeightOnly, false), 10}, Case{Int8(Int8Mode::kWeightOnly, true), 13},
        Case{Int8(Int8Mode::kDynamic, false), 11}}) {
    onnx::ModelProto m = Opset9Net();
    std::vector<std::string> notes;
    auto plan = PlanOpsets(c.recipe, false, &m, &notes);
    ASSERT_TRUE(plan.ok()) << plan.status();
    EXPECT_EQ(plan->opset, c.opset);
    EXPECT_EQ(DefaultOpset(m), c.opset);
    EXPECT_EQ(plan->int8_per_channel, c.opset >= 13);
    EXPECT_THAT(notes,
                Contains(HasSubstr(absl::StrCat("converted the default opset from 9 to ", c.opset,
                                                " with the ONNX version converter (libonnx "))));
    EXPECT_THAT(notes, Contains(HasSubstr("Slice (changed in opset 10)")));
  }
  // Without an op that changed, only the version number moves.
  onnx::ModelProto plain = Opset9Net();
  auto* g = plain.mutable_graph();
  for (int i = g->node_size() - 1; i >= 0; --i) {
    const std::string& op = g->node(i).op_type();
    if (op == "Slice" || op == "Clip" || op == "Upsample") g->mutable_node()->DeleteSubrange(i, 1);
  }
  onnx::ModelProto raised = plain;
  std::vector<std::string> notes;
  auto plan = PlanOpsets(Int8(Int8Mode::kDynamic, false), false, &raised, &notes);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(notes, Contains("raised the default opset from 9 to 11"));
  SetDefaultOpset(&plain, 11);
  EXPECT_EQ(raised.SerializeAsString(), plain.SerializeAsString());
}

TEST(OpsetConvertTest, QuantizesConvertedModels) {
  for (const Recipe& r : {Int8(Int8Mode::kWeightOnly, true), Int8(Int8Mode::kDynamic, false)}) {
    auto model = OnnxModel::FromProto(Opset9Net(), ::testing::TempDir());
    ASSERT_TRUE(model.ok()) << model.status();
    Report report;
    absl::Status st = QuantizeOnnxWeights(model->get(), r, &report, RunContext());
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_EQ(report.tensors_converted, 3u);  // W, the Constant weight and G
    const auto& g = (*model)->proto().graph();
    EXPECT_EQ(CountOps(g, r.int8_mode == Int8Mode::kDynamic ? "MatMulInteger" : "DequantizeLinear"),
              3);
    EXPECT_TRUE(CheckOnnxOutput(&(*model)->proto()).ok());
  }
}

TEST(OpsetConvertTest, RefusalNamesTheOpAndTheVersions) {
  onnx::ModelProto m = Opset9Net();
  m.mutable_opset_import(0)->set_version(6);
  AddNode(m.mutable_graph(), "Equal", "eq", {"x", "x"}, {"eq_out"});
  auto model = OnnxModel::FromProto(m, ::testing::TempDir());
  ASSERT_TRUE(model.ok()) << model.status();
  Report report;
  absl::Status st =
      QuantizeOnnxWeights(model->get(), Int8(Int8Mode::kWeightOnly, false), &report, RunContext());
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("cannot be raised to opset 10 without changing its meaning: "
                        "Upsample (changed in opset 10), Slice (changed in opset 10)"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("no adapter for Equal (opset 6 to 7)"));
}

}  // namespace
}  // namespace quantd::core
