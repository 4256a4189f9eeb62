#include "core/onnx/opset.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_models.h"

namespace quantd::core {
namespace {

using ::quantd::testing::AddNode;
using ::testing::HasSubstr;

onnx::ModelProto WithOps(int64_t opset, const std::vector<std::string>& ops) {
  onnx::ModelProto m;
  m.set_ir_version(7);
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  for (size_t i = 0; i < ops.size(); ++i) {
    AddNode(m.mutable_graph(), ops[i], absl::StrCat("n", i), {"a"}, {absl::StrCat("b", i)});
  }
  return m;
}

TEST(OpsetTest, RaiseIsBlockedOnlyByOpsThatChangedInBetween) {
  onnx::ModelProto m = WithOps(13, {"MatMul", "ReduceMean"});
  EXPECT_TRUE(CheckOpsetRaise(m, 13, 17).ok());
  absl::Status st = CheckOpsetRaise(m, 13, 21);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), HasSubstr("ReduceMean (changed in opset 18)"));
  EXPECT_TRUE(CheckOpsetRaise(m, 18, 21).ok());
}

TEST(OpsetTest, SetDefaultOpsetRaisesTheIrVersion) {
  onnx::ModelProto m = WithOps(13, {});
  SetDefaultOpset(&m, 21);
  EXPECT_EQ(DefaultOpset(m), 21);
  EXPECT_EQ(m.ir_version(), 10);
  SetDefaultOpset(&m, 13);  // never lowers the IR version
  EXPECT_EQ(m.ir_version(), 10);

  onnx::ModelProto none;
  EXPECT_EQ(DefaultOpset(none), 1);
  SetDefaultOpset(&none, 11);
  ASSERT_EQ(none.opset_import_size(), 1);
  EXPECT_EQ(none.opset_import(0).version(), 11);
  EXPECT_EQ(none.ir_version(), 6);
  EnsureMsDomain(&none);
  EnsureMsDomain(&none);
  EXPECT_EQ(none.opset_import_size(), 2);
}

TEST(OpsetTest, Int4QdqRefusalNamesTheRecipeField) {
  onnx::ModelProto m = WithOps(17, {"MatMul", "ReduceMean"});
  Recipe r;
  r.precision = Precision::kInt4;
  r.int4_format = Int4Format::kQdq;
  std::vector<std::string> notes;
  auto plan = PlanOpsets(r, false, &m, &notes);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(plan.status().message()),
              HasSubstr("Set int4_format to INT4_FORMAT_MATMULNBITS"));
  EXPECT_THAT(std::string(plan.status().message()), ::testing::Not(HasSubstr("--")));
  EXPECT_EQ(DefaultOpset(m), 17);  // untouched

  r.int4_format = Int4Format::kMatMulNBits;
  auto ok = PlanOpsets(r, false, &m, &notes);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->opset, 17);
  EXPECT_TRUE(ok->int8_per_channel);
  EXPECT_FALSE(ok->embedding_int4);
}

// GatherBlockQuantized embeddings are a contrib op at any width: an INT4
// MatMulNBits model with 8-bit GatherBlockQuantized embeddings keeps its
// opset, where DequantizeLinear embeddings raise it to 10.
TEST(OpsetTest, GatherBlockQuantizedEmbeddingsNeedNoRaise) {
  Recipe r;
  r.precision = Precision::kInt4;
  r.int4_format = Int4Format::kMatMulNBits;
  r.keep_embeddings = false;
  r.int8_embeddings = true;
  r.embedding_op = EmbeddingOp::kGatherBlockQuantized;
  std::vector<std::string> notes;
  onnx::ModelProto m = WithOps(9, {"MatMul", "Gather"});
  auto gbq = PlanOpsets(r, /*has_embedding=*/true, &m, &notes);
  ASSERT_TRUE(gbq.ok()) << gbq.status();
  EXPECT_EQ(gbq->opset, 9);
  EXPECT_EQ(DefaultOpset(m), 9);
  r.embedding_op = EmbeddingOp::kGather;
  auto dq = PlanOpsets(r, /*has_embedding=*/true, &m, &notes);
  ASSERT_TRUE(dq.ok()) << dq.status();
  EXPECT_GE(dq->opset, 10);
}

}  // namespace
}  // namespace quantd::core
