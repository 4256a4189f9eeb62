#include "quantd/core/onnx/float_pass.h"

#include <sys/resource.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/base/half.h"
#include "quantd/core/onnx/onnx_types.h"
#include "quantd/core/run.h"
#include "test_models.h"

namespace quantd::core {
namespace {

namespace fs = std::filesystem;
using ::quantd::testing::AddNode;
using ::quantd::testing::CountOps;
using ::quantd::testing::FindNode;
using ::quantd::testing::FloatTensor;
using ::quantd::testing::MakeTempDir;
using ::quantd::testing::ReadModelProto;
using ::quantd::testing::SmallMlp;
using ::quantd::testing::Value;
using ::quantd::testing::WriteModel;

// Converts `m` with `recipe`, saves inline, returns the saved proto.
// `ctx` outlives Save(), which converts the data.
onnx::ModelProto Convert(const onnx::ModelProto& m, const Recipe& recipe, Report* report,
                         const RunContext& ctx = {}) {
  std::string dir = MakeTempDir("quantd-fp");
  auto model = OnnxModel::FromProto(m, dir);
  EXPECT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE(ConvertFloatPrecision(model->get(), recipe, report, ctx).ok());
  auto saved = (*model)->Save(dir + "/out.onnx", SaveOptions(), ctx);
  EXPECT_TRUE(saved.ok()) << saved.status();
  onnx::ModelProto out = ReadModelProto(dir + "/out.onnx");
  fs::remove_all(dir);
  return out;
}

Recipe Fp16() {
  Recipe r;
  r.precision = Precision::kFp16;
  return r;
}

int32_t ValueType(const onnx::GraphProto& g, const std::string& name) {
  for (const auto* list : {&g.input(), &g.output(), &g.value_info()}) {
    for (const auto& v : *list) {
      if (v.name() == name) return v.type().tensor_type().elem_type();
    }
  }
  for (const auto& t : g.initializer()) {
    if (t.name() == name) return t.data_type();
  }
  return -1;
}

// The producer of each value must come before its consumers.
void ExpectTopologicallySorted(const onnx::GraphProto& g) {
  std::set<std::string> known;
  for (const auto& v : g.input()) known.insert(v.name());
  for (const auto& t : g.initializer()) known.insert(t.name());
  for (const auto& n : g.node()) {
    for (const auto& i : n.input()) {
      if (!i.empty()) {
        EXPECT_TRUE(known.count(i)) << n.name() << " reads " << i << " before it exists";
      }
    }
    for (const auto& o : n.output()) known.insert(o);
  }
}

TEST(FloatPassTest, KeepIoTypesCastsAtTheEdges) {
  Report report;
  onnx::ModelProto out = Convert(SmallMlp(), Fp16(), &report);
  const auto& g = out.graph();
  EXPECT_EQ(ValueType(g, "x"), kOnnxFloat);
  EXPECT_EQ(ValueType(g, "y"), kOnnxFloat);
  EXPECT_EQ(ValueType(g, "W"), kOnnxFloat16);
  EXPECT_EQ(ValueType(g, "b"), kOnnxFloat16);
  EXPECT_EQ(ValueType(g, "mm"), kOnnxFloat16);  // value_info retyped
  EXPECT_EQ(CountOps(g, "Cast"), 2);
  EXPECT_EQ(report.casts_inserted, 2u);
  EXPECT_EQ(report.tensors_converted, 2u);
  EXPECT_EQ(report.bytes_before, 60u);
  EXPECT_EQ(report.bytes_after, 30u);
  ExpectTopologicallySorted(g);
}

TEST(FloatPassTest, NoKeepIoTypesRetypesTheEdges) {
  Recipe r = Fp16();
  r.keep_io_types = false;
  Report report;
  onnx::ModelProto out = Convert(SmallMlp(), r, &report);
  EXPECT_EQ(ValueType(out.graph(), "x"), kOnnxFloat16);
  EXPECT_EQ(ValueType(out.graph(), "y"), kOnnxFloat16);
  EXPECT_EQ(CountOps(out.graph(), "Cast"), 0);
}

// Two adjacent blocked nodes share FP32 between them: one Cast in, one out,
// nothing chained in the middle.
TEST(FloatPassTest, BlockedNodesGetCastsOnlyAtTheirBoundary) {
  Recipe r = Fp16();
  r.keep_io_types = false;
  r.node_block_list = {"relu", "sigmoid"};
  Report report;
  onnx::ModelProto out = Convert(SmallMlp(), r, &report);
  const auto& g = out.graph();
  EXPECT_EQ(CountOps(g, "Cast"), 2);
  const auto* relu = FindNode(g, "relu");
  ASSERT_NE(relu, nullptr);
  const auto* sigmoid = FindNode(g, "sigmoid");
  EXPECT_EQ(sigmoid->input(0), "act");  // straight from relu, no cast pair
  // The cast in front of relu converts the FP16 sum to FLOAT.
  for (const auto& n : g.node()) {
    if (n.op_type() == "Cast" && n.output(0) == relu->input(0)) {
      EXPECT_EQ(n.input(0), "sum");
      EXPECT_EQ(n.attribute(0).i(), kOnnxFloat);
    }
  }
  // sigmoid's FP32 output feeds the FP16 graph output through one cast.
  EXPECT_EQ(ValueType(g, "y"), kOnnxFloat16);
  ExpectTopologicallySorted(g);
}

TEST(FloatPassTest, InitializerUsedOnlyByBlockedNodesStaysFloat) {
  Recipe r = Fp16();
  r.op_block_list = std::vector<std::string>{"Add"};
  Report report;
  onnx::ModelProto out = Convert(SmallMlp(), r, &report);
  EXPECT_EQ(ValueType(out.graph(), "b"), kOnnxFloat);
  EXPECT_EQ(ValueType(out.graph(), "W"), kOnnxFloat16);
}

TEST(FloatPassTest, DefaultBlockListKeepsResizeInFloat) {
  auto m = SmallMlp();
  auto* g = m.mutable_graph();
  // y = Resize(act) instead of Sigmoid(act).
  g->mutable_node()->RemoveLast();
  *g->add_initializer() = FloatTensor("scales", {2}, {1.0f, 1.0f});
  AddNode(g, "Resize", "resize", {"act", "", "scales"}, {"y"});
  Report report;
  onnx::ModelProto out = Convert(m, Fp16(), &report);
  EXPECT_EQ(ValueType(out.graph(), "scales"), kOnnxFloat);
  const auto* resize = FindNode(out.graph(), "resize");
  ASSERT_NE(resize, nullptr);
  EXPECT_NE(resize->input(0), "act");  // a Cast to FLOAT in front
  EXPECT_EQ(resize->output(0), "y");   // FLOAT output needs no cast with keep_io_types
}

TEST(FloatPassTest, ConvertsConstantNodesAndRetargetsCasts) {
  auto m = SmallMlp();
  auto* g = m.mutable_graph();
  auto* c = AddNode(g, "Constant", "const", {}, {"k"});
  auto* a = c->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = FloatTensor("", {3}, {1.0f, 2.0f, 70000.0f});
  // y2 = Mul(Cast<float>(act), k)
  auto* cast = AddNode(g, "Cast", "cast_back", {"act"}, {"act_f"});
  auto* to = cast->add_attribute();
  to->set_name("to");
  to->set_type(onnx::AttributeProto::INT);
  to->set_i(kOnnxFloat);
  AddNode(g, "Mul", "mul", {"act_f", "k"}, {"y2"});
  *g->add_output() = Value("y2", kOnnxFloat, {1, 3});
  // By default the Mul reading 70000 stays FP32 (Casts around it), named.
  {
    Report kept;
    onnx::ModelProto out = Convert(m, Fp16(), &kept);
    ASSERT_EQ(kept.kept_fp32.size(), 1u);
    EXPECT_EQ(kept.kept_fp32[0].node, "mul");
    EXPECT_EQ(kept.kept_fp32[0].op, "Mul");
    EXPECT_EQ(kept.kept_fp32[0].input, "k");
    EXPECT_EQ(kept.kept_fp32[0].max_abs, 70000.0);
    EXPECT_EQ(kept.values_clamped, 0u);
    EXPECT_EQ(FindNode(out.graph(), "const")->attribute(0).t().data_type(), kOnnxFloat);
    EXPECT_NE(FindNode(out.graph(), "mul")->input(0), "act");  // a Cast to FLOAT
    EXPECT_NE(kept.ToJson().find("\"kept_fp32\""), std::string::npos);
  }
  // --force-fp16 clamps, as before.
  Recipe forced = Fp16();
  forced.force_fp16 = true;
  Report report;
  onnx::ModelProto out = Convert(m, forced, &report);
  EXPECT_TRUE(report.kept_fp32.empty());
  EXPECT_EQ(report.ToJson().find("kept_fp32"), std::string::npos);
  const auto* cn = FindNode(out.graph(), "const");
  ASSERT_NE(cn, nullptr);
  EXPECT_EQ(cn->attribute(0).t().data_type(), kOnnxFloat16);
  const uint16_t* h = reinterpret_cast<const uint16_t*>(cn->attribute(0).t().raw_data().data());
  EXPECT_EQ(HalfToFloat(h[2]), 65504.0f);
  EXPECT_EQ(report.values_clamped, 1u);
  // Cast(act -> FLOAT) became an identity on FP16 and was removed.
  EXPECT_EQ(FindNode(out.graph(), "cast_back"), nullptr);
  EXPECT_EQ(FindNode(out.graph(), "mul")->input(0), "act");
  ExpectTopologicallySorted(out.graph());
}

TEST(FloatPassTest, ConvertsSubgraphTensorsWithoutCorruptingThem) {
  auto m = SmallMlp();
  auto* g = m.mutable_graph();
  *g->add_input() = Value("cond", kOnnxBool, {});
  auto* iff = AddNode(g, "If", "branch", {"cond"}, {"z"});
  for (const char* name : {"then_branch", "else_branch"}) {
    auto* attr = iff->add_attribute();
    attr->set_name(name);
    attr->set_type(onnx::AttributeProto::GRAPH);
    auto* sub = attr->mutable_g();
    sub->set_name(name);
    *sub->add_initializer() = FloatTensor(std::string(name) + "_c", {3}, {0.1f, 0.2f, 0.3f});
    AddNode(sub, "Add", std::string(name) + "_add", {"act", std::string(name) + "_c"},
            {std::string(name) + "_out"});
    *sub->add_output() = Value(std::string(name) + "_out", kOnnxFloat, {1, 3});
  }
  *g->add_output() = Value("z", kOnnxFloat, {1, 3});
  Report report;
  onnx::ModelProto out = Convert(m, Fp16(), &report);
  const auto* branch = FindNode(out.graph(), "branch");
  ASSERT_NE(branch, nullptr);
  const auto& sub = branch->attribute(0).g();
  EXPECT_EQ(sub.initializer(0).data_type(), kOnnxFloat16);
  const uint16_t* h = reinterpret_cast<const uint16_t*>(sub.initializer(0).raw_data().data());
  EXPECT_EQ(h[1], FloatToHalf(0.2f));
  EXPECT_EQ(sub.output(0).type().tensor_type().elem_type(), kOnnxFloat16);
  EXPECT_EQ(ValueType(out.graph(), "z"), kOnnxFloat);  // keep_io_types cast after If
}

TEST(FloatPassTest, Fp16ToFp32WidensExactly) {
  auto m = SmallMlp();
  Report r1;
  onnx::ModelProto half = Convert(m, Fp16(), &r1);
  Recipe r;
  r.precision = Precision::kFp32;
  r.keep_io_types = false;
  Report r2;
  onnx::ModelProto wide = Convert(half, r, &r2);
  EXPECT_EQ(ValueType(wide.graph(), "W"), kOnnxFloat);
  const float* w = reinterpret_cast<const float*>(wide.graph().initializer(0).raw_data().data());
  auto orig = quantd::testing::RandomFloats(12, 1);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(w[i], HalfToFloat(FloatToHalf(orig[i])));
  // The FP32 model's edges are FLOAT; the remaining casts from the FP16 model's
  // edges are identities and are gone.
  EXPECT_EQ(CountOps(wide.graph(), "Cast"), 0);
}

TEST(FloatPassTest, ThreadsDoNotChangeBytesOrCounts) {
  // 5 chunks of 65536 values and a ragged tail; values beyond FP16's range
  // and below its subnormals, so clamp and flush counts are summed per chunk.
  const int64_t n = 5 * 65536 + 77;
  std::vector<float> w = quantd::testing::RandomFloats(n, 9);
  for (int64_t i = 0; i < n; i += 997) w[i] = 1e6f;
  for (int64_t i = 5; i < n; i += 1499) w[i] = 1e-9f;
  auto m = SmallMlp();
  *m.mutable_graph()->add_initializer() = FloatTensor("big", {n}, w);
  ThreadPool pool(2);
  RunContext threaded;
  threaded.pool = &pool;
  threaded.parallelism = 3;
  Report inline_report, threaded_report;
  onnx::ModelProto a = Convert(m, Fp16(), &inline_report);
  onnx::ModelProto b = Convert(m, Fp16(), &threaded_report, threaded);
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
  EXPECT_GT(inline_report.values_clamped, 300u);
  EXPECT_GT(inline_report.values_flushed, 200u);
  EXPECT_EQ(inline_report.values_clamped, threaded_report.values_clamped);
  EXPECT_EQ(inline_report.values_flushed, threaded_report.values_flushed);
  // And back to FP32, also in chunks.
  Recipe wide;
  wide.precision = Precision::kFp32;
  Report r1, r2;
  EXPECT_EQ(Convert(a, wide, &r1).SerializeAsString(),
            Convert(a, wide, &r2, threaded).SerializeAsString());
}

// A model whose external data is larger than 2 GiB after conversion: FP16
// (1.25 GiB) -> FP32 (2.5 GiB), read back, memory bounded, files deleted.
TEST(FloatPassTest, LargeExternalDataModelBeyondTwoGiB) {
  std::string dir = MakeTempDir("quantd-large");
  constexpr int kTensors = 5;
  constexpr int64_t kRows = 8192, kCols = 16384;  // 128 Mi elements, 256 MiB FP16 each
  auto bits = [](uint64_t i) -> uint16_t {
    return static_cast<uint16_t>(((i * 2654435761u) >> 7) & 0xbbffu);  // finite values
  };
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("large");
  *g->add_input() = Value("x", kOnnxFloat16, {1, kRows});
  std::vector<std::string> sum_inputs;
  {
    std::ofstream data(dir + "/large.onnx.data", std::ios::binary);
    std::vector<uint16_t> chunk(1 << 20);
    uint64_t offset = 0;
    for (int t = 0; t < kTensors; ++t) {
      std::string name = absl::StrCat("w", t);
      const uint64_t n = kRows * kCols;
      for (uint64_t i = 0; i < n; i += chunk.size()) {
        for (size_t k = 0; k < chunk.size(); ++k) chunk[k] = bits(t * n + i + k);
        data.write(reinterpret_cast<const char*>(chunk.data()), chunk.size() * 2);
      }
      onnx::TensorProto w;
      w.set_name(name);
      w.set_data_type(kOnnxFloat16);
      w.add_dims(kRows);
      w.add_dims(kCols);
      w.set_data_location(onnx::TensorProto::EXTERNAL);
      auto add = [&w](const char* k, std::string v) {
        auto* kv = w.add_external_data();
        kv->set_key(k);
        kv->set_value(v);
      };
      add("location", "large.onnx.data");
      add("offset", std::to_string(offset));
      add("length", std::to_string(n * 2));
      offset += n * 2;
      *g->add_initializer() = w;
      // Every MatMul reads x; a Sum joins them (a valid graph: outputs are checked).
      AddNode(g, "MatMul", absl::StrCat("mm", t), {"x", name}, {absl::StrCat("h", t)});
      sum_inputs.push_back(absl::StrCat("h", t));
    }
    ASSERT_TRUE(data.good());
  }
  AddNode(g, "Sum", "sum", sum_inputs, {"y"});
  *g->add_output() = Value("y", kOnnxFloat16, {1, kCols});
  WriteModel(m, dir + "/large.onnx");

  Recipe r;
  r.precision = Precision::kFp32;
  auto report = ::quantd::core::Run(r, dir + "/large.onnx", dir + "/wide.onnx");
  ASSERT_TRUE(report.ok()) << report.status();
  const uint64_t out_bytes = fs::file_size(dir + "/wide.onnx.data");
  EXPECT_GT(out_bytes, uint64_t{2} << 30);
  EXPECT_EQ(report->tensors_converted, static_cast<uint64_t>(kTensors));

  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  const uint64_t peak = static_cast<uint64_t>(usage.ru_maxrss) * 1024;
  const uint64_t largest_out = static_cast<uint64_t>(kRows * kCols) * 4;
  EXPECT_LE(peak, (uint64_t{256} << 20) + 2 * largest_out) << "peak RSS " << (peak >> 20) << " MiB";

  auto wide = OnnxModel::Load(dir + "/wide.onnx");
  ASSERT_TRUE(wide.ok()) << wide.status();
  int t = 0;
  for (auto& site : (*wide)->Tensors()) {
    ASSERT_EQ(site.tensor->data_type(), kOnnxFloat);
    auto d = (*wide)->Read(*site.tensor);
    ASSERT_TRUE(d.ok()) << d.status();
    auto f = d->as<float>();
    const uint64_t n = kRows * kCols;
    ASSERT_EQ(f.size(), n);
    for (uint64_t i = 0; i < n; i += 9973) {
      ASSERT_EQ(f[i], HalfToFloat(bits(t * n + i))) << site.tensor->name() << " @" << i;
    }
    ASSERT_EQ(f[n - 1], HalfToFloat(bits(t * n + n - 1)));
    ++t;
  }
  EXPECT_EQ(t, kTensors);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace quantd::core
