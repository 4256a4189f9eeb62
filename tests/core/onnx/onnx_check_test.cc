#include "quantd/core/onnx/onnx_check.h"

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/onnx/onnx_model.h"
#include "quantd/core/onnx/onnx_types.h"
#include "quantd/testing/status_matchers.h"
#include "test_models.h"

namespace quantd::core {
namespace {

namespace fs = std::filesystem;
using ::quantd::testing::AddNode;
using ::quantd::testing::FloatTensor;
using ::quantd::testing::MakeTempDir;
using ::quantd::testing::RandomFloats;
using ::quantd::testing::SmallMlp;
using ::quantd::testing::StatusIs;
using ::quantd::testing::Value;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// SmallMlp with a large W (so it is stripped from the check's skeleton).
onnx::ModelProto LargeMlp() {
  onnx::ModelProto m = SmallMlp();
  auto* g = m.mutable_graph();
  *g->mutable_initializer(0) = FloatTensor("W", {4, 3000}, RandomFloats(12000, 7));
  *g->mutable_initializer(1) = FloatTensor("b", {3000}, RandomFloats(3000, 8));
  g->mutable_output(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(1)
      ->set_dim_value(3000);
  g->mutable_value_info(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(1)
      ->set_dim_value(3000);
  return m;
}

TEST(CheckOnnxOutputTest, AcceptsAValidModelAndLeavesItUnchanged) {
  onnx::ModelProto m = LargeMlp();
  const std::string before = m.SerializeAsString();
  auto notes = CheckOnnxOutput(&m);
  ASSERT_TRUE(notes.ok()) << notes.status();
  EXPECT_THAT(*notes, IsEmpty());
  EXPECT_EQ(m.SerializeAsString(), before);
}

TEST(CheckOnnxOutputTest, RefusesAnUndefinedInputAndLeavesTheModelUnchanged) {
  onnx::ModelProto m = LargeMlp();
  m.mutable_graph()->mutable_node(1)->set_input(0, "nowhere");
  const std::string before = m.SerializeAsString();
  EXPECT_THAT(CheckOnnxOutput(&m).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ("nowhere")));
  EXPECT_EQ(m.SerializeAsString(), before);
}

TEST(CheckOnnxOutputTest, RefusesATypeMismatchFoundByShapeInference) {
  onnx::ModelProto m = SmallMlp();
  // b becomes int64: Add(float, int64) is not a valid ONNX graph.
  auto* b = m.mutable_graph()->mutable_initializer(1);
  b->set_data_type(kOnnxInt64);
  b->set_raw_data(std::string(3 * 8, '\0'));
  EXPECT_THAT(CheckOnnxOutput(&m).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ("ONNX checker: [ShapeInferenceError] (op_type:Add")));
}

TEST(CheckOnnxOutputTest, RefusesAnUnknownAttributeOfAStandardOp) {
  onnx::ModelProto m = SmallMlp();
  auto* a = m.mutable_graph()->mutable_node(2)->add_attribute();
  a->set_name("alpha");
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(1.0f);
  EXPECT_THAT(CheckOnnxOutput(&m).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ("alpha")));
}

TEST(CheckOnnxOutputTest, RefusesAGraphOutputNothingProduces) {
  onnx::ModelProto m = SmallMlp();
  m.mutable_graph()->mutable_output(0)->set_name("ghost");
  EXPECT_THAT(CheckOnnxOutput(&m).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ("ghost")));
}

TEST(CheckOnnxOutputTest, ContribOpsPassAndOutputsNeedNoShape) {
  onnx::ModelProto m = SmallMlp();
  auto* g = m.mutable_graph();
  onnx::NodeProto* nb = AddNode(g, "MatMulNBits", "nb", {"y", "W"}, {"z"});
  nb->set_domain("com.microsoft");
  auto* op = m.add_opset_import();
  op->set_domain("com.microsoft");
  op->set_version(1);
  onnx::ValueInfoProto z;
  z.set_name("z");
  z.mutable_type()->mutable_tensor_type()->set_elem_type(kOnnxFloat);  // no shape
  *g->add_output() = z;
  auto notes = CheckOnnxOutput(&m);
  ASSERT_TRUE(notes.ok()) << notes.status();
  EXPECT_THAT(*notes, IsEmpty());
  // Without its import it still passes: ORT imports contrib domains itself.
  m.mutable_opset_import()->RemoveLast();
  EXPECT_TRUE(CheckOnnxOutput(&m).ok());
  // An unknown op in the default domain is an error (ORT refuses it too).
  m.mutable_graph()->mutable_node(2)->set_op_type("NoSuchOp");
  EXPECT_THAT(CheckOnnxOutput(&m).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "NoSuchOp"));
}

TEST(CheckOnnxOutputTest, NewerOpsetsAreCheckedForStructureAndNamed) {
  // Opset 21 / IR 10 (beyond libonnx 1.12): DequantizeLinear-21 with
  // block_size and INT4 codes, as quantd's INT4 QDQ output has.
  onnx::ModelProto m = SmallMlp();
  m.set_ir_version(10);
  m.mutable_opset_import(0)->set_version(21);
  auto* g = m.mutable_graph();
  onnx::TensorProto q;
  q.set_name("W_Q4");
  q.set_data_type(kOnnxInt4);
  q.add_dims(4);
  q.add_dims(3);
  q.set_raw_data(std::string(6, '\0'));
  *g->add_initializer() = q;
  *g->add_initializer() = FloatTensor("W_scales", {1, 3}, {1, 1, 1});
  onnx::NodeProto* dq = AddNode(g, "DequantizeLinear", "dq", {"W_Q4", "W_scales"}, {"W_dq"});
  auto* a = dq->add_attribute();
  a->set_name("block_size");
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(32);
  // dq first, then the MLP: matmul reads its output.
  const onnx::NodeProto dq_node = *dq;
  g->clear_node();
  *g->add_node() = dq_node;
  const onnx::ModelProto mlp = SmallMlp();
  for (const auto& n : mlp.graph().node()) *g->add_node() = n;
  g->mutable_node(1)->set_input(1, "W_dq");
  const std::string before = m.SerializeAsString();
  auto notes = CheckOnnxOutput(&m);
  ASSERT_TRUE(notes.ok()) << notes.status();
  ASSERT_EQ(notes->size(), 1u);
  EXPECT_THAT((*notes)[0], HasSubstr("DequantizeLinear-21"));
  EXPECT_EQ(m.SerializeAsString(), before);
  // Structure is still checked for such nodes.
  g->mutable_node(0)->set_input(1, "nowhere");
  EXPECT_THAT(CheckOnnxOutput(&m).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ("nowhere")));
}

TEST(CheckOnnxOutputTest, SaveRefusesAnInvalidGraphAndLeavesNoFile) {
  const std::string dir = MakeTempDir("quantd-check");
  onnx::ModelProto m = LargeMlp();
  m.mutable_graph()->mutable_node(2)->set_input(0, "nowhere");
  auto model = OnnxModel::FromProto(m, dir);
  ASSERT_TRUE(model.ok()) << model.status();
  SaveOptions options;
  options.external_data = SaveOptions::ExternalData::kAlways;
  EXPECT_THAT((*model)->Save(dir + "/out.onnx", options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ("ONNX checker")));
  EXPECT_TRUE(fs::is_empty(dir));
  fs::remove_all(dir);
}

TEST(CheckOnnxOutputTest, ChecksASavedFileWithExternalDataWithoutReadingIt) {
  const std::string dir = MakeTempDir("quantd-check");
  auto model = OnnxModel::FromProto(LargeMlp(), dir);
  ASSERT_TRUE(model.ok()) << model.status();
  SaveOptions options;
  options.external_data = SaveOptions::ExternalData::kAlways;
  ASSERT_TRUE((*model)->Save(dir + "/out.onnx", options).ok());
  ASSERT_TRUE(fs::exists(dir + "/out.onnx.data"));
  EXPECT_TRUE(CheckOnnxFile(dir + "/out.onnx").ok());
  EXPECT_THAT(CheckOnnxFile(dir + "/missing.onnx").status(),
              StatusIs(absl::StatusCode::kNotFound, "cannot open"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace quantd::core
