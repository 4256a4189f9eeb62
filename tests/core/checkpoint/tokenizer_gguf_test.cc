// TokenizerGgufKvs: byte-for-byte equality with the tokenizer metadata that
// llama.cpp's convert_hf_to_gguf.py (b4747) wrote for the shared checkpoints,
// a GPT-2 style BPE tokenizer written here, and the refusals.
#include "quantd/core/checkpoint/tokenizer_gguf.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bpe_pre_tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/base/mapped_file.h"
#include "quantd/core/gguf/gguf_file.h"
#include "quantd/testing/status_matchers.h"
#include "tokenizer_gguf_internal.h"

namespace quantd::core::checkpoint {
namespace {

using ::quantd::testing::StatusIs;
namespace fs = std::filesystem;

const std::string kHf = std::string(QUANTD_TESTDATA) + "/hf";

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Every tokenizer.* key/value of a GGUF file, in file order.
std::vector<gguf::GgufKv> ReferenceTokenizerKvs(const std::string& gguf_path) {
  auto file = MappedFile::Open(gguf_path);
  EXPECT_TRUE(file.ok()) << file.status();
  auto parsed = gguf::GgufFile::Parse((*file)->bytes());
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  std::vector<gguf::GgufKv> out;
  for (const gguf::GgufKv& kv : parsed->kvs()) {
    if (absl::StartsWith(kv.key, "tokenizer.")) out.push_back(kv);
  }
  return out;
}

void ExpectSameKvs(const std::vector<gguf::GgufKv>& got, const std::vector<gguf::GgufKv>& want) {
  std::vector<std::string> got_keys, want_keys;
  for (const auto& kv : got) got_keys.push_back(kv.key);
  for (const auto& kv : want) want_keys.push_back(kv.key);
  ASSERT_EQ(got_keys, want_keys);
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].type, want[i].type) << want[i].key;
    EXPECT_TRUE(got[i].raw == want[i].raw)
        << want[i].key << ": " << got[i].raw.size() << " vs " << want[i].raw.size() << " bytes";
  }
}

class SharedCheckpointTest : public ::testing::TestWithParam<const char*> {};

TEST_P(SharedCheckpointTest, KvsEqualConverterOutput) {
  const std::string name = GetParam();
  const std::string dir = kHf + "/checkpoints/" + name;
  const nlohmann::json config = ReadJson(dir + "/config.json");
  auto kvs = TokenizerGgufKvs(dir, config, config["architectures"][0].get<std::string>());
  ASSERT_TRUE(kvs.ok()) << kvs.status();
  const auto want = ReferenceTokenizerKvs(kHf + "/gguf/" + name + "-f16.gguf");
  ASSERT_FALSE(want.empty());
  ExpectSameKvs(*kvs, want);
}

INSTANTIATE_TEST_SUITE_P(Shared, SharedCheckpointTest,
                         ::testing::Values("phi3-tiny-shared", "llama-tiny-shared"),
                         [](const auto& info) {
                           return std::string(info.param) == "phi3-tiny-shared" ? "Phi3" : "Llama";
                         });

// A scratch folder, removed at the end of the test.
class TokenizerDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrCat("quantd_tokenizer_test_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Copies the named files of a shared checkpoint into the scratch folder.
  void CopyShared(const std::string& checkpoint, const std::vector<std::string>& files) {
    for (const auto& f : files) {
      fs::copy_file(kHf + "/checkpoints/" + checkpoint + "/" + f, dir_ / f,
                    fs::copy_options::overwrite_existing);
      fs::permissions(dir_ / f, fs::perms::owner_read | fs::perms::owner_write);
    }
  }

  fs::path dir_;
};

// Decodes a string-array value.
std::vector<std::string> Strings(const gguf::GgufKv& kv) {
  std::vector<std::string> out;
  const std::string& raw = kv.raw;
  uint64_t n = 0;
  std::memcpy(&n, raw.data() + 4, 8);
  size_t at = 12;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t len = 0;
    std::memcpy(&len, raw.data() + at, 8);
    out.push_back(raw.substr(at + 8, len));
    at += 8 + len;
  }
  return out;
}

std::vector<int32_t> Int32s(const gguf::GgufKv& kv) {
  uint64_t n = 0;
  std::memcpy(&n, kv.raw.data() + 4, 8);
  std::vector<int32_t> out(n);
  std::memcpy(out.data(), kv.raw.data() + 12, n * 4);
  return out;
}

// A byte-level BPE tokenizer.json: byte-level base tokens, merges in the
// list-of-pairs format (one with a space inside a part), 2 added tokens.
constexpr char kSmallBpe[] = R"json({
  "version": "1.0",
  "added_tokens": [
    {"id": 11, "content": "<|endoftext|>", "special": true, "normalized": false,
     "lstrip": false, "rstrip": false, "single_word": false},
    {"id": 12, "content": "<tool>", "special": false, "normalized": false,
     "lstrip": false, "rstrip": false, "single_word": false}
  ],
  "normalizer": null,
  "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                    "use_regex": true},
  "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false,
                     "use_regex": true},
  "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
              "use_regex": true},
  "model": {
    "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
    "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false,
    "vocab": {"a": 0, "b": 1, "c": 2, "\u0120": 3, "d": 4, "e": 5, "f": 6, "g": 7,
              "ab": 8, "\u0120a": 9, "abc": 10, "e f": 13, "e fg": 14},
    "merges": [["a", "b"], ["\u0120", "a"], ["ab", "c"], ["e f", "g"]]
  }
})json";

TEST(BpeEncodeTest, AddedTokensRegexSplitByteLevelAndMergeRanks) {
  const auto tokenizer = nlohmann::json::parse(kSmallBpe);
  // "abc" merges a+b (rank 0) then ab+c; in " abd" a+b (rank 0) wins over
  // the earlier pair Ġ+a (rank 1), leaving Ġ alone; added tokens are cut out
  // first; " a" is Ġa.
  auto ids = BpeEncode(tokenizer, "abc abd<|endoftext|> a<tool>g");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ::testing::ElementsAre(10, 3, 8, 4, 11, 9, 12, 7));
}

TEST(BpeEncodeTest, TemplatePostProcessorAddsSpecialTokens) {
  auto tokenizer = nlohmann::json::parse(kSmallBpe);
  tokenizer["post_processor"] = nlohmann::json::parse(R"({
    "type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
               {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [],
    "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [11],
                                         "tokens": ["<|endoftext|>"]}}})");
  auto ids = BpeEncode(tokenizer, "ab");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ::testing::ElementsAre(11, 8));
}

TEST(BpeEncodeTest, SplitPreTokenizerIsolatesMatches) {
  auto tokenizer = nlohmann::json::parse(kSmallBpe);
  // Splitting off every "b" keeps "a" and "b" apart: no a+b merge.
  tokenizer["pre_tokenizer"] = nlohmann::json::parse(R"({"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "b"}, "behavior": "Isolated", "invert": false},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})");
  auto ids = BpeEncode(tokenizer, "abc");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ::testing::ElementsAre(0, 1, 2));
}

// A tokenizer.json pattern that backtracks exponentially is refused once
// ICU's step limit runs out, instead of pinning the worker.
TEST(BpeEncodeTest, CatastrophicSplitPatternIsRefused) {
  auto tokenizer = nlohmann::json::parse(kSmallBpe);
  tokenizer["pre_tokenizer"] = nlohmann::json::parse(R"({"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "(a|aa)*c"}, "behavior": "Isolated", "invert": false},
    {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})");
  auto ids = BpeEncode(tokenizer, std::string(60, 'a'));
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument) << ids.status();
  EXPECT_THAT(std::string(ids.status().message()), ::testing::HasSubstr("too costly to match"));
}

// NFC composes e + U+0301 into U+00E9, whose UTF-8 bytes C3 A9 are the
// byte-level symbols U+00C3 and U+00A9.
TEST(BpeEncodeTest, NfcNormalizerComposesBeforeByteLevel) {
  auto tokenizer = nlohmann::json::parse(kSmallBpe);
  tokenizer["model"]["vocab"]["\u00c3"] = 20;
  tokenizer["model"]["vocab"]["\u00a9"] = 21;
  tokenizer["normalizer"] = nlohmann::json::parse(R"({"type": "NFC"})");
  auto ids = BpeEncode(tokenizer, "e\xcc\x81");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ::testing::ElementsAre(20, 21));
  tokenizer["normalizer"] = nlohmann::json::parse(R"({"type": "Lowercase"})");
  EXPECT_THAT(BpeEncode(tokenizer, "e").status(),
              StatusIs(absl::StatusCode::kUnimplemented, "\"Lowercase\""));
}

TEST(BpeEncodeTest, RefusesUnsupportedPreTokenizer) {
  auto tokenizer = nlohmann::json::parse(kSmallBpe);
  tokenizer["pre_tokenizer"] = nlohmann::json::parse(R"({"type": "Metaspace"})");
  EXPECT_THAT(BpeEncode(tokenizer, "ab").status(),
              StatusIs(absl::StatusCode::kUnimplemented, "\"Metaspace\""));
}

// The check text is the converter's chktxt (431 UTF-8 bytes); ids are hashed
// as Python prints a list.
TEST(BpeEncodeTest, CheckTextAndIdsHash) {
  EXPECT_EQ(BpeCheckText().size(), 431u);
  EXPECT_TRUE(absl::StartsWith(BpeCheckText(), "\n \n\n \n\n\n \t \t\t \t\n  \n"));
  EXPECT_TRUE(absl::EndsWith(BpeCheckText(), "'D you like some tea? We'Ve a'lL"));
  EXPECT_EQ(BpeIdsHash({1, 2, 3}),
            "a36b1f2c3f84522dd1005145646617d7054c0851e97c72a039c0bdfac9fa07f3");
  EXPECT_EQ(BpeIdsHash({}), "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945");
}

constexpr char kGpt2TokenizerConfig[] = R"({
    "tokenizer_class": "GPT2Tokenizer", "add_bos_token": false,
    "bos_token": "<|endoftext|>", "eos_token": {"content": "<|endoftext|>"},
    "chat_template": "{{ messages }}"})";

// A tokenizer that is no published model: its check-text hash is not in
// llama.cpp's table, and the refusal names the hash.
TEST_F(TokenizerDirTest, RefusesUnknownBpePreTokenizerNamingHash) {
  WriteFile(dir_ / "tokenizer.json", kSmallBpe);
  WriteFile(dir_ / "tokenizer_config.json", kGpt2TokenizerConfig);
  auto kvs = TokenizerGgufKvs(dir_.string(), {{"vocab_size", 16}}, "Phi3ForCausalLM");
  EXPECT_THAT(kvs.status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     "BPE pre-tokenizer not recognized: the check text's token "
                                     "ids hash to "));
}

TEST_F(TokenizerDirTest, Gpt2BpeTokensTypesMergesAndSpecialIds) {
  WriteFile(dir_ / "tokenizer.json", kSmallBpe);
  WriteFile(dir_ / "tokenizer_config.json", kGpt2TokenizerConfig);
  const nlohmann::json config = {{"vocab_size", 16}, {"pad_token_id", 11}};
  auto kvs = internal::Gpt2TokenizerGgufKvs(dir_.string(), config, "gpt-4o");
  ASSERT_TRUE(kvs.ok()) << kvs.status();
  std::vector<std::string> keys;
  for (const auto& kv : *kvs) keys.push_back(kv.key);
  EXPECT_THAT(
      keys, ::testing::ElementsAre("tokenizer.ggml.model", "tokenizer.ggml.pre",
                                   "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                                   "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id",
                                   "tokenizer.ggml.eos_token_id", "tokenizer.ggml.padding_token_id",
                                   "tokenizer.ggml.add_bos_token", "tokenizer.chat_template"));
  const auto& by = *kvs;
  EXPECT_EQ(by[0].AsString(), "gpt2");
  EXPECT_EQ(by[1].AsString(), "gpt-4o");
  EXPECT_THAT(Strings(by[2]),
              ::testing::ElementsAre("a", "b", "c", "\xc4\xa0", "d", "e", "f", "g", "ab",
                                     "\xc4\xa0"
                                     "a",
                                     "abc", "<|endoftext|>", "<tool>", "e f", "e fg", "[PAD15]"));
  EXPECT_EQ(by[3].ArrayInfo()->first, gguf::GgufValueType::kInt32);
  EXPECT_THAT(Int32s(by[3]),
              ::testing::ElementsAre(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 4, 1, 1, 5));
  EXPECT_THAT(Strings(by[4]), ::testing::ElementsAre("a b", "\xc4\xa0 a", "ab c",
                                                     "e\xc4\xa0"
                                                     "f g"));
  EXPECT_EQ(by[5].AsInt(), 11);
  EXPECT_EQ(by[6].AsInt(), 11);
  EXPECT_EQ(by[7].AsInt(), 11);
  EXPECT_EQ(by[8].type, gguf::GgufValueType::kBool);
  EXPECT_EQ(by[8].AsInt(), 0);
  EXPECT_EQ(by[9].AsString(), "{{ messages }}");
}

TEST_F(TokenizerDirTest, Gpt2RefusesTokenIdsBeyondVocabSize) {
  WriteFile(dir_ / "tokenizer.json", kSmallBpe);
  WriteFile(dir_ / "tokenizer_config.json", kGpt2TokenizerConfig);
  EXPECT_THAT(internal::Gpt2TokenizerGgufKvs(dir_.string(), {{"vocab_size", 12}}, "gpt-2").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "tokenizer.json: token id 14 does not fit config.json vocab_size 12"));
}

TEST_F(TokenizerDirTest, RefusesMissingTokenizerFiles) {
  const nlohmann::json config = {{"vocab_size", 32064}};
  EXPECT_THAT(TokenizerGgufKvs(dir_.string(), config, "Phi3ForCausalLM").status(),
              StatusIs(absl::StatusCode::kNotFound, "tokenizer.model"));
  EXPECT_THAT(TokenizerGgufKvs(dir_.string(), config, "LlamaForCausalLM").status(),
              StatusIs(absl::StatusCode::kNotFound, "no tokenizer.model and no tokenizer.json"));
  EXPECT_THAT(TokenizerGgufKvs(dir_.string(), config, "Qwen2ForCausalLM").status(),
              StatusIs(absl::StatusCode::kNotFound, "tokenizer.json"));
}

TEST_F(TokenizerDirTest, RefusesMalformedJsonNamingFileAndOffset) {
  CopyShared("phi3-tiny-shared", {"tokenizer.model"});
  WriteFile(dir_ / "tokenizer_config.json", "{\"tokenizer_class\": \"LlamaTokenizer\",,}");
  const nlohmann::json config = {{"vocab_size", 32064}};
  EXPECT_THAT(TokenizerGgufKvs(dir_.string(), config, "Phi3ForCausalLM").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "tokenizer_config.json: malformed JSON at byte 38"));
}

TEST_F(TokenizerDirTest, RefusesVocabSmallerThanTokenizer) {
  CopyShared("llama-tiny-shared", {"tokenizer.model", "tokenizer_config.json", "tokenizer.json"});
  // tokenizer.model alone has 32000 pieces.
  EXPECT_THAT(TokenizerGgufKvs(dir_.string(), {{"vocab_size", 31999}}, "LlamaForCausalLM").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "tokenizer.model has 32000 does not fit config.json vocab_size 31999"));
  // The added tokens reach id 32044.
  EXPECT_THAT(TokenizerGgufKvs(dir_.string(), {{"vocab_size", 32040}}, "Phi3ForCausalLM").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "added token id 32040 does not fit config.json vocab_size 32040"));
}

TEST_F(TokenizerDirTest, RefusesUnsupportedArchitecture) {
  EXPECT_THAT(
      TokenizerGgufKvs(dir_.string(), nlohmann::json::object(), "GPTNeoXForCausalLM").status(),
      StatusIs(absl::StatusCode::kInvalidArgument, "supported: Phi3ForCausalLM"));
}

TEST_F(TokenizerDirTest, RefusesPhi3TokenizerConfigWithoutClass) {
  CopyShared("phi3-tiny-shared", {"tokenizer.model"});
  WriteFile(dir_ / "tokenizer_config.json", "{}");
  EXPECT_THAT(TokenizerGgufKvs(dir_.string(), {{"vocab_size", 32064}}, "Phi3ForCausalLM").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "tokenizer_class"));
}

TEST_F(TokenizerDirTest, RefusesCorruptSentencePieceModel) {
  WriteFile(dir_ / "tokenizer.model", "not a protobuf");
  EXPECT_THAT(TokenizerGgufKvs(dir_.string(), {{"vocab_size", 32064}}, "LlamaForCausalLM").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "not a SentencePiece model"));
}

// Without tokenizer_config.json, the SentencePiece vocabulary is padded and
// the special ids come from config.json alone.
TEST_F(TokenizerDirTest, SentencePiecePaddingAndConfigIds) {
  CopyShared("llama-tiny-shared", {"tokenizer.model"});
  WriteFile(dir_ / "added_tokens.json", R"({"<extra>": 32000, "<far>": 40000})");
  const nlohmann::json config = {
      {"vocab_size", 32003}, {"bos_token_id", 1}, {"eos_token_id", 2}, {"pad_token_id", 50000}};
  auto kvs = TokenizerGgufKvs(dir_.string(), config, "MistralForCausalLM");
  ASSERT_TRUE(kvs.ok()) << kvs.status();
  std::vector<std::string> keys;
  for (const auto& kv : *kvs) keys.push_back(kv.key);
  EXPECT_THAT(keys, ::testing::ElementsAre(
                        "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                        "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"));
  const auto tokens = Strings((*kvs)[2]);
  ASSERT_EQ(tokens.size(), 32003u);
  EXPECT_EQ(tokens[32000], "<extra>");
  EXPECT_EQ(tokens[32001], "[PAD32001]");
  EXPECT_EQ(tokens[32002], "[PAD32002]");
  const auto types = Int32s((*kvs)[4]);
  EXPECT_EQ(types[0], 2);      // <unk>: UNKNOWN
  EXPECT_EQ(types[1], 3);      // <s>: CONTROL
  EXPECT_EQ(types[3], 6);      // <0x00>: BYTE
  EXPECT_EQ(types[32000], 4);  // added: USER_DEFINED
  EXPECT_EQ(types[32001], 5);  // padding: UNUSED
}

// A list of named chat templates: each non-default one under its own key,
// their names (non-alphanumerics as '_'), then the default; add_prefix_space
// becomes tokenizer.ggml.add_space_prefix for Llama.
TEST_F(TokenizerDirTest, NamedChatTemplatesAndAddSpacePrefix) {
  CopyShared("llama-tiny-shared", {"tokenizer.model"});
  WriteFile(dir_ / "tokenizer_config.json", R"({"add_prefix_space": true, "chat_template": [
      {"name": "default", "template": "D"}, {"name": "tool use", "template": "T"},
      {"name": "rag", "template": null}]})");
  auto kvs = TokenizerGgufKvs(dir_.string(), {{"vocab_size", 32000}}, "LlamaForCausalLM");
  ASSERT_TRUE(kvs.ok()) << kvs.status();
  std::vector<std::string> keys;
  for (const auto& kv : *kvs) keys.push_back(kv.key);
  EXPECT_THAT(keys, ::testing::ElementsAre(
                        "tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                        "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                        "tokenizer.chat_template.tool_use", "tokenizer.chat_templates",
                        "tokenizer.chat_template", "tokenizer.ggml.add_space_prefix"));
  EXPECT_EQ((*kvs)[5].AsString(), "T");
  EXPECT_THAT(Strings((*kvs)[6]), ::testing::ElementsAre("tool_use"));
  EXPECT_EQ((*kvs)[7].AsString(), "D");
  EXPECT_EQ((*kvs)[8].AsInt(), 1);
}

}  // namespace
}  // namespace quantd::core::checkpoint
