#include "quantd/core/recipe.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/gguf/gguf_mix.h"
#include "quantd/core/mlx/mlx_quant_plan.h"
#include "quantd/core/recipe_flags.h"

namespace quantd::core {
namespace {

TEST(RecipeFlagsTest, ParsesFlagsAndLeavesTheRest) {
  Recipe r;
  std::vector<std::string> rest;
  ASSERT_TRUE(ParseRecipeFlags({"in.onnx", "--precision", "fp16", "-o", "out.onnx",
                                "--no-keep-io-types", "--op-block-list=Resize,TopK"},
                               &r, &rest)
                  .ok());
  EXPECT_EQ(r.precision, Precision::kFp16);
  EXPECT_FALSE(r.keep_io_types);
  ASSERT_TRUE(r.op_block_list.has_value());
  EXPECT_EQ(*r.op_block_list, (std::vector<std::string>{"Resize", "TopK"}));
  EXPECT_EQ(rest, (std::vector<std::string>{"in.onnx", "-o", "out.onnx"}));
}

TEST(RecipeFlagsTest, PresetAppliesFirstAndFlagsOverride) {
  Recipe r;
  std::vector<std::string> rest;
  ASSERT_TRUE(ParseRecipeFlags({"--block-size", "64", "--preset", "mobile-int4"}, &r, &rest).ok());
  EXPECT_EQ(r.precision, Precision::kInt4);
  EXPECT_EQ(r.block_size, 64);
  EXPECT_EQ(r.lm_head, LmHeadMode::kInt8);
  EXPECT_EQ(r.preset, "mobile-int4");
}

TEST(RecipeFlagsTest, RefusesBadValuesClearly) {
  Recipe r;
  std::vector<std::string> rest;
  auto st = ParseRecipeFlags({"--precision", "int3"}, &r, &rest);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("use fp32, fp16, int8 or int4"));
  EXPECT_EQ(ParseRecipeFlags({"--block-size"}, &r, &rest).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRecipeFlags({"--preset", "nope"}, &r, &rest).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RecipeTest, ValidateRefusesAbsurdValues) {
  Recipe r;
  EXPECT_EQ(ValidateRecipe(r).code(), absl::StatusCode::kInvalidArgument);  // no target
  r.precision = Precision::kInt4;
  EXPECT_TRUE(ValidateRecipe(r).ok());
  r.block_size = 48;
  EXPECT_THAT(std::string(ValidateRecipe(r).message()), ::testing::HasSubstr("block_size 48"));
  r.block_size = 32;
  r.accuracy_level = 9;
  EXPECT_EQ(ValidateRecipe(r).code(), absl::StatusCode::kInvalidArgument);
  r.accuracy_level = 0;
  r.precision = Precision::kInt8;
  r.algorithm = QuantAlgorithm::kSearch;
  EXPECT_THAT(std::string(ValidateRecipe(r).message()),
              ::testing::HasSubstr("algorithm search applies to precision int4 only"));
  r.precision = Precision::kInt4;
  r.threads = 100000;
  EXPECT_EQ(ValidateRecipe(r).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RecipeTest, FlagsRoundTripAndCanonicalFormIsStable) {
  Recipe r;
  std::vector<std::string> rest;
  ASSERT_TRUE(
      ParseRecipeFlags({"--precision", "int4", "--asymmetric", "--block-size", "128",
                        "--exclude-nodes", "lm_head.*", "--lm-head", "int8", "--threads", "2"},
                       &r, &rest)
          .ok());
  Recipe back;
  ASSERT_TRUE(ParseRecipeFlags(RecipeToFlags(r), &back, &rest).ok());
  EXPECT_EQ(CanonicalRecipe(back), CanonicalRecipe(r));
  Recipe other = r;
  other.threads = 1;  // threads do not change the bytes: same identity
  EXPECT_EQ(CanonicalRecipe(other), CanonicalRecipe(r));
  other.block_size = 64;
  EXPECT_NE(CanonicalRecipe(other), CanonicalRecipe(r));
}

TEST(RecipeTest, ReportLevelIsSummaryByDefaultAndPartOfTheIdentityOnlyWhenNot) {
  Recipe r;
  r.precision = Precision::kInt4;
  EXPECT_EQ(r.report_level, ReportLevel::kSummary);
  const std::string summary = CanonicalRecipe(r);
  EXPECT_EQ(summary.find("report_level"), std::string::npos);  // old recipes keep their text
  std::vector<std::string> rest;
  for (auto [word, level] :
       {std::pair{"none", ReportLevel::kNone}, std::pair{"full", ReportLevel::kFull},
        std::pair{"summary", ReportLevel::kSummary}}) {
    Recipe p;
    ASSERT_TRUE(ParseRecipeFlags({"--precision", "int4", "--report-level", word}, &p, &rest).ok());
    EXPECT_EQ(p.report_level, level) << word;
    EXPECT_EQ(CanonicalRecipe(p) == summary, level == ReportLevel::kSummary) << word;
    Recipe back;
    ASSERT_TRUE(ParseRecipeFlags(RecipeToFlags(p), &back, &rest).ok());
    EXPECT_EQ(back.report_level, level) << word;
  }
  Recipe bad;
  EXPECT_EQ(ParseRecipeFlags({"--report-level", "some"}, &bad, &rest).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RecipeTest, ModelNameIsAPlainNameAndPartOfTheIdentityOnlyWhenSet) {
  Recipe r;
  r.gguf_type = "F16";
  const std::string without = CanonicalRecipe(r);
  EXPECT_EQ(without.find("model_name"), std::string::npos);  // old recipes keep their text
  std::vector<std::string> rest;
  ASSERT_TRUE(
      ParseRecipeFlags({"--gguf-type", "F16", "--model-name", "Phi-3.5-mini-instruct"}, &r, &rest)
          .ok());
  EXPECT_EQ(r.model_name, "Phi-3.5-mini-instruct");
  EXPECT_TRUE(ValidateRecipe(r).ok());
  EXPECT_NE(CanonicalRecipe(r), without);  // general.name differs: another job
  Recipe back;
  ASSERT_TRUE(ParseRecipeFlags(RecipeToFlags(r), &back, &rest).ok());
  EXPECT_EQ(CanonicalRecipe(back), CanonicalRecipe(r));
  for (const char* bad : {"../etc", "a/b", ".hidden", "two words", ""}) {
    EXPECT_EQ(ValidateModelName(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  r.model_name = "a/b";
  EXPECT_THAT(std::string(ValidateRecipe(r).message()), ::testing::HasSubstr("model_name 'a/b'"));
  EXPECT_TRUE(ValidateModelName(std::string(128, 'x')).ok());
  EXPECT_FALSE(ValidateModelName(std::string(129, 'x')).ok());
}

// The GGUF importance-matrix, per-tensor and split flags parse, print back
// to the same recipe, and enter the canonical text only when set.
TEST(RecipeFlagsTest, GgufImatrixTensorAndSplitFlags) {
  Recipe r;
  std::vector<std::string> rest;
  ASSERT_TRUE(ParseRecipeFlags({"--gguf-type", "IQ4_XS", "--imatrix", "m.dat", "--exclude-weights",
                                "ffn_down", "--tensor-type", "attn_v=q8_0", "--tensor-type",
                                "ffn_up=q5_k", "--prune-layers", "3,7", "--split-max-size", "6M"},
                               &r, &rest)
                  .ok());
  EXPECT_EQ(r.imatrix, "m.dat");
  EXPECT_EQ(r.imatrix_exclude, std::vector<std::string>{"ffn_down"});
  EXPECT_EQ(r.tensor_types, (std::vector<std::string>{"attn_v=q8_0", "ffn_up=q5_k"}));
  EXPECT_EQ(r.prune_layers, (std::vector<int>{3, 7}));
  EXPECT_EQ(r.split_max_bytes, 6000000u);
  Recipe back;
  ASSERT_TRUE(ParseRecipeFlags(RecipeToFlags(r), &back, &rest).ok());
  EXPECT_EQ(CanonicalRecipe(back), CanonicalRecipe(r));
  EXPECT_THAT(CanonicalRecipe(r), ::testing::HasSubstr("imatrix=m.dat"));
  Recipe plain;
  plain.gguf_type = "IQ4_XS";
  EXPECT_THAT(CanonicalRecipe(plain), ::testing::Not(::testing::HasSubstr("imatrix")));
  EXPECT_FALSE(ParseRecipeFlags({"--prune-layers", "3,x"}, &r, &rest).ok());
  EXPECT_FALSE(ParseRecipeFlags({"--split-max-size", "12Q"}, &r, &rest).ok());
}

TEST(RecipeFlagsTest, MlxFlags) {
  Recipe r;
  std::vector<std::string> rest;
  ASSERT_TRUE(ParseRecipeFlags({"ckpt", "--format", "mlx", "--bits", "3", "--group-size", "128",
                                "--mlx-recipe", "mixed_3_6", "--keep-embeddings"},
                               &r, &rest)
                  .ok());
  EXPECT_EQ(r.format, ModelFormat::kMlx);
  EXPECT_EQ(r.bits, 3);
  EXPECT_EQ(r.group_size, 128);
  EXPECT_EQ(r.mlx_recipe, "mixed_3_6");
  EXPECT_TRUE(KeepEmbeddings(r));
  EXPECT_EQ(rest, std::vector<std::string>{"ckpt"});
  EXPECT_TRUE(ValidateRecipe(r).ok());
  Recipe back;
  ASSERT_TRUE(ParseRecipeFlags(RecipeToFlags(r), &back, &rest).ok());
  EXPECT_EQ(CanonicalRecipe(back), CanonicalRecipe(r));
  EXPECT_EQ(MlxPrecisionName(r), "mixed_3_6");
}

TEST(RecipeTest, MlxDefaultsAndPrecisionAliases) {
  Recipe r;
  r.format = ModelFormat::kMlx;
  EXPECT_TRUE(ValidateRecipe(r).ok());  // no precision needed: 4 bits, group 64
  EXPECT_EQ(MlxBits(r), 4);
  EXPECT_EQ(r.group_size, 64);
  EXPECT_EQ(MlxPrecisionName(r), "4bit");
  // mlx-lm quantizes embeddings; ONNX keeps them unless told.
  EXPECT_FALSE(KeepEmbeddings(r));
  EXPECT_TRUE(KeepEmbeddings(Recipe()));
  r.keep_embeddings = true;
  EXPECT_TRUE(KeepEmbeddings(r));
  Recipe onnx;
  onnx.keep_embeddings = false;
  EXPECT_FALSE(KeepEmbeddings(onnx));

  r.precision = Precision::kInt8;
  EXPECT_EQ(MlxBits(r), 8);
  EXPECT_TRUE(ValidateRecipe(r).ok());
  r.bits = 8;
  EXPECT_TRUE(ValidateRecipe(r).ok());
  r.bits = 4;  // int8 and 4 bits
  EXPECT_THAT(std::string(ValidateRecipe(r).message()),
              ::testing::HasSubstr("precision int8 and bits 4 disagree"));
  r.precision = Precision::kInt4;
  EXPECT_TRUE(ValidateRecipe(r).ok());
  EXPECT_EQ(MlxPrecisionName(r), "4bit");
  r.precision = Precision::kFp16;
  EXPECT_THAT(std::string(ValidateRecipe(r).message()),
              ::testing::HasSubstr("precision fp16 does not apply to format mlx"));
}

TEST(RecipeTest, MlxValidationNamesTheField) {
  struct Case {
    void (*set)(Recipe*);
    const char* field;
  };
  const Case cases[] = {
      {[](Recipe* r) { r->bits = 7; }, "bits 7"},
      {[](Recipe* r) { r->bits = 1; }, "bits 1"},
      {[](Recipe* r) { r->group_size = 16; }, "group_size 16"},
      {[](Recipe* r) { r->mlx_recipe = "mixed_5_8"; }, "mlx_recipe 'mixed_5_8'"},
      {[](Recipe* r) { r->gguf_type = "Q4_K_M"; }, "gguf_type does not apply to format mlx"},
      {[](Recipe* r) { r->block_size = 64; }, "block_size does not apply"},
      {[](Recipe* r) { r->lm_head = LmHeadMode::kInt8; }, "lm_head does not apply"},
      {[](Recipe* r) { r->per_channel = true; }, "per_channel does not apply"},
      {[](Recipe* r) { r->min_tensor_elements = 5; }, "min_tensor_elements does not apply"},
  };
  for (const Case& c : cases) {
    Recipe r;
    r.format = ModelFormat::kMlx;
    c.set(&r);
    absl::Status st = ValidateRecipe(r);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr(c.field));
  }
  // Every supported value passes.
  for (int bits : {2, 3, 4, 5, 6, 8}) {
    for (int group : {32, 64, 128}) {
      Recipe r;
      r.format = ModelFormat::kMlx;
      r.bits = bits;
      r.group_size = group;
      EXPECT_TRUE(ValidateRecipe(r).ok()) << bits << " " << group;
    }
  }
  // The MLX fields are refused for other formats.
  const Case other[] = {
      {[](Recipe* r) { r->bits = 4; }, "bits applies to format mlx"},
      {[](Recipe* r) { r->group_size = 32; }, "group_size applies to format mlx"},
      {[](Recipe* r) { r->mlx_recipe = "mixed_3_6"; }, "mlx_recipe applies to format mlx"},
  };
  for (const Case& c : other) {
    Recipe r;
    r.precision = Precision::kInt4;
    c.set(&r);
    EXPECT_THAT(std::string(ValidateRecipe(r).message()), ::testing::HasSubstr(c.field));
  }
  EXPECT_EQ(WithFlagHint("group_size 16 is not supported; use 32, 64 or 128"),
            "group_size 16 is not supported; use 32, 64 or 128 [flags: group_size: --group-size]");
}

// The recipe layer (Abseil only) keeps its own list of mixed recipe names;
// it must be the list the MLX plan accepts.
TEST(RecipeTest, MlxMixedRecipeNamesAreThePlansNames) {
  for (const std::string& name : MlxMixedRecipeNames()) {
    auto parsed = mlx::ParseMlxMixedRecipe(name);
    ASSERT_TRUE(parsed.ok()) << name;
    EXPECT_EQ(mlx::MlxMixedRecipeName(*parsed), name);
  }
  EXPECT_EQ(MlxPrecisionNames(),
            (std::vector<std::string>{"2bit", "3bit", "4bit", "5bit", "6bit", "8bit", "mixed_2_6",
                                      "mixed_3_4", "mixed_3_6", "mixed_4_6"}));
}

// Adding MLX left every other recipe's canonical text (the service's
// de-duplication key) as it was.
TEST(RecipeTest, CanonicalTextOfOtherFormatsUnchanged) {
  Recipe r;
  r.precision = Precision::kInt4;
  EXPECT_EQ(CanonicalRecipe(r),
            "format=auto;precision=int4;keep_io_types=1;op_block_list=<default>;"
            "node_block_list=;external_data=0;block_size=32;symmetric=1;accuracy_level=0;"
            "int4_format=0;algorithm=0;int8_mode=0;int8_weight_type=0;per_channel=0;"
            "reduce_range=0;op_types=;exclude_nodes=;exclude_regex=;keep_embeddings=1;lm_head=0;"
            "min_tensor_elements=0;gguf_type=;leave_output_tensor=0;output_tensor_type=;"
            "token_embedding_type=;pure=0;allow_requantize=0");
  r.keep_embeddings = true;  // the default, spelled out: the same recipe
  const std::string with_default = CanonicalRecipe(r);
  r.keep_embeddings.reset();
  EXPECT_EQ(CanonicalRecipe(r), with_default);
  Recipe mlx;
  mlx.format = ModelFormat::kMlx;
  EXPECT_THAT(CanonicalRecipe(mlx), ::testing::EndsWith(";bits=4;group_size=64;mlx_recipe="));
  Recipe mlx4 = mlx;
  mlx4.precision = Precision::kInt4;
  mlx4.bits = 4;
  Recipe mlx8 = mlx;
  mlx8.bits = 8;
  EXPECT_NE(CanonicalRecipe(mlx8), CanonicalRecipe(mlx));
  Recipe mlx_emb = mlx;
  mlx_emb.keep_embeddings = true;
  EXPECT_NE(CanonicalRecipe(mlx_emb), CanonicalRecipe(mlx));
}

TEST(RecipeTest, ValidateNamesRecipeFieldsNotFlags) {
  std::vector<Recipe> bad(7);
  bad[1].gguf_type = "Q4_K_M";
  bad[1].format = ModelFormat::kOnnx;  // gguf_type on ONNX
  bad[2].format = ModelFormat::kGguf;  // no gguf_type
  bad[2].precision = Precision::kInt4;
  bad[3].precision = Precision::kInt4;
  bad[3].block_size = 7;
  bad[4].precision = Precision::kInt4;
  bad[4].accuracy_level = 5;
  bad[5].precision = Precision::kInt8;
  bad[5].algorithm = QuantAlgorithm::kSearch;
  bad[6].precision = Precision::kInt4;
  bad[6].threads = 0;
  const char* field[] = {"gguf_type",      "gguf_type", "gguf_type", "block_size",
                         "accuracy_level", "algorithm", "threads"};
  for (size_t i = 0; i < bad.size(); ++i) {
    absl::Status st = ValidateRecipe(bad[i]);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << i;
    EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr(field[i])) << i;
    EXPECT_THAT(std::string(st.message()), ::testing::Not(::testing::HasSubstr("--"))) << i;
  }
}

TEST(RecipeTest, GatherBlockQuantizedEmbeddingsTakeFourOrEightBits) {
  Recipe r;
  r.keep_embeddings = false;
  r.embedding_op = EmbeddingOp::kGatherBlockQuantized;
  r.precision = Precision::kInt4;
  EXPECT_TRUE(ValidateRecipe(r).ok());  // 4-bit
  r.int8_embeddings = true;
  EXPECT_TRUE(ValidateRecipe(r).ok());  // 8-bit inside an INT4 model
  r.int8_embeddings = false;
  r.precision = Precision::kInt8;
  EXPECT_TRUE(ValidateRecipe(r).ok());  // 8-bit
  r.precision = Precision::kFp16;
  absl::Status st = ValidateRecipe(r);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), ::testing::HasSubstr("int4 or int8"));
  r.precision = Precision::kInt8;
  r.keep_embeddings = true;
  EXPECT_EQ(ValidateRecipe(r).code(), absl::StatusCode::kInvalidArgument);
  // int8_embeddings still belongs to INT4 models.
  Recipe i8;
  i8.precision = Precision::kInt8;
  i8.keep_embeddings = false;
  i8.int8_embeddings = true;
  EXPECT_EQ(ValidateRecipe(i8).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RecipeFlagsTest, FlagHintNamesTheFlagsOfMentionedFields) {
  EXPECT_EQ(WithFlagHint("gguf_type needs a GGUF input; this input is ONNX"),
            "gguf_type needs a GGUF input; this input is ONNX [flags: gguf_type: --gguf-type]");
  EXPECT_EQ(WithFlagHint("no target: set precision (fp32, fp16, int8 or int4), gguf_type (e.g. "
                         "Q4_K_M) or preset"),
            "no target: set precision (fp32, fp16, int8 or int4), gguf_type (e.g. Q4_K_M) or "
            "preset [flags: precision: --precision, gguf_type: --gguf-type, preset: --preset]");
  // Boolean fields list both spellings; a field inside a server's
  // "recipe.<field>" counts; a flag already named needs no hint.
  EXPECT_EQ(WithFlagHint("set recipe.symmetric"),
            "set recipe.symmetric [flags: symmetric: --symmetric/--asymmetric]");
  EXPECT_EQ(WithFlagHint("--precision: invalid value 'int3'"), "--precision: invalid value 'int3'");
  EXPECT_EQ(WithFlagHint("cannot open model.onnx"), "cannot open model.onnx");
  EXPECT_EQ(WithFlagHint("Recipe_threadsX"), "Recipe_threadsX");
  // Every field a flag sets maps back to that flag.
  EXPECT_THAT(FlagsForField("exclude_regex"), ::testing::ElementsAre("--exclude-nodes"));
  EXPECT_THAT(FlagsForField("exclude_nodes"), ::testing::ElementsAre("--exclude-node"));
  EXPECT_TRUE(FlagsForField("block-size").empty());
}

// The flags each preset showed when presets were stored as flag vectors:
// `quantd presets` and `quantctl presets` must keep printing exactly these.
TEST(PresetTest, PresetsShowTheirFlagsUnchanged) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> want = {
      {"mobile-int4",
       {"--precision", "int4", "--block-size", "32", "--symmetric", "--accuracy-level", "4",
        "--lm-head", "int8"}},
      {"iot-int4",
       {"--precision", "int4", "--block-size", "128", "--symmetric", "--lm-head", "int8"}},
      {"openvino-int4",
       {"--precision", "int4", "--int4-format", "qdq", "--block-size", "128", "--symmetric",
        "--quantize-embeddings", "--int8-embeddings", "--lm-head", "int8"}},
      {"aipc-int8", {"--precision", "int8", "--int8-mode", "dynamic", "--per-channel"}},
      {"aipc-fp16", {"--precision", "fp16"}},
      {"aipc-fp32", {"--precision", "fp32"}},
      {"gguf-q4km", {"--format", "gguf", "--gguf-type", "Q4_K_M"}},
      {"gguf-q8", {"--format", "gguf", "--gguf-type", "Q8_0"}},
  };
  ASSERT_EQ(Presets().size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(Presets()[i].name, want[i].first);
    EXPECT_EQ(PresetFlags(Presets()[i]), want[i].second) << want[i].first;
  }
}

TEST(PresetTest, ShownFlagsGiveBackThePresetRecipe) {
  for (const Preset& p : Presets()) {
    EXPECT_EQ(p.recipe.preset, p.name);
    EXPECT_TRUE(ValidateRecipe(p.recipe).ok()) << p.name;
    Recipe from_flags;
    std::vector<std::string> rest;
    ASSERT_TRUE(ParseRecipeFlags(PresetFlags(p), &from_flags, &rest).ok()) << p.name;
    EXPECT_TRUE(rest.empty());
    EXPECT_EQ(CanonicalRecipe(from_flags), CanonicalRecipe(p.recipe)) << p.name;
    EXPECT_EQ(from_flags.threads, p.recipe.threads) << p.name;
    Recipe by_name;
    ASSERT_TRUE(ParseRecipeFlags({"--preset", p.name}, &by_name, &rest).ok()) << p.name;
    EXPECT_EQ(CanonicalRecipe(by_name), CanonicalRecipe(p.recipe)) << p.name;
    EXPECT_EQ(by_name.preset, p.name);
  }
}

TEST(PresetTest, FieldsListEveryFieldThePresetChanges) {
  const Recipe d;
  for (const Preset& p : Presets()) {
    // RecipeToFlags spells exactly the non-default fields.
    std::vector<std::string> non_default = RecipeToFlags(p.recipe);
    std::vector<std::string> shown = PresetFlags(p);
    for (const std::string& flag : non_default) {
      if (flag.rfind("--", 0) != 0) continue;
      EXPECT_THAT(shown, ::testing::Contains(flag)) << p.name;
    }
    for (const std::string& field : p.fields) {
      EXPECT_FALSE(FlagsForField(field).empty()) << p.name << ": " << field;
    }
  }
  ASSERT_TRUE(FindPreset("iot-int4").ok());
  EXPECT_EQ((*FindPreset("iot-int4"))->recipe.block_size, 128);
  EXPECT_THAT(std::string(FindPreset("nope").status().message()),
              ::testing::HasSubstr("known: mobile-int4, iot-int4"));
}

// The --gguf-type help spells the file types out ("Q3_K_S/M/L" is three of
// them); it must name every one the GGUF core accepts, and no other.
TEST(RecipeFlagsTest, GgufTypeHelpNamesEveryFileTypeTheCoreAccepts) {
  std::string line;
  for (absl::string_view l : absl::StrSplit(RecipeFlagsHelp(), '\n')) {
    if (absl::StrContains(l, "--gguf-type")) line = std::string(l);
  }
  ASSERT_FALSE(line.empty());
  std::set<std::string> named;
  for (absl::string_view word : absl::StrSplit(line, absl::ByAnyChar(" ():"), absl::SkipEmpty())) {
    std::vector<std::string> parts = absl::StrSplit(word, '/');
    if (parts[0].size() < 2 || parts[0][0] < 'A' || parts[0][0] > 'Z') continue;
    if (parts[0] == "GGUF" || parts[0] == "TYPE") continue;
    named.insert(parts[0]);
    for (size_t i = 1; i < parts.size(); ++i) {
      if (parts[i].size() == 1) {  // "Q3_K_S/M": the last letter varies
        named.insert(parts[0].substr(0, parts[0].size() - 1) + parts[i]);
      } else {
        named.insert(parts[i]);  // "Q3_K/Q4_K/Q5_K"
      }
    }
  }
  const std::vector<std::string> accepted = gguf::FileTypeNames();
  EXPECT_EQ(named, std::set<std::string>(accepted.begin(), accepted.end())) << line;
}

TEST(RecipeTest, PrecisionNamesParseBack) {
  ASSERT_EQ(PrecisionNames(), (std::vector<std::string>{"fp32", "fp16", "int8", "int4"}));
  for (const std::string& name : PrecisionNames()) {
    auto p = ParsePrecision(name);
    ASSERT_TRUE(p.ok()) << name;
    EXPECT_EQ(PrecisionName(*p), name);
  }
}

}  // namespace
}  // namespace quantd::core
