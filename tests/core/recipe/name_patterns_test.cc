// NamePatterns and the recipe's exclude_regex: hostile patterns and names are
// refused at validation or matched in linear time, never crash or hang.
#include "quantd/core/name_patterns.h"

#include <chrono>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/recipe.h"

namespace quantd::core {
namespace {

using ::testing::HasSubstr;

Recipe Int4WithRegexes(std::vector<std::string> patterns) {
  Recipe r;
  r.precision = Precision::kInt4;
  r.exclude_regex = std::move(patterns);
  return r;
}

// A sanity bound only: the assertions that matter are the statuses and
// results. Linear-time matching finishes these in milliseconds.
constexpr auto kGenerous = std::chrono::seconds(5);

TEST(NamePatternsTest, FullMatchSemantics) {
  auto p = NamePatterns::Compile({"lm_head", R"(.*/mlp/.*)", R"(layers\.[0-3]\..*)"}, "f");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->FullMatchAny("lm_head"));
  EXPECT_FALSE(p->FullMatchAny("/lm_head/MatMul"));  // the whole name must match
  EXPECT_FALSE(p->FullMatchAny("lm_head_1"));
  EXPECT_TRUE(p->FullMatchAny("/model/mlp/up/MatMul"));
  EXPECT_TRUE(p->FullMatchAny("layers.2.q_proj"));
  EXPECT_FALSE(p->FullMatchAny("layers.4.q_proj"));
  EXPECT_FALSE(p->FullMatchAny(""));
  EXPECT_FALSE(NamePatterns().FullMatchAny("anything"));
  // Byte-wise like the std::regex it replaces: `.` is one byte of UTF-8.
  auto bytes = NamePatterns::Compile({"caf.."}, "f");
  ASSERT_TRUE(bytes.ok());
  EXPECT_TRUE(bytes->FullMatchAny("caf\xc3\xa9"));
}

TEST(NamePatternsTest, RefusesMegabyteLiteralAtValidation) {
  Recipe r = Int4WithRegexes({std::string(1 << 20, 'a')});
  absl::Status st = ValidateRecipe(r);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("exclude_regex"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("longer than 4096 bytes"));
  EXPECT_LT(st.message().size(), 400u);  // the pattern is not echoed back
}

TEST(NamePatternsTest, DeepNestingIsRefusedOrMatchedWithoutRecursion) {
  // 30,000 nested groups: over the length cap, refused at validation.
  Recipe r = Int4WithRegexes({std::string(30000, '(') + "a" + std::string(30000, ')')});
  absl::Status st = ValidateRecipe(r);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("exclude_regex"));
  EXPECT_LT(st.message().size(), 400u);

  // 2,000 nested groups fit the cap; RE2 parses them with an explicit stack
  // and matches them like "a".
  const std::string deep = std::string(2000, '(') + "a" + std::string(2000, ')');
  ASSERT_TRUE(ValidateRecipe(Int4WithRegexes({deep})).ok());
  auto p = NamePatterns::Compile({deep}, "exclude_regex");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->FullMatchAny("a"));
  EXPECT_FALSE(p->FullMatchAny(std::string(200000, 'a')));
}

TEST(NamePatternsTest, RefusesTooManyPatternsAndWhatRe2Refuses) {
  Recipe r = Int4WithRegexes(std::vector<std::string>(NamePatterns::kMaxPatterns + 1, "a"));
  absl::Status st = ValidateRecipe(r);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("at most 256"));
  r.exclude_regex.resize(NamePatterns::kMaxPatterns);
  EXPECT_TRUE(ValidateRecipe(r).ok());

  // Backreferences and lookaround need backtracking: RE2 refuses them.
  for (const char* bad : {R"((a)\1)", "(?=a)a", "("}) {
    st = ValidateRecipe(Int4WithRegexes({bad}));
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(st.message()), HasSubstr("not a valid RE2 regular expression")) << bad;
  }
  // A huge program from a short pattern is refused, not built.
  st = ValidateRecipe(Int4WithRegexes({"((((a{100}){100}){100}){100})"}));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
}

TEST(NamePatternsTest, StarOfAlternationOnLongNameIsLinear) {
  ASSERT_TRUE(ValidateRecipe(Int4WithRegexes({"(a|b)*"})).ok());
  auto p = NamePatterns::Compile({"(a|b)*"}, "exclude_regex");
  ASSERT_TRUE(p.ok());
  std::string name(200000, 'a');
  for (size_t i = 0; i < name.size(); i += 3) name[i] = 'b';
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(p->FullMatchAny(name));
  name.back() = 'c';
  EXPECT_FALSE(p->FullMatchAny(name));
  EXPECT_LT(std::chrono::steady_clock::now() - start, kGenerous);
}

TEST(NamePatternsTest, NestedStarDoesNotBacktrack) {
  ASSERT_TRUE(ValidateRecipe(Int4WithRegexes({"(a*)*b"})).ok());
  auto p = NamePatterns::Compile({"(a*)*b"}, "exclude_regex");
  ASSERT_TRUE(p.ok());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(p->FullMatchAny(std::string(30, 'a')));
  EXPECT_FALSE(p->FullMatchAny(std::string(100000, 'a')));
  EXPECT_TRUE(p->FullMatchAny(std::string(30, 'a') + "b"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, kGenerous);
}

}  // namespace
}  // namespace quantd::core
