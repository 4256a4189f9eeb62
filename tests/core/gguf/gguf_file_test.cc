// GgufFile: parsing every metadata type, header round trip, and one test per
// refusal of a malformed file.
#include "quantd/core/gguf/gguf_file.h"

#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/testing/status_matchers.h"

namespace quantd::core::gguf {
namespace {

using ::quantd::testing::StatusIs;

template <class T>
void Put(std::string* s, T v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof(T));
}
void PutStr(std::string* s, const std::string& v) {
  Put<uint64_t>(s, v.size());
  s->append(v);
}

// A small valid file: metadata of every value type (nested array too), two
// F32 tensors of 32 and 2x32 values.
struct Builder {
  std::vector<GgufKv> kvs;
  std::vector<GgufTensorInfo> tensors;

  Builder() {
    auto kv = [&](const std::string& key, GgufValueType t, std::string raw) {
      kvs.push_back(GgufKv{key, t, std::move(raw)});
    };
    std::string r;
    Put<uint8_t>(&r, 7);
    kv("u8", GgufValueType::kUint8, r);
    r.clear();
    Put<int8_t>(&r, -7);
    kv("i8", GgufValueType::kInt8, r);
    r.clear();
    Put<uint16_t>(&r, 700);
    kv("u16", GgufValueType::kUint16, r);
    r.clear();
    Put<int16_t>(&r, -700);
    kv("i16", GgufValueType::kInt16, r);
    r.clear();
    Put<uint32_t>(&r, 70000);
    kv("u32", GgufValueType::kUint32, r);
    r.clear();
    Put<int32_t>(&r, -70000);
    kv("i32", GgufValueType::kInt32, r);
    r.clear();
    Put<float>(&r, 1.5f);
    kv("f32", GgufValueType::kFloat32, r);
    r.clear();
    Put<uint8_t>(&r, 1);
    kv("bool", GgufValueType::kBool, r);
    r.clear();
    PutStr(&r, "hello");
    kv("str", GgufValueType::kString, r);
    r.clear();
    Put<uint64_t>(&r, 1ull << 40);
    kv("u64", GgufValueType::kUint64, r);
    r.clear();
    Put<int64_t>(&r, -(1ll << 40));
    kv("i64", GgufValueType::kInt64, r);
    r.clear();
    Put<double>(&r, 2.5);
    kv("f64", GgufValueType::kFloat64, r);
    r.clear();
    Put<uint32_t>(&r, 5);
    Put<uint64_t>(&r, 3);
    Put<int32_t>(&r, 4);
    Put<int32_t>(&r, 5);
    Put<int32_t>(&r, 6);
    kv("arr.i32", GgufValueType::kArray, r);
    r.clear();
    Put<uint32_t>(&r, 8);
    Put<uint64_t>(&r, 2);
    PutStr(&r, "a");
    PutStr(&r, "bc");
    kv("arr.str", GgufValueType::kArray, r);
    r.clear();
    Put<uint32_t>(&r, 9);
    Put<uint64_t>(&r, 1);
    Put<uint32_t>(&r, 0);
    Put<uint64_t>(&r, 2);
    Put<uint8_t>(&r, 1);
    Put<uint8_t>(&r, 2);
    kv("arr.nested", GgufValueType::kArray, r);
    r.clear();
    Add("a.weight", {32});
    Add("b.weight", {32, 2});
  }
  void Add(const std::string& name, std::vector<int64_t> ne) {
    GgufTensorInfo t;
    t.name = name;
    t.ne = std::move(ne);
    t.type = GgmlType::kF32;
    t.nbytes = static_cast<uint64_t>(t.Elements()) * 4;
    tensors.push_back(t);
  }
  std::string Build(bool layout = true) {
    if (layout) LayoutTensors(&tensors, 32);
    std::string s = SerializeHeader(kvs, tensors);
    s.resize(AlignUp(s.size(), 32), '\0');
    uint64_t data = 0;
    for (const auto& t : tensors) data = std::max(data, t.offset + AlignUp(t.nbytes, 32));
    s.resize(s.size() + data, '\x01');
    return s;
  }
};

absl::StatusOr<GgufFile> ParseString(const std::string& s) {
  return GgufFile::Parse(
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

TEST(GgufFileTest, ParsesEveryValueType) {
  Builder b;
  const std::string bytes = b.Build();
  auto f = ParseString(bytes);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->kvs().size(), b.kvs.size());
  EXPECT_EQ(f->FindKv("u8")->AsInt(), 7);
  EXPECT_EQ(f->FindKv("i8")->AsInt(), -7);
  EXPECT_EQ(f->FindKv("u16")->AsInt(), 700);
  EXPECT_EQ(f->FindKv("i16")->AsInt(), -700);
  EXPECT_EQ(f->FindKv("u32")->AsInt(), 70000);
  EXPECT_EQ(f->FindKv("i32")->AsInt(), -70000);
  EXPECT_EQ(f->FindKv("u64")->AsInt(), 1ll << 40);
  EXPECT_EQ(f->FindKv("i64")->AsInt(), -(1ll << 40));
  EXPECT_EQ(f->FindKv("bool")->AsInt(), 1);
  EXPECT_EQ(f->FindKv("str")->AsString(), "hello");
  EXPECT_EQ(f->FindKv("arr.i32")->FirstArrayInt(), 4);
  EXPECT_EQ(f->FindKv("arr.str")->ArrayInfo()->second, 2u);
  EXPECT_EQ(f->FindKv("arr.nested")->ArrayInfo()->first, GgufValueType::kArray);
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[1].ne, (std::vector<int64_t>{32, 2}));
  EXPECT_EQ(f->tensors()[1].offset, 128u);
  EXPECT_EQ(f->data_offset() % 32, 0u);
}

TEST(GgufFileTest, HeaderRoundTripsByteForByte) {
  Builder b;
  const std::string bytes = b.Build();
  auto f = ParseString(bytes);
  ASSERT_TRUE(f.ok()) << f.status();
  const std::string again = SerializeHeader(f->kvs(), f->tensors());
  EXPECT_EQ(again, bytes.substr(0, again.size()));
}

TEST(GgufFileTest, WriterDropsTrailingUnitDims) {
  Builder b;
  b.tensors[1].ne = {32, 2, 1, 1};
  auto f = ParseString(b.Build());
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->tensors()[1].ne, (std::vector<int64_t>{32, 2}));
}

TEST(GgufFileTest, SetKvMovesKeyToTheEnd) {
  Builder b;
  SetKv(&b.kvs, GgufKv::Uint32("u8", 3));
  EXPECT_EQ(b.kvs.back().key, "u8");
  EXPECT_EQ(b.kvs.back().AsInt(), 3);
  EXPECT_EQ(
      std::count_if(b.kvs.begin(), b.kvs.end(), [](const GgufKv& kv) { return kv.key == "u8"; }),
      1);
}

TEST(GgufFileTest, RefusesBadMagic) {
  std::string s = Builder().Build();
  s[0] = 'X';
  EXPECT_THAT(ParseString(s).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "not a GGUF file"));
}

TEST(GgufFileTest, RefusesBadVersion) {
  std::string s = Builder().Build();
  const uint32_t v = 1;
  std::memcpy(&s[4], &v, 4);
  EXPECT_THAT(ParseString(s).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "unsupported GGUF version 1"));
}

TEST(GgufFileTest, RefusesTruncatedHeader) {
  std::string s = Builder().Build();
  EXPECT_THAT(ParseString(s.substr(0, 6)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "truncated"));
}

TEST(GgufFileTest, RefusesCountsBeyondFile) {
  std::string s = Builder().Build();
  const uint64_t huge = 1ull << 50;
  std::string kv_count = s;
  std::memcpy(&kv_count[16], &huge, 8);
  EXPECT_THAT(ParseString(kv_count).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "metadata count"));
  std::string t_count = s;
  std::memcpy(&t_count[8], &huge, 8);
  EXPECT_THAT(ParseString(t_count).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "tensor count"));
}

TEST(GgufFileTest, RefusesStringBeyondFile) {
  Builder b;
  std::string s = b.Build();
  // The first key's length field starts at byte 24.
  const uint64_t huge = 1ull << 40;
  std::memcpy(&s[24], &huge, 8);
  EXPECT_THAT(ParseString(s).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "runs past the end"));
}

TEST(GgufFileTest, RefusesArrayBeyondFile) {
  Builder b;
  b.kvs.resize(1);
  std::string r;
  Put<uint32_t>(&r, 4);
  Put<uint64_t>(&r, 1ull << 40);
  b.kvs.push_back(GgufKv{"big", GgufValueType::kArray, r});
  EXPECT_THAT(ParseString(b.Build()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "claims"));
}

TEST(GgufFileTest, RefusesUnknownValueType) {
  Builder b;
  b.kvs.push_back(GgufKv{"odd", static_cast<GgufValueType>(77), "x"});
  EXPECT_THAT(ParseString(b.Build()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown value type 77"));
}

TEST(GgufFileTest, RefusesUnknownTensorType) {
  Builder b;
  b.tensors[0].type = static_cast<GgmlType>(31);
  EXPECT_THAT(ParseString(b.Build()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown ggml type id 31"));
}

TEST(GgufFileTest, RefusesDimsWhoseProductOverflows) {
  Builder b;
  b.tensors[1].ne = {1ll << 40, 1ll << 40};
  b.tensors[1].nbytes = 0;
  EXPECT_THAT(ParseString(b.Build()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "overflow"));
}

TEST(GgufFileTest, RefusesTooManyDims) {
  Builder b;
  b.tensors[1].ne = {32, 1, 1, 1, 2};
  EXPECT_THAT(ParseString(b.Build()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "5 dimensions"));
}

TEST(GgufFileTest, RefusesTensorBeyondFile) {
  Builder b;
  std::string s = b.Build();
  EXPECT_THAT(ParseString(s.substr(0, s.size() - 64)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "beyond the"));
}

TEST(GgufFileTest, RefusesOverlappingTensors) {
  Builder b;
  b.Add("c.weight", {32});
  LayoutTensors(&b.tensors, 32);
  b.tensors[2].offset = 128 + 64;  // inside b.weight [128, 384)
  EXPECT_THAT(ParseString(b.Build(false)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "overlap"));
}

TEST(GgufFileTest, RefusesMisalignedOffset) {
  Builder b;
  LayoutTensors(&b.tensors, 32);
  b.tensors[1].offset = 130;
  EXPECT_THAT(ParseString(b.Build(false)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "not a multiple of the alignment"));
}

TEST(GgufFileTest, RefusesBadAlignment) {
  Builder b;
  b.kvs.push_back(GgufKv::Uint32("general.alignment", 24));
  EXPECT_THAT(ParseString(b.Build()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "power of two"));
}

TEST(GgufFileTest, RefusesDuplicateKeysAndTensors) {
  Builder b;
  b.kvs.push_back(b.kvs[0]);
  EXPECT_THAT(ParseString(b.Build()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "duplicate metadata key"));
  Builder c;
  c.Add("a.weight", {32});
  EXPECT_THAT(ParseString(c.Build()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "duplicate tensor name"));
}

TEST(GgufFileTest, RefusesRowNotMultipleOfBlock) {
  Builder b;
  b.tensors[1].type = GgmlType::kQ8_0;
  b.tensors[1].ne = {48, 2};
  b.tensors[1].nbytes = 0;
  EXPECT_THAT(ParseString(b.Build()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "block size"));
}

}  // namespace
}  // namespace quantd::core::gguf
