#include "quantd/core/onnx/quantize_pass.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/layer_index.h"
#include "quantd/core/onnx/onnx_types.h"
#include "quantd/core/quant/int4_blockwise.h"
#include "quantd/core/quant/weight_quantizer.h"
#include "test_models.h"

namespace quantd::core {
namespace {

namespace fs = std::filesystem;
using ::quantd::testing::AddNode;
using ::quantd::testing::CountOps;
using ::quantd::testing::FloatTensor;
using ::quantd::testing::Init;
using ::quantd::testing::MakeTempDir;
using ::quantd::testing::NodeOfType;
using ::quantd::testing::RandomFloats;
using ::quantd::testing::ReadModelProto;
using ::quantd::testing::Value;
using ::testing::HasSubstr;

constexpr int64_t kK = 64, kN = 48;

onnx::ModelProto Base(int64_t opset = 17) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  auto* g = m.mutable_graph();
  g->set_name("g");
  *g->add_input() = Value("x", kOnnxFloat, {1, kK});
  return m;
}

// x[1,64] -> MatMul(W[64,48]) -> y
onnx::ModelProto OneMatMul(int64_t opset = 17) {
  onnx::ModelProto m = Base(opset);
  auto* g = m.mutable_graph();
  *g->add_output() = Value("y", kOnnxFloat, {1, kN});
  *g->add_initializer() = FloatTensor("W", {kK, kN}, RandomFloats(kK * kN, 3, 0.1f));
  AddNode(g, "MatMul", "mm", {"x", "W"}, {"y"});
  return m;
}

struct Result {
  absl::Status status;
  onnx::ModelProto proto;
  Report report;
};

Result Quantize(const onnx::ModelProto& m, const Recipe& r, const CancelToken* cancel = nullptr) {
  Result out;
  std::string dir = MakeTempDir("quantd-int");
  auto model = OnnxModel::FromProto(m, dir);
  EXPECT_TRUE(model.ok()) << model.status();
  RunContext ctx;
  ctx.cancel = cancel;
  out.status = QuantizeOnnxWeights(model->get(), r, &out.report, ctx);
  if (out.status.ok()) {
    auto saved = (*model)->Save(dir + "/out.onnx", SaveOptions(), ctx);
    out.status = saved.status();
    if (saved.ok()) {
      out.proto = ReadModelProto(dir + "/out.onnx");
    } else {
      EXPECT_FALSE(fs::exists(dir + "/out.onnx"));
    }
  }
  fs::remove_all(dir);
  return out;
}

Recipe Int4() {
  Recipe r;
  r.precision = Precision::kInt4;
  return r;
}

int64_t Attr(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return a.i();
  }
  return -1;
}
std::vector<int64_t> Dims(const onnx::TensorProto& t) { return {t.dims().begin(), t.dims().end()}; }

// The kernel's bytes for W as the consumer reads it (for cross-checks).
std::vector<uint8_t> KernelBytes(const std::vector<float>& w, bool transposed, int bs, bool sym) {
  quant::Int4Options o;
  o.block_size = bs;
  o.symmetric = sym;
  auto sizes = quant::ComputeInt4Sizes(kK, kN, o);
  std::vector<uint8_t> packed(sizes.packed_bytes, 0), zp(sizes.zero_point_bytes, 0);
  std::vector<float> scales(sizes.scale_count);
  quant::WeightView<float> v{w.data(), kK, kN, transposed ? 1 : kN, transposed ? kK : 1};
  quant::QuantizeInt4(v, o, 0, kN, packed.data(), scales.data(), sym ? nullptr : zp.data());
  return packed;
}

TEST(QuantizePassTest, MatMulBecomesMatMulNBits) {
  Result r = Quantize(OneMatMul(), Int4());
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto& g = r.proto.graph();
  const auto* n = NodeOfType(g, "MatMulNBits");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->domain(), "com.microsoft");
  EXPECT_EQ(Attr(*n, "K"), kK);
  EXPECT_EQ(Attr(*n, "N"), kN);
  EXPECT_EQ(Attr(*n, "bits"), 4);
  EXPECT_EQ(Attr(*n, "block_size"), 32);
  EXPECT_EQ(Attr(*n, "accuracy_level"), -1);  // unset by default
  ASSERT_EQ(n->input_size(), 3);
  EXPECT_EQ(n->input(1), "W_Q4");
  EXPECT_EQ(n->input(2), "W_scales");
  EXPECT_EQ(n->output(0), "y");
  ASSERT_NE(Init(g, "W_Q4"), nullptr);
  EXPECT_EQ(Dims(*Init(g, "W_Q4")), (std::vector<int64_t>{kN, 2, 16}));
  EXPECT_EQ(Init(g, "W_Q4")->data_type(), kOnnxUint8);
  EXPECT_EQ(Dims(*Init(g, "W_scales")), (std::vector<int64_t>{kN * 2}));
  EXPECT_EQ(Init(g, "W_scales")->data_type(), kOnnxFloat);
  EXPECT_EQ(Init(g, "W"), nullptr) << "the float weight is gone";
  EXPECT_EQ(Init(g, "W_zero_points"), nullptr);
  bool ms = false;
  for (const auto& o : r.proto.opset_import()) ms |= o.domain() == "com.microsoft";
  EXPECT_TRUE(ms);
  // Bytes are the kernel's.
  std::vector<float> w = RandomFloats(kK * kN, 3, 0.1f);
  const std::string& raw = Init(g, "W_Q4")->raw_data();
  EXPECT_EQ(std::vector<uint8_t>(raw.begin(), raw.end()), KernelBytes(w, false, 32, true));
  // Quality report.
  ASSERT_EQ(r.report.tensors.size(), 1u);
  const TensorReport& t = r.report.tensors[0];
  EXPECT_EQ(t.name, "W");
  EXPECT_EQ(t.bytes_before, static_cast<uint64_t>(kK * kN * 4));
  EXPECT_EQ(t.bytes_after, static_cast<uint64_t>(kN * 2 * 16 + kN * 2 * 4));
  ASSERT_TRUE(t.sqnr_db.has_value());
  EXPECT_GT(*t.sqnr_db, 15.0);
  EXPECT_LT(*t.sqnr_db, 25.0);
  EXPECT_GT(*t.rel_output_error, 0.0);
  EXPECT_LT(*t.rel_output_error, 0.2);
  EXPECT_GT(*t.max_abs_error, 0.0);
  EXPECT_THAT(r.report.ToJson(), HasSubstr("\"rel_output_error\""));
}

// The report level changes the report, never the bytes: none leaves the
// quality figures out (sizes stay), summary and full both give them.
TEST(QuantizePassTest, ReportLevelChangesOnlyTheReport) {
  Result by_level[3];
  const ReportLevel levels[] = {ReportLevel::kNone, ReportLevel::kSummary, ReportLevel::kFull};
  for (int i = 0; i < 3; ++i) {
    Recipe rc = Int4();
    rc.report_level = levels[i];
    by_level[i] = Quantize(OneMatMul(), rc);
    ASSERT_TRUE(by_level[i].status.ok()) << by_level[i].status;
    ASSERT_EQ(by_level[i].report.tensors.size(), 1u);
  }
  const TensorReport& none = by_level[0].report.tensors[0];
  EXPECT_FALSE(none.sqnr_db.has_value());
  EXPECT_FALSE(none.rel_l2_error.has_value());
  EXPECT_FALSE(none.max_abs_error.has_value());
  EXPECT_FALSE(none.rel_output_error.has_value());
  EXPECT_EQ(none.bytes_after, by_level[2].report.tensors[0].bytes_after);
  for (int i = 1; i < 3; ++i) {
    const TensorReport& t = by_level[i].report.tensors[0];
    EXPECT_TRUE(t.sqnr_db && t.rel_l2_error && t.max_abs_error && t.rel_output_error) << i;
  }
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(by_level[i].proto.graph().SerializeAsString(),
              by_level[2].proto.graph().SerializeAsString())
        << i;
  }
}

TEST(QuantizePassTest, AsymmetricAddsZeroPointsAndAccuracyLevel) {
  Recipe rc = Int4();
  rc.symmetric = false;
  rc.block_size = 16;
  rc.accuracy_level = 4;
  Result r = Quantize(OneMatMul(), rc);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto* n = NodeOfType(r.proto.graph(), "MatMulNBits");
  ASSERT_NE(n, nullptr);
  ASSERT_EQ(n->input_size(), 4);
  EXPECT_EQ(n->input(3), "W_zero_points");
  EXPECT_EQ(Attr(*n, "accuracy_level"), 4);
  EXPECT_EQ(Dims(*Init(r.proto.graph(), "W_zero_points")), (std::vector<int64_t>{kN * 2}));
}

TEST(QuantizePassTest, TransposeOfConstantIsFolded) {
  onnx::ModelProto m = Base();
  auto* g = m.mutable_graph();
  *g->add_output() = Value("y", kOnnxFloat, {1, kN});
  std::vector<float> wt = RandomFloats(kK * kN, 9, 0.1f);  // stored [N, K]
  *g->add_initializer() = FloatTensor("Wt", {kN, kK}, wt);
  AddNode(g, "Transpose", "tr", {"Wt"}, {"W"});
  AddNode(g, "MatMul", "mm", {"x", "W"}, {"y"});
  Result r = Quantize(m, Int4());
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(CountOps(r.proto.graph(), "Transpose"), 0);
  EXPECT_EQ(Init(r.proto.graph(), "Wt"), nullptr);
  const auto* n = NodeOfType(r.proto.graph(), "MatMulNBits");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(Attr(*n, "K"), kK);
  EXPECT_EQ(Attr(*n, "N"), kN);
  const std::string& raw = Init(r.proto.graph(), "W_Q4")->raw_data();
  EXPECT_EQ(std::vector<uint8_t>(raw.begin(), raw.end()), KernelBytes(wt, true, 32, true));
}

TEST(QuantizePassTest, ConstantNodeWeight) {
  onnx::ModelProto m = Base();
  auto* g = m.mutable_graph();
  *g->add_output() = Value("y", kOnnxFloat, {1, kN});
  auto* c = AddNode(g, "Constant", "const", {}, {"W"});
  auto* a = c->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = FloatTensor("", {kK, kN}, RandomFloats(kK * kN, 3, 0.1f));
  AddNode(g, "MatMul", "mm", {"x", "W"}, {"y"});
  Result r = Quantize(m, Int4());
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(CountOps(r.proto.graph(), "Constant"), 0);
  ASSERT_NE(Init(r.proto.graph(), "W_Q4"), nullptr);
  const std::string& raw = Init(r.proto.graph(), "W_Q4")->raw_data();
  EXPECT_EQ(std::vector<uint8_t>(raw.begin(), raw.end()),
            KernelBytes(RandomFloats(kK * kN, 3, 0.1f), false, 32, true));
}

TEST(QuantizePassTest, SharedWeightStaysForItsOtherReaders) {
  onnx::ModelProto m = OneMatMul();
  auto* g = m.mutable_graph();
  *g->add_input() = Value("ids", kOnnxInt64, {1});
  *g->add_output() = Value("emb", kOnnxFloat, {1, kN});
  AddNode(g, "Gather", "gather", {"W", "ids"}, {"emb"});
  Result r = Quantize(m, Int4());
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_NE(Init(r.proto.graph(), "W"), nullptr);
  EXPECT_EQ(Init(r.proto.graph(), "W")->raw_data().size(), static_cast<size_t>(kK * kN * 4));
  EXPECT_NE(NodeOfType(r.proto.graph(), "MatMulNBits"), nullptr);
  EXPECT_NE(NodeOfType(r.proto.graph(), "Gather"), nullptr);
}

// x -> MatMul(W1) -> h -> MatMul(W2 "lm") -> logits
onnx::ModelProto TwoLayers() {
  onnx::ModelProto m = Base();
  auto* g = m.mutable_graph();
  *g->add_output() = Value("logits", kOnnxFloat, {1, kN});
  *g->add_initializer() = FloatTensor("W1", {kK, kK}, RandomFloats(kK * kK, 1, 0.1f));
  *g->add_initializer() = FloatTensor("W2", {kK, kN}, RandomFloats(kK * kN, 2, 0.1f));
  AddNode(g, "MatMul", "/layer/MatMul", {"x", "W1"}, {"h"});
  AddNode(g, "MatMul", "/lm_head/MatMul", {"h", "W2"}, {"logits"});
  return m;
}

TEST(QuantizePassTest, LmHeadFloatInt8OrInt4) {
  Recipe rc = Int4();
  Result f = Quantize(TwoLayers(), rc);
  ASSERT_TRUE(f.status.ok()) << f.status;
  EXPECT_EQ(CountOps(f.proto.graph(), "MatMulNBits"), 1);
  EXPECT_NE(Init(f.proto.graph(), "W2"), nullptr);
  EXPECT_THAT(f.report.notes, ::testing::Contains(HasSubstr("/lm_head/MatMul")));

  rc.lm_head = LmHeadMode::kInt8;
  Result q8 = Quantize(TwoLayers(), rc);
  ASSERT_TRUE(q8.status.ok()) << q8.status;
  EXPECT_EQ(CountOps(q8.proto.graph(), "MatMulNBits"), 1);
  const auto* dq = NodeOfType(q8.proto.graph(), "DequantizeLinear");
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(Attr(*dq, "axis"), 1);  // per output channel
  EXPECT_EQ(Init(q8.proto.graph(), "W2_quantized")->data_type(), kOnnxInt8);
  EXPECT_EQ(Dims(*Init(q8.proto.graph(), "W2_scale")), (std::vector<int64_t>{kN}));

  rc.lm_head = LmHeadMode::kInt4;
  Result q4 = Quantize(TwoLayers(), rc);
  ASSERT_TRUE(q4.status.ok()) << q4.status;
  EXPECT_EQ(CountOps(q4.proto.graph(), "MatMulNBits"), 2);
}

// x -> four decoder layers (GenAI builder names, weights named as the
// builder's initializers) -> y; layer numbers come from the names.
onnx::ModelProto FourLayers() {
  onnx::ModelProto m = Base(17);
  auto* g = m.mutable_graph();
  std::string prev = "x";
  for (int l = 0; l < 4; ++l) {
    const std::string w = absl::StrCat("model.layers.", l, ".mlp.down_proj.MatMul.weight");
    *g->add_initializer() = FloatTensor(w, {kK, kK}, RandomFloats(kK * kK, 10 + l, 0.1f));
    const std::string out = absl::StrCat("h", l);
    // Layer 2's node has no layer in its name: its weight's name gives it.
    const std::string node =
        l == 2 ? "/unnamed/MatMul" : absl::StrCat("/model/layers.", l, "/mlp/down_proj/MatMul");
    AddNode(g, "MatMul", node, {prev, w}, {out});
    prev = out;
  }
  *g->add_output() = Value(prev, kOnnxFloat, {1, kK});
  return m;
}

// Which of FourLayers' MatMuls stayed 8-bit (DequantizeLinear), by layer.
std::vector<int> Int8Layers(const onnx::GraphProto& g) {
  std::vector<int> layers;
  for (const auto& n : g.node()) {
    if (n.op_type() != "DequantizeLinear") continue;
    layers.push_back(*LayerIndex(n.input(0)));
  }
  std::sort(layers.begin(), layers.end());
  return layers;
}

TEST(QuantizePassTest, Int8LayersAndNodesInsideInt4) {
  Recipe rc = Int4();
  rc.int8_first_layers = 1;
  rc.int8_last_layers = 1;
  Result r = Quantize(FourLayers(), rc);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(CountOps(r.proto.graph(), "MatMulNBits"), 2);
  EXPECT_EQ(Int8Layers(r.proto.graph()), (std::vector<int>{0, 3}));
  const auto* q = Init(r.proto.graph(), "model.layers.0.mlp.down_proj.MatMul.weight_quantized");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->data_type(), kOnnxInt8);
  EXPECT_THAT(r.report.notes, ::testing::Contains(HasSubstr("INT8 inside INT4 (first 1 layers)")));

  // By name (whole-name RE2), and layer 2 found through its weight's name.
  rc = Int4();
  rc.int8_regex = {"/model/layers\\.1/.*"};
  rc.int8_first_layers = 0;
  r = Quantize(FourLayers(), rc);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(Int8Layers(r.proto.graph()), (std::vector<int>{1}));
  rc = Int4();
  rc.int8_first_layers = 3;
  r = Quantize(FourLayers(), rc);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(Int8Layers(r.proto.graph()), (std::vector<int>{0, 1, 2}));

  // Without the fields the output is plain INT4.
  r = Quantize(FourLayers(), Int4());
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(CountOps(r.proto.graph(), "MatMulNBits"), 4);
  EXPECT_THAT(r.report.notes, ::testing::Not(::testing::Contains(HasSubstr("INT8 inside INT4"))));

  // Asked for, but nothing matched: the report says so, and why.
  rc = Int4();
  rc.int8_regex = {"/no/such/node"};
  r = Quantize(FourLayers(), rc);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(CountOps(r.proto.graph(), "MatMulNBits"), 4);
  EXPECT_THAT(r.report.notes, ::testing::Contains(HasSubstr(
                                  "selected no quantized weight (4 layer(s) found in the names)")));
  rc = Int4();
  rc.int8_first_layers = 1;
  r = Quantize(TwoLayers(), rc);  // names without layer numbers
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_THAT(r.report.notes,
              ::testing::Contains(HasSubstr("no layer number in any node or weight name")));
}

// A NaN or infinite weight fails the job with the tensor and element named,
// and no output file remains (INT4 and INT8 alike).
TEST(QuantizePassTest, NonFiniteWeightIsRefusedWithoutOutput) {
  for (float bad :
       {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    for (Precision precision : {Precision::kInt4, Precision::kInt8}) {
      onnx::ModelProto m = TwoLayers();
      std::vector<float> w = RandomFloats(kK * kK, 1, 0.1f);
      w[5 * kK + 3] = bad;
      *m.mutable_graph()->mutable_initializer(0) = FloatTensor("W1", {kK, kK}, w);
      Recipe rc;
      rc.precision = precision;
      Result r = Quantize(m, rc);  // asserts that no out.onnx was left behind
      EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << r.status;
      EXPECT_THAT(std::string(r.status.message()),
                  HasSubstr(absl::StrCat("tensor 'W1' element ", 5 * kK + 3, " is ",
                                         std::isnan(bad) ? "NaN" : "Inf")));
    }
  }
}

TEST(QuantizePassTest, ExclusionsAndMinimumSize) {
  Recipe rc = Int4();
  rc.lm_head = LmHeadMode::kInt4;
  rc.exclude_nodes = {"/layer/MatMul"};
  Result a = Quantize(TwoLayers(), rc);
  ASSERT_TRUE(a.status.ok()) << a.status;
  EXPECT_EQ(CountOps(a.proto.graph(), "MatMulNBits"), 1);
  EXPECT_NE(Init(a.proto.graph(), "W1"), nullptr);

  rc.exclude_nodes.clear();
  rc.exclude_regex = {".*lm_head.*"};
  Result b = Quantize(TwoLayers(), rc);
  ASSERT_TRUE(b.status.ok()) << b.status;
  EXPECT_NE(Init(b.proto.graph(), "W2"), nullptr);
  EXPECT_EQ(Init(b.proto.graph(), "W1"), nullptr);

  rc.exclude_regex = {"lm_head"};  // whole-name match: matches nothing
  Result c = Quantize(TwoLayers(), rc);
  EXPECT_EQ(CountOps(c.proto.graph(), "MatMulNBits"), 2);

  rc.exclude_regex.clear();
  rc.min_tensor_elements = kK * kK + 1;  // W1 (64x64) is too small, W2 too
  Result d = Quantize(TwoLayers(), rc);
  EXPECT_EQ(CountOps(d.proto.graph(), "MatMulNBits"), 0);
  EXPECT_THAT(d.report.notes, ::testing::Contains(HasSubstr("min-tensor-elements")));

  rc.exclude_regex = {"("};
  Result e = Quantize(TwoLayers(), rc);
  EXPECT_EQ(e.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(e.status.message()), HasSubstr("exclude_regex '('"));
}

TEST(QuantizePassTest, Int4QdqRaisesTheOpsetOrRefuses) {
  Recipe rc = Int4();
  rc.int4_format = Int4Format::kQdq;
  Result r = Quantize(OneMatMul(17), rc);
  ASSERT_TRUE(r.status.ok()) << r.status;
  int64_t opset = 0;
  for (const auto& o : r.proto.opset_import()) {
    if (o.domain().empty()) opset = o.version();
  }
  EXPECT_EQ(opset, 21);
  EXPECT_GE(r.proto.ir_version(), 10);
  const auto* dq = NodeOfType(r.proto.graph(), "DequantizeLinear");
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(Attr(*dq, "axis"), 0);
  EXPECT_EQ(Attr(*dq, "block_size"), 32);
  EXPECT_EQ(Init(r.proto.graph(), "W_Q4")->data_type(), kOnnxInt4);
  EXPECT_EQ(Dims(*Init(r.proto.graph(), "W_Q4")), (std::vector<int64_t>{kK, kN}));
  EXPECT_EQ(Dims(*Init(r.proto.graph(), "W_scales")), (std::vector<int64_t>{2, kN}));

  // ReduceMean's axes became an input in opset 18: a 17 model cannot be raised.
  onnx::ModelProto m = OneMatMul(17);
  auto* g = m.mutable_graph();
  *g->add_output() = Value("mean", kOnnxFloat, {1, 1});
  AddNode(g, "ReduceMean", "rm", {"y"}, {"mean"});
  Result refused = Quantize(m, rc);
  EXPECT_EQ(refused.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status.message()), HasSubstr("ReduceMean"));
  // Core messages name recipe fields (gRPC callers have no flags).
  EXPECT_THAT(std::string(refused.status.message()),
              HasSubstr("int4_format to INT4_FORMAT_MATMULNBITS"));
}

TEST(QuantizePassTest, Int8WeightOnlyPerTensorOnOldOpsets) {
  Recipe rc;
  rc.precision = Precision::kInt8;
  rc.per_channel = true;
  onnx::ModelProto m = OneMatMul(11);
  auto* g = m.mutable_graph();
  *g->add_output() = Value("sm", kOnnxFloat, {1, kN});
  AddNode(g, "Softmax", "softmax", {"y"}, {"sm"});  // changed in 13: no raise
  Result r = Quantize(m, rc);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto* dq = NodeOfType(r.proto.graph(), "DequantizeLinear");
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(Attr(*dq, "axis"), -1);
  EXPECT_TRUE(Dims(*Init(r.proto.graph(), "W_scale")).empty());
  EXPECT_THAT(r.report.notes, ::testing::Contains(HasSubstr("per-tensor")));
}

TEST(QuantizePassTest, Int8DynamicGraph) {
  Recipe rc;
  rc.precision = Precision::kInt8;
  rc.int8_mode = Int8Mode::kDynamic;
  rc.per_channel = true;
  Result r = Quantize(OneMatMul(), rc);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto& g = r.proto.graph();
  EXPECT_EQ(CountOps(g, "DynamicQuantizeLinear"), 1);
  EXPECT_EQ(CountOps(g, "MatMulInteger"), 1);
  EXPECT_EQ(CountOps(g, "Cast"), 1);
  EXPECT_EQ(CountOps(g, "Mul"), 2);
  EXPECT_EQ(CountOps(g, "MatMul"), 0);
  EXPECT_EQ(Dims(*Init(g, "W_quantized")), (std::vector<int64_t>{kK, kN}));
  EXPECT_EQ(Dims(*Init(g, "W_zero_point")), (std::vector<int64_t>{kN}));
}

// ids -> Gather(E[kVocab, kK]) -> emb; with `tied`, also
// x -> MatMul(Transpose(E)) -> logits (a tied LM head).
constexpr int64_t kVocab = 40;
onnx::ModelProto Embedding(int64_t opset = 17, bool tied = false) {
  onnx::ModelProto m = Base(opset);
  auto* g = m.mutable_graph();
  *g->add_input() = Value("ids", kOnnxInt64, {3});
  *g->add_output() = Value("emb", kOnnxFloat, {3, kK});
  *g->add_initializer() = FloatTensor("E", {kVocab, kK}, RandomFloats(kVocab * kK, 7, 0.5f));
  AddNode(g, "Gather", "/embed/Gather", {"E", "ids"}, {"emb"});
  if (tied) {
    *g->add_output() = Value("logits", kOnnxFloat, {1, kVocab});
    AddNode(g, "Transpose", "/lm_head/Transpose", {"E"}, {"E_t"});
    AddNode(g, "MatMul", "/lm_head/MatMul", {"x", "E_t"}, {"logits"});
  }
  return m;
}

std::vector<float> FloatsOf(const onnx::TensorProto& t) {
  std::vector<float> v(t.raw_data().size() / 4);
  std::memcpy(v.data(), t.raw_data().data(), v.size() * 4);
  return v;
}

int64_t DefaultOpsetOf(const onnx::ModelProto& m) {
  for (const auto& o : m.opset_import()) {
    if (o.domain().empty()) return o.version();
  }
  return 0;
}

// The Gather reads DequantizeLinear(E_quantized, E_scale, ...).
const onnx::NodeProto* EmbeddingDq(const onnx::GraphProto& g) {
  const auto* gather = NodeOfType(g, "Gather");
  if (gather == nullptr) return nullptr;
  for (const auto& n : g.node()) {
    if (n.op_type() == "DequantizeLinear" && n.output(0) == gather->input(0)) return &n;
  }
  return nullptr;
}

TEST(QuantizePassTest, EmbeddingsStayFloatByDefault) {
  Result r = Quantize(Embedding(), Int4());
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_NE(Init(r.proto.graph(), "E"), nullptr);
  EXPECT_EQ(NodeOfType(r.proto.graph(), "DequantizeLinear"), nullptr);

  // --quantize-embeddings without an embedding: the opset is not raised.
  Recipe rc = Int4();
  rc.keep_embeddings = false;
  Result none = Quantize(OneMatMul(17), rc);
  ASSERT_TRUE(none.status.ok()) << none.status;
  EXPECT_EQ(DefaultOpsetOf(none.proto), 17);
  EXPECT_THAT(none.report.notes, ::testing::Contains(HasSubstr("no Gather")));
}

TEST(QuantizePassTest, EmbeddingInt8PerRow) {
  const std::vector<float> e = RandomFloats(kVocab * kK, 7, 0.5f);
  Recipe rc;
  rc.precision = Precision::kInt8;
  rc.keep_embeddings = false;
  Result r = Quantize(Embedding(), rc);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto& g = r.proto.graph();
  EXPECT_EQ(Init(g, "E"), nullptr);  // nothing else reads the float data
  const auto* dq = EmbeddingDq(g);
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(Attr(*dq, "axis"), 0);
  const auto* q = Init(g, "E_quantized");
  const auto* s = Init(g, "E_scale");
  ASSERT_NE(q, nullptr);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(q->data_type(), kOnnxInt8);
  EXPECT_EQ(Dims(*q), (std::vector<int64_t>{kVocab, kK}));
  EXPECT_EQ(Dims(*s), (std::vector<int64_t>{kVocab}));
  EXPECT_EQ(Dims(*Init(g, "E_zero_point")), (std::vector<int64_t>{kVocab}));
  const std::vector<float> scales = FloatsOf(*s);
  for (int64_t v = 0; v < kVocab; ++v) {
    float amax = 0;
    for (int64_t h = 0; h < kK; ++h) amax = std::max(amax, std::abs(e[v * kK + h]));
    EXPECT_FLOAT_EQ(scales[v], amax * 2 / 254) << "row " << v;
    for (int64_t h = 0; h < kK; ++h) {
      const float deq = static_cast<int8_t>(q->raw_data()[v * kK + h]) * scales[v];
      EXPECT_NEAR(deq, e[v * kK + h], scales[v] * 0.5f + 1e-6f);
    }
  }
  ASSERT_EQ(r.report.tensors.size(), 1u);
  EXPECT_EQ(r.report.tensors[0].name, "E");
  EXPECT_GT(r.report.tensors[0].sqnr_db, 30);
}

TEST(QuantizePassTest, EmbeddingInt4BlockedAlongHidden) {
  const std::vector<float> e = RandomFloats(kVocab * kK, 7, 0.5f);
  for (bool sym : {true, false}) {
    SCOPED_TRACE(sym ? "symmetric" : "asymmetric");
    Recipe rc = Int4();  // MatMulNBits format: the opset is raised for the embedding
    rc.keep_embeddings = false;
    rc.symmetric = sym;
    Result r = Quantize(Embedding(17), rc);
    ASSERT_TRUE(r.status.ok()) << r.status;
    const auto& g = r.proto.graph();
    EXPECT_EQ(DefaultOpsetOf(r.proto), 21);
    EXPECT_EQ(Init(g, "E"), nullptr);
    const auto* dq = EmbeddingDq(g);
    ASSERT_NE(dq, nullptr);
    EXPECT_EQ(Attr(*dq, "axis"), 1);
    EXPECT_EQ(Attr(*dq, "block_size"), 32);
    const auto* q = Init(g, "E_quantized");
    const auto* s = Init(g, "E_scale");
    ASSERT_NE(q, nullptr);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(q->data_type(), sym ? kOnnxInt4 : kOnnxUint4);
    EXPECT_EQ(Dims(*q), (std::vector<int64_t>{kVocab, kK}));
    EXPECT_EQ(Dims(*s), (std::vector<int64_t>{kVocab, 2}));
    const onnx::TensorProto* zp = Init(g, "E_zero_point");
    EXPECT_EQ(zp != nullptr, !sym);
    if (zp != nullptr) {
      EXPECT_EQ(zp->data_type(), kOnnxUint4);
      EXPECT_EQ(Dims(*zp), (std::vector<int64_t>{kVocab, 2}));
    }
    auto nibble = [](const std::string& b, int64_t i) {
      return (b[i >> 1] >> ((i & 1) * 4)) & 0xF;
    };
    const std::vector<float> scales = FloatsOf(*s);
    for (int64_t v = 0; v < kVocab; ++v) {
      for (int64_t h = 0; h < kK; ++h) {
        const int64_t i = v * kK + h, blk = v * 2 + h / 32;
        int code = nibble(q->raw_data(), i);
        if (sym && code >= 8) code -= 16;
        const int z = zp != nullptr ? nibble(zp->raw_data(), blk) : 0;
        const float deq = static_cast<float>(code - z) * scales[blk];
        // Half a step, or one step where MLAS's symmetric scale clips the
        // opposite sign at +7.
        ASSERT_NEAR(deq, e[i], std::abs(scales[blk]) * (sym ? 1.0f : 0.5f) + 1e-5f)
            << v << "," << h;
      }
    }
    ASSERT_EQ(r.report.tensors.size(), 1u);
    EXPECT_GT(r.report.tensors[0].sqnr_db, 10);
  }
}

TEST(QuantizePassTest, EmbeddingAsGatherBlockQuantized) {
  // ReduceMean blocks opset 21, which GatherBlockQuantized does not need:
  // the embedding is INT4 and the opset stays 17.
  onnx::ModelProto m = Embedding(17);
  auto* g = m.mutable_graph();
  *g->add_output() = Value("mean", kOnnxFloat, {1, 1});
  AddNode(g, "ReduceMean", "rm", {"emb"}, {"mean"});
  for (bool sym : {true, false}) {
    Recipe rc = Int4();
    rc.keep_embeddings = false;
    rc.symmetric = sym;
    rc.embedding_op = EmbeddingOp::kGatherBlockQuantized;
    Result r = Quantize(m, rc);
    ASSERT_TRUE(r.status.ok()) << r.status;
    EXPECT_EQ(DefaultOpsetOf(r.proto), 17);
    EXPECT_EQ(NodeOfType(r.proto.graph(), "DequantizeLinear"), nullptr);
    const auto* gbq = NodeOfType(r.proto.graph(), "GatherBlockQuantized");
    ASSERT_NE(gbq, nullptr);
    EXPECT_EQ(gbq->domain(), "com.microsoft");
    std::vector<std::string> want = {"E_quantized", "ids", "E_scale"};
    if (!sym) want.push_back("E_zero_point");
    EXPECT_EQ(std::vector<std::string>(gbq->input().begin(), gbq->input().end()), want);
    EXPECT_EQ(Attr(*gbq, "gather_axis"), 0);
    EXPECT_EQ(Attr(*gbq, "quantize_axis"), 1);
    EXPECT_EQ(Attr(*gbq, "block_size"), 32);
    EXPECT_EQ(Attr(*gbq, "bits"), 4);
    EXPECT_EQ(Init(r.proto.graph(), "E_quantized")->data_type(), sym ? kOnnxInt4 : kOnnxUint4);
    EXPECT_EQ(Dims(*Init(r.proto.graph(), "E_scale")), (std::vector<int64_t>{kVocab, 2}));
    EXPECT_EQ(Init(r.proto.graph(), "E"), nullptr);
  }
}

TEST(QuantizePassTest, EmbeddingFallsBackToInt8WhenOpset21IsBlocked) {
  // ReduceMean changed in 18: a 17 model cannot reach 21; INT4 MatMulNBits
  // still works and the embedding uses INT8 per row.
  onnx::ModelProto m = Embedding(17);
  auto* g = m.mutable_graph();
  *g->add_output() = Value("mean", kOnnxFloat, {1, 1});  // keepdims, all axes
  AddNode(g, "ReduceMean", "rm", {"emb"}, {"mean"});
  Recipe rc = Int4();
  rc.keep_embeddings = false;
  Result r = Quantize(m, rc);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(DefaultOpsetOf(r.proto), 17);
  const auto* dq = EmbeddingDq(r.proto.graph());
  ASSERT_NE(dq, nullptr);
  EXPECT_EQ(Attr(*dq, "axis"), 0);
  EXPECT_EQ(Init(r.proto.graph(), "E_quantized")->data_type(), kOnnxInt8);
  EXPECT_EQ(Dims(*Init(r.proto.graph(), "E_scale")), (std::vector<int64_t>{kVocab}));
  EXPECT_THAT(r.report.notes, ::testing::Contains(HasSubstr("INT8 per-row")));

  // Opset 11 with Softmax (changed in 13): no per-axis DequantizeLinear.
  onnx::ModelProto old = Embedding(11);
  g = old.mutable_graph();
  *g->add_output() = Value("sm", kOnnxFloat, {3, kK});
  AddNode(g, "Softmax", "softmax", {"emb"}, {"sm"});
  Recipe r8;
  r8.precision = Precision::kInt8;
  r8.keep_embeddings = false;
  Result pt = Quantize(old, r8);
  ASSERT_TRUE(pt.status.ok()) << pt.status;
  EXPECT_EQ(DefaultOpsetOf(pt.proto), 11);
  ASSERT_NE(EmbeddingDq(pt.proto.graph()), nullptr);
  EXPECT_TRUE(Dims(*Init(pt.proto.graph(), "E_scale")).empty());
  EXPECT_THAT(pt.report.notes, ::testing::Contains(HasSubstr("per-tensor")));
}

TEST(QuantizePassTest, TiedEmbeddingIsQuantizedOncePerUse) {
  Recipe rc = Int4();
  rc.keep_embeddings = false;
  rc.lm_head = LmHeadMode::kInt4;
  // Both users quantized: the float tensor and its Transpose are gone.
  Result r = Quantize(Embedding(17, true), rc);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto& g = r.proto.graph();
  EXPECT_EQ(Init(g, "E"), nullptr);
  EXPECT_EQ(NodeOfType(g, "Transpose"), nullptr);
  EXPECT_NE(NodeOfType(g, "MatMulNBits"), nullptr);
  ASSERT_NE(EmbeddingDq(g), nullptr);
  EXPECT_EQ(Init(g, "E_quantized")->data_type(), kOnnxInt4);
  EXPECT_EQ(r.report.tensors.size(), 2u);

  // LM head kept float: it still reads the untouched float data.
  rc.lm_head = LmHeadMode::kFloat;
  Result f = Quantize(Embedding(17, true), rc);
  ASSERT_TRUE(f.status.ok()) << f.status;
  const auto* e = Init(f.proto.graph(), "E");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(FloatsOf(*e), RandomFloats(kVocab * kK, 7, 0.5f));
  const auto* mm = NodeOfType(f.proto.graph(), "MatMul");
  ASSERT_NE(mm, nullptr);
  EXPECT_EQ(mm->input(1), "E_t");
  ASSERT_NE(EmbeddingDq(f.proto.graph()), nullptr);
}

// The tensor named `value`, looking through a Reshape of an initializer.
const onnx::TensorProto* InitThroughReshape(const onnx::GraphProto& g, const std::string& value) {
  for (const auto& n : g.node()) {
    if (n.op_type() == "Reshape" && n.output(0) == value) return Init(g, n.input(0));
  }
  return nullptr;
}

// Row `row`, element `h` of a GatherBlockQuantized table (uint8 data with
// `bits`, 2-D scales, optional zero points), dequantized as ORT does.
float GbqElement(const std::string& data, const std::vector<float>& scales, const std::string* zp,
                 int bits, int64_t hidden, int64_t block, int64_t row, int64_t h) {
  const int64_t blocks = hidden / block, i = row * hidden + h, b = row * blocks + h / block;
  int code = 0, z = 1 << (bits - 1);
  if (bits == 8) {
    code = static_cast<uint8_t>(data[i]);
    if (zp != nullptr) z = static_cast<uint8_t>((*zp)[b]);
  } else {
    code = (static_cast<uint8_t>(data[i >> 1]) >> ((i & 1) * 4)) & 0xF;
    if (zp != nullptr) {
      const int64_t per_row = (blocks + 1) / 2, j = h / block;
      z = (static_cast<uint8_t>((*zp)[row * per_row + (j >> 1)]) >> ((j & 1) * 4)) & 0xF;
    }
  }
  return static_cast<float>(code - z) * scales[b];
}

TEST(QuantizePassTest, TiedEmbeddingSharesTheLmHeadCodes) {
  const std::vector<float> e = RandomFloats(kVocab * kK, 7, 0.5f);
  for (int bits : {4, 8}) {
    for (bool sym : {true, false}) {
      SCOPED_TRACE(absl::StrCat(bits, "-bit ", sym ? "symmetric" : "asymmetric"));
      Recipe rc;
      if (bits == 4) {
        rc = Int4();
        rc.lm_head = LmHeadMode::kInt4;
      } else {
        rc.precision = Precision::kInt8;
        rc.int8_mode = Int8Mode::kMatMulNBits;
        rc.lm_head = LmHeadMode::kInt8;
      }
      rc.keep_embeddings = false;
      rc.symmetric = sym;
      rc.embedding_op = EmbeddingOp::kGatherBlockQuantized;
      Result r = Quantize(Embedding(17, true), rc);
      ASSERT_TRUE(r.status.ok()) << r.status;
      const auto& g = r.proto.graph();
      EXPECT_EQ(Init(g, "E"), nullptr);
      EXPECT_EQ(NodeOfType(g, "Transpose"), nullptr);
      const auto* mnb = NodeOfType(g, "MatMulNBits");
      const auto* gbq = NodeOfType(g, "GatherBlockQuantized");
      ASSERT_NE(mnb, nullptr);
      ASSERT_NE(gbq, nullptr);
      EXPECT_EQ(Attr(*mnb, "bits"), bits);
      EXPECT_EQ(Attr(*gbq, "bits"), bits);
      EXPECT_EQ(Attr(*gbq, "block_size"), 32);
      EXPECT_EQ(Attr(*gbq, "gather_axis"), 0);
      EXPECT_EQ(Attr(*gbq, "quantize_axis"), 1);
      ASSERT_EQ(gbq->input_size(), sym ? 3 : 4);
      EXPECT_EQ(gbq->input(1), "ids");
      // Every quantized input of the Gather is the LM head's, reshaped.
      const onnx::TensorProto* data = InitThroughReshape(g, gbq->input(0));
      const onnx::TensorProto* scale = InitThroughReshape(g, gbq->input(2));
      const onnx::TensorProto* zp = sym ? nullptr : InitThroughReshape(g, gbq->input(3));
      ASSERT_NE(data, nullptr);
      ASSERT_NE(scale, nullptr);
      EXPECT_EQ(data->name(), mnb->input(1));
      EXPECT_EQ(scale->name(), mnb->input(2));
      if (!sym) {
        ASSERT_NE(zp, nullptr);
        EXPECT_EQ(zp->name(), mnb->input(3));
      }
      int uint8_tensors = 0;
      for (const auto& t : g.initializer()) uint8_tensors += t.data_type() == kOnnxUint8;
      EXPECT_EQ(uint8_tensors, sym ? 1 : 2);  // codes (+ zero points), once
      ASSERT_EQ(r.report.tensors.size(), 1u);
      EXPECT_THAT(r.report.notes, ::testing::Contains(HasSubstr("the table is stored once")));
      // The Gather's view of the shared bytes dequantizes to E.
      const std::vector<float> scales = FloatsOf(*scale);
      for (int64_t v = 0; v < kVocab; ++v) {
        for (int64_t h = 0; h < kK; ++h) {
          const float s = std::abs(scales[v * 2 + h / 32]);
          ASSERT_NEAR(GbqElement(data->raw_data(), scales, zp ? &zp->raw_data() : nullptr, bits, kK,
                                 32, v, h),
                      e[v * kK + h], s * (sym ? 1.0f : 0.5f) + 1e-5f)
              << v << "," << h;
        }
      }
    }
  }
}

TEST(QuantizePassTest, TiedEmbeddingSharedWithAGemmHeadNamedByLmHeadNode) {
  // Gemm(transB=1) reads E itself; the output is not called logits, so the
  // LM head is named. Without the name there is no LM head to share with.
  onnx::ModelProto m = Embedding(17);
  auto* g = m.mutable_graph();
  *g->add_output() = Value("scores", kOnnxFloat, {1, kVocab});
  AddNode(g, "Gemm", "head", {"x", "E"}, {"scores"});
  auto* trans_b = g->mutable_node(g->node_size() - 1)->add_attribute();
  trans_b->set_name("transB");
  trans_b->set_type(onnx::AttributeProto::INT);
  trans_b->set_i(1);
  Recipe rc = Int4();
  rc.keep_embeddings = false;
  rc.lm_head = LmHeadMode::kInt4;
  rc.embedding_op = EmbeddingOp::kGatherBlockQuantized;
  rc.lm_head_node = "head";
  rc.op_types = {"MatMul"};  // INT4's default: Gemm is not quantized, nothing to share
  Result skipped = Quantize(m, rc);
  ASSERT_TRUE(skipped.status.ok()) << skipped.status;
  EXPECT_EQ(NodeOfType(skipped.proto.graph(), "Reshape"), nullptr);
  EXPECT_THAT(skipped.report.notes, ::testing::Contains(HasSubstr("op Gemm is not quantized")));
  rc.op_types = {"MatMul", "Gemm"};
  Result r = Quantize(m, rc);
  ASSERT_TRUE(r.status.ok()) << r.status;
  const auto* mnb = NodeOfType(r.proto.graph(), "MatMulNBits");
  const auto* gbq = NodeOfType(r.proto.graph(), "GatherBlockQuantized");
  ASSERT_NE(mnb, nullptr);
  ASSERT_NE(gbq, nullptr);
  const auto* data = InitThroughReshape(r.proto.graph(), gbq->input(0));
  ASSERT_NE(data, nullptr);
  EXPECT_EQ(data->name(), mnb->input(1));
  EXPECT_EQ(Init(r.proto.graph(), "E"), nullptr);
  EXPECT_EQ(r.report.tensors.size(), 1u);
}

TEST(QuantizePassTest, TiedEmbeddingQuantizedSeparatelyWhenSettingsDiffer) {
  struct Case {
    const char* label;
    LmHeadMode head;
    bool int8_embeddings;
    int block_size;
    const char* why;
  };
  for (const Case& c : {Case{"head int8 QDQ", LmHeadMode::kInt8, false, 32, "not quantized to"},
                        Case{"head float", LmHeadMode::kFloat, false, 32, "stays float"},
                        Case{"bits differ", LmHeadMode::kInt4, true, 32, "the embedding 8-bit"},
                        Case{"ragged block", LmHeadMode::kInt4, false, 128, "block_size 128"}}) {
    SCOPED_TRACE(c.label);
    Recipe rc = Int4();
    rc.keep_embeddings = false;
    rc.lm_head = c.head;
    rc.int8_embeddings = c.int8_embeddings;
    rc.block_size = c.block_size;
    rc.embedding_op = EmbeddingOp::kGatherBlockQuantized;
    Result r = Quantize(Embedding(17, true), rc);
    ASSERT_TRUE(r.status.ok()) << r.status;
    const auto& g = r.proto.graph();
    const auto* gbq = NodeOfType(g, "GatherBlockQuantized");
    ASSERT_NE(gbq, nullptr);
    EXPECT_EQ(gbq->input(0), "E_quantized");  // its own codes
    EXPECT_EQ(Attr(*gbq, "bits"), c.int8_embeddings ? 8 : 4);
    EXPECT_EQ(NodeOfType(g, "Reshape"), nullptr);
    EXPECT_THAT(r.report.notes, ::testing::Contains(::testing::AllOf(
                                    HasSubstr("quantized separately"), HasSubstr(c.why))));
  }
}

TEST(QuantizePassTest, EmbeddingAsGatherBlockQuantized8Bit) {
  const std::vector<float> e = RandomFloats(kVocab * kK, 7, 0.5f);
  for (int block : {16, 128}) {  // 128 > hidden: one padded block, cut off
    for (bool sym : {true, false}) {
      SCOPED_TRACE(absl::StrCat("block ", block, sym ? " symmetric" : " asymmetric"));
      Recipe rc;
      rc.precision = Precision::kInt8;
      rc.keep_embeddings = false;
      rc.symmetric = sym;
      rc.block_size = block;
      rc.embedding_op = EmbeddingOp::kGatherBlockQuantized;
      Result r = Quantize(Embedding(17), rc);
      ASSERT_TRUE(r.status.ok()) << r.status;
      const auto& g = r.proto.graph();
      EXPECT_EQ(NodeOfType(g, "DequantizeLinear"), nullptr);
      EXPECT_EQ(Init(g, "E"), nullptr);
      const auto* gbq = NodeOfType(g, "GatherBlockQuantized");
      ASSERT_NE(gbq, nullptr);
      EXPECT_EQ(gbq->domain(), "com.microsoft");
      std::vector<std::string> want = {"E_quantized", "ids", "E_scale"};
      if (!sym) want.push_back("E_zero_point");
      EXPECT_EQ(std::vector<std::string>(gbq->input().begin(), gbq->input().end()), want);
      EXPECT_EQ(Attr(*gbq, "bits"), 8);
      EXPECT_EQ(Attr(*gbq, "block_size"), block);
      EXPECT_EQ(Attr(*gbq, "gather_axis"), 0);
      EXPECT_EQ(Attr(*gbq, "quantize_axis"), 1);
      const int64_t blocks = (kK + block - 1) / block;
      const auto* q = Init(g, "E_quantized");
      const auto* s = Init(g, "E_scale");
      const auto* zp = Init(g, "E_zero_point");
      ASSERT_NE(q, nullptr);
      ASSERT_NE(s, nullptr);
      ASSERT_EQ(zp != nullptr, !sym);
      EXPECT_EQ(q->data_type(), kOnnxUint8);
      EXPECT_EQ(Dims(*q), (std::vector<int64_t>{kVocab, kK}));
      ASSERT_EQ(q->raw_data().size(), static_cast<size_t>(kVocab * kK));
      EXPECT_EQ(Dims(*s), (std::vector<int64_t>{kVocab, blocks}));
      if (zp != nullptr) {
        EXPECT_EQ(zp->data_type(), kOnnxUint8);
        EXPECT_EQ(Dims(*zp), (std::vector<int64_t>{kVocab, blocks}));
      }
      const std::vector<float> scales = FloatsOf(*s);
      for (int64_t v = 0; v < kVocab; ++v) {
        for (int64_t h = 0; h < kK; ++h) {
          const int64_t b = v * blocks + h / block;
          const int code = static_cast<uint8_t>(q->raw_data()[v * kK + h]);
          const int z = zp != nullptr ? static_cast<uint8_t>(zp->raw_data()[b]) : 128;
          ASSERT_NEAR((code - z) * scales[b], e[v * kK + h], std::abs(scales[b]) + 1e-6f)
              << v << "," << h;
        }
      }
      ASSERT_EQ(r.report.tensors.size(), 1u);
      EXPECT_EQ(r.report.tensors[0].dtype_after, "UINT8 (GatherBlockQuantized)");
      EXPECT_GT(r.report.tensors[0].sqnr_db, 35);
    }
  }
}

TEST(QuantizePassTest, CancelledSaveLeavesNoOutput) {
  CancelToken cancel;
  cancel.Cancel();
  Result r = Quantize(OneMatMul(), Int4(), &cancel);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kCancelled);
}

TEST(QuantizePassTest, RejectsUnknownOpTypes) {
  Recipe rc = Int4();
  rc.op_types = {"Attention"};
  Result r = Quantize(OneMatMul(), rc);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status.message()), HasSubstr("op_types: 'Attention'"));
}

}  // namespace
}  // namespace quantd::core
