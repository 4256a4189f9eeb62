#include "quantd/server/translate.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace quantd::server {
namespace {

TEST(TranslateTest, RecipeRoundTripsThroughProto) {
  core::Recipe r;
  r.precision = core::Precision::kInt4;
  r.block_size = 128;
  r.symmetric = false;
  r.accuracy_level = 4;
  r.int4_format = core::Int4Format::kQdq;
  r.lm_head = core::LmHeadMode::kInt8;
  r.exclude_nodes = {"a", "b"};
  r.op_block_list = std::vector<std::string>{"Resize"};
  r.threads = 3;
  auto back = RecipeFromProto(RecipeToProto(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(core::CanonicalRecipe(*back), core::CanonicalRecipe(r));
  EXPECT_EQ(back->threads, 3);
}

TEST(TranslateTest, PresetIsExpandedAndFieldsOverrideIt) {
  v1::Recipe p;
  p.set_preset("iot-int4");
  p.set_block_size(64);
  auto r = RecipeFromProto(p);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->precision, core::Precision::kInt4);
  EXPECT_EQ(r->block_size, 64);
  EXPECT_EQ(r->lm_head, core::LmHeadMode::kInt8);
  p.set_preset("nope");
  EXPECT_EQ(RecipeFromProto(p).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TranslateTest, RecipeMustFitTheModelFormat) {
  core::Recipe r;
  r.precision = core::Precision::kFp16;
  EXPECT_TRUE(ValidateRecipeForModel(r, v1::MODEL_FORMAT_ONNX).ok());
  EXPECT_EQ(ValidateRecipeForModel(r, v1::MODEL_FORMAT_GGUF).code(),
            absl::StatusCode::kInvalidArgument);
  r.gguf_type = "Q4_K_M";
  r.precision = core::Precision::kUnspecified;
  EXPECT_TRUE(ValidateRecipeForModel(r, v1::MODEL_FORMAT_GGUF).ok());
  EXPECT_EQ(ValidateRecipeForModel(r, v1::MODEL_FORMAT_ONNX).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TranslateTest, CheckpointNeedsGgufTypeAndModelName) {
  core::Recipe r;
  r.gguf_type = "F16";
  EXPECT_THAT(std::string(ValidateRecipeForModel(r, v1::MODEL_FORMAT_HF_CHECKPOINT).message()),
              ::testing::HasSubstr("recipe.model_name"));
  r.model_name = "phi3-tiny-shared";
  EXPECT_TRUE(ValidateRecipeForModel(r, v1::MODEL_FORMAT_HF_CHECKPOINT).ok());
  // model_name on anything else is refused: it would change the dedup key for nothing.
  EXPECT_EQ(ValidateRecipeForModel(r, v1::MODEL_FORMAT_GGUF).code(),
            absl::StatusCode::kInvalidArgument);
  r.gguf_type.clear();
  EXPECT_THAT(std::string(ValidateRecipeForModel(r, v1::MODEL_FORMAT_HF_CHECKPOINT).message()),
              ::testing::HasSubstr("no target"));
  // A precision without gguf_type asks for an ONNX GenAI folder.
  r.precision = core::Precision::kFp16;
  EXPECT_TRUE(ValidateRecipeForModel(r, v1::MODEL_FORMAT_HF_CHECKPOINT).ok());
  r.format = core::ModelFormat::kOnnx;
  EXPECT_TRUE(ValidateRecipeForModel(r, v1::MODEL_FORMAT_HF_CHECKPOINT).ok());
}

TEST(TranslateTest, MlxRecipesFitCheckpointModels) {
  core::Recipe r;
  r.format = core::ModelFormat::kMlx;
  r.model_name = "llama-tiny-shared";
  EXPECT_TRUE(ValidateRecipeForModel(r, v1::MODEL_FORMAT_HF_CHECKPOINT).ok());
  for (v1::ModelFormat other : {v1::MODEL_FORMAT_ONNX, v1::MODEL_FORMAT_GGUF}) {
    r.model_name.clear();
    EXPECT_THAT(std::string(ValidateRecipeForModel(r, other).message()),
                ::testing::HasSubstr("format mlx converts a Hugging Face checkpoint"));
  }
  r.model_name = "llama-tiny-shared";
  r.bits = 7;
  EXPECT_EQ(ValidateRecipeForModel(r, v1::MODEL_FORMAT_HF_CHECKPOINT).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TranslateTest, MlxJobsHaveTheirMetricLabels) {
  v1::Recipe p;
  p.set_format(v1::MODEL_FORMAT_MLX);
  EXPECT_EQ(JobMetricLabels(p), (std::pair<std::string, std::string>{"mlx", "4bit"}));
  p.set_precision(v1::PRECISION_INT8);
  EXPECT_EQ(JobMetricLabels(p), (std::pair<std::string, std::string>{"mlx", "8bit"}));
  p.set_bits(3);
  EXPECT_EQ(JobMetricLabels(p), (std::pair<std::string, std::string>{"mlx", "3bit"}));
  p.set_mlx_recipe("mixed_2_6");
  EXPECT_EQ(JobMetricLabels(p), (std::pair<std::string, std::string>{"mlx", "mixed_2_6"}));
  v1::Recipe onnx;
  onnx.set_precision(v1::PRECISION_INT4);
  EXPECT_EQ(JobMetricLabels(onnx), (std::pair<std::string, std::string>{"onnx", "int4"}));
}

TEST(TranslateTest, StatusCodesMapOneToOne) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  for (int c = 1; c <= 16; ++c) {
    auto code = static_cast<absl::StatusCode>(c);
    grpc::Status g = ToGrpcStatus(absl::Status(code, "m"));
    EXPECT_EQ(static_cast<int>(g.error_code()), c);
    EXPECT_EQ(g.error_message(), "m");
  }
  EXPECT_EQ(StatusCodeName(absl::StatusCode::kDataLoss), "DATA_LOSS");
}

TEST(TranslateTest, ReportKeepsFileNamesOnly) {
  core::Report r;
  r.precision = "fp16";
  r.output_files = {"/data/work/job_x/model.onnx", "/data/work/job_x/model.onnx.data"};
  core::TensorReport t;
  t.name = "w";
  t.sqnr_db = 40.0;
  r.tensors.push_back(t);
  v1::Report p = ReportToProto(r);
  ASSERT_EQ(p.output_files_size(), 2);
  EXPECT_EQ(p.output_files(0), "model.onnx");
  EXPECT_TRUE(p.tensors(0).has_sqnr_db());
  EXPECT_FALSE(p.tensors(0).has_rel_l2_error());
}

// A status carrying a client's 4 MiB id would exceed gRPC's metadata limit
// (the call then fails with RESOURCE_EXHAUSTED instead of its own code).
TEST(TranslateTest, HugeMessagesAreCutNotEchoed) {
  const std::string huge_id(4 << 20, 'x');
  const std::string message = "job '" + huge_id + "' not found";
  grpc::Status st = ToGrpcStatus(absl::NotFoundError(message));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_LT(st.error_message().size(), 1100u);
  EXPECT_NE(st.error_message().find("(" + std::to_string(message.size()) + " bytes)"),
            std::string::npos);
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError("short")).error_message(), "short");
}

}  // namespace
}  // namespace quantd::server
