// Importance matrices: both file formats, the name filters, the weighted
// quantizers' contract, and RunGguf's refusals (missing matrix, size
// mismatch). Byte identity with llama-quantize is e2e.gguf.imatrix_*.
#include "quantd/core/gguf/imatrix.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/gguf/gguf_file.h"
#include "quantd/core/gguf/gguf_run.h"
#include "quantd/core/gguf/quants.h"

namespace quantd::core::gguf {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

// The status has `code` and a message matching `m`.
MATCHER_P2(StatusWith, code, m, "") {
  return arg.code() == code && ::testing::Matches(m)(std::string(arg.message()));
}

template <class T>
void Put(std::string* s, T v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof(v));
}

struct Entry {
  std::string name;
  int32_t ncall;
  std::vector<float> sums;
};

// A legacy .dat as llama-imatrix writes it.
std::string LegacyDat(const std::vector<Entry>& entries, int32_t chunks,
                      const std::string& dataset) {
  std::string s;
  Put<int32_t>(&s, static_cast<int32_t>(entries.size()));
  for (const Entry& e : entries) {
    Put<int32_t>(&s, static_cast<int32_t>(e.name.size()));
    s += e.name;
    Put<int32_t>(&s, e.ncall);
    Put<int32_t>(&s, static_cast<int32_t>(e.sums.size()));
    for (float v : e.sums) Put<float>(&s, v);
  }
  if (chunks >= 0) {
    Put<int32_t>(&s, chunks);
    Put<int32_t>(&s, static_cast<int32_t>(dataset.size()));
    s += dataset;
  }
  return s;
}

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(ImatrixTest, LegacyDatDividesSumsByCalls) {
  const std::string dat = LegacyDat(
      {{"blk.0.ffn_down.weight", 4, {8.0f, 2.0f, 0.0f}}, {"blk.0.attn_q.weight", 0, {3.0f}}}, 20,
      "calib.txt");
  auto m = ParseImportanceMatrix(Bytes(dat), "x.dat");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->chunks, 20);
  EXPECT_EQ(m->dataset, "calib.txt");
  ASSERT_EQ(m->entries.size(), 2u);
  EXPECT_EQ(m->entries["blk.0.ffn_down.weight"], (std::vector<float>{2.0f, 0.5f, 0.0f}));
  EXPECT_EQ(m->entries["blk.0.attn_q.weight"], (std::vector<float>{3.0f}));  // ncall 0: as is
  // Older files end after the entries.
  auto old = ParseImportanceMatrix(Bytes(LegacyDat({{"a", 1, {1.0f}}}, -1, "")), "old.dat");
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->chunks, 0);
  EXPECT_EQ(old->dataset, "");
}

TEST(ImatrixTest, MalformedFilesAreRefusedNamingTheProblem) {
  const std::string dat = LegacyDat({{"blk.0.ffn_down.weight", 4, {8.0f, 2.0f}}}, 20, "c");
  EXPECT_THAT(ParseImportanceMatrix(Bytes(dat.substr(0, 30)), "x.dat").status(),
              StatusWith(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("x.dat"), HasSubstr("runs past the end"))));
  EXPECT_THAT(ParseImportanceMatrix(Bytes(LegacyDat({}, -1, "")), "e.dat").status(),
              StatusWith(absl::StatusCode::kInvalidArgument, HasSubstr("no entries")));
  EXPECT_THAT(ParseImportanceMatrix(Bytes(LegacyDat({{"w", 1, {std::nanf("")}}}, -1, "")), "n.dat")
                  .status(),
              StatusWith(absl::StatusCode::kInvalidArgument, HasSubstr("non-finite")));
  EXPECT_THAT(ParseImportanceMatrix(Bytes(LegacyDat({{"w", 1, {}}}, -1, "")), "z.dat").status(),
              StatusWith(absl::StatusCode::kInvalidArgument, HasSubstr("0 values")));
}

// The GGUF layout newer llama-imatrix writes: in_sum2 and counts per weight.
std::string GgufImatrix(bool with_keys, bool with_counts) {
  std::vector<GgufKv> kvs;
  if (with_keys) {
    kvs.push_back(GgufKv::StringArray("imatrix.datasets", std::vector<std::string>{"wiki.txt"}));
    kvs.push_back(GgufKv::Uint32("imatrix.chunk_count", 7));
    kvs.push_back(GgufKv::Uint32("imatrix.chunk_size", 512));
  }
  // Two matrices (experts) of 4 columns; the second saw no tokens.
  const std::vector<float> sums = {2, 4, 6, 8, 1, 1, 1, 1};
  const std::vector<float> counts = {2, 0};
  std::vector<GgufTensorInfo> infos;
  infos.push_back({"blk.0.ffn_up_exps.weight.in_sum2", {4, 2}, GgmlType::kF32, 0, 32});
  if (with_counts)
    infos.push_back({"blk.0.ffn_up_exps.weight.counts", {1, 2}, GgmlType::kF32, 0, 8});
  const uint64_t data_size = LayoutTensors(&infos, 32);
  std::string s = SerializeHeader(kvs, infos);
  s.resize(AlignUp(s.size(), 32), '\0');
  std::string data(data_size, '\0');
  std::memcpy(data.data() + infos[0].offset, sums.data(), 32);
  if (with_counts) std::memcpy(data.data() + infos[1].offset, counts.data(), 8);
  return s + data;
}

TEST(ImatrixTest, GgufFormatDividesSumsByCountsPerMatrix) {
  auto m = ParseImportanceMatrix(Bytes(GgufImatrix(true, true)), "m.gguf");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->chunks, 7);
  EXPECT_EQ(m->dataset, "wiki.txt");
  ASSERT_EQ(m->entries.count("blk.0.ffn_up_exps.weight"), 1u);
  EXPECT_EQ(m->entries["blk.0.ffn_up_exps.weight"],
            (std::vector<float>{1, 2, 3, 4, 1, 1, 1, 1}));  // count 0: importance 1
}

TEST(ImatrixTest, GgufWithoutKeysOrCountsIsRefused) {
  EXPECT_THAT(ParseImportanceMatrix(Bytes(GgufImatrix(false, true)), "model.gguf").status(),
              StatusWith(absl::StatusCode::kInvalidArgument, HasSubstr("imatrix.datasets")));
  EXPECT_THAT(ParseImportanceMatrix(Bytes(GgufImatrix(true, false)), "m.gguf").status(),
              StatusWith(absl::StatusCode::kInvalidArgument, HasSubstr("no counts")));
}

TEST(ImatrixTest, IncludeAndExcludeFilterByNameSubstring) {
  ImportanceMatrix m;
  for (const char* n : {"blk.0.attn_q.weight", "blk.0.ffn_down.weight", "blk.1.ffn_down.weight"})
    m.entries[n] = {1.0f};
  ImportanceMatrix ex = m;
  ASSERT_TRUE(FilterImportanceMatrix({}, {"ffn_down"}, &ex).ok());
  EXPECT_EQ(ex.entries.size(), 1u);
  EXPECT_EQ(ex.entries.count("blk.0.attn_q.weight"), 1u);
  ImportanceMatrix in = m;
  ASSERT_TRUE(FilterImportanceMatrix({"blk.1.", "attn_q"}, {}, &in).ok());
  EXPECT_EQ(in.entries.size(), 2u);
  EXPECT_EQ(in.entries.count("blk.0.ffn_down.weight"), 0u);
  EXPECT_THAT(FilterImportanceMatrix({"a"}, {"b"}, &m),
              StatusWith(absl::StatusCode::kInvalidArgument, HasSubstr("together")));
}

std::vector<float> Gaussian(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = nd(rng);
  return x;
}

// Without weights QuantizeRows is QuantizeRow; IQ4_NL's weighted search with
// no weights is its reference (llama.cpp runs the same search either way).
TEST(WeightedQuantizersTest, NoWeightsMeansThePlainKernels) {
  const std::vector<float> x = Gaussian(4 * 512, 3);
  for (const GgmlKernels& k : AllGgmlKernels()) {
    if (TypeInfo(k.type).block_size > 512 || 512 % TypeInfo(k.type).block_size != 0) continue;
    std::vector<uint8_t> a(RowBytes(k.type, 2048)), b(a.size(), 0xAA);
    QuantizeRow(k.type, x.data(), a.data(), 2048);
    QuantizeRows(k.type, x.data(), b.data(), 4, 512, nullptr);
    EXPECT_EQ(a, b) << TypeName(k.type);
  }
  std::vector<uint8_t> ref(RowBytes(GgmlType::kIQ4_NL, 2048)), w(ref.size());
  QuantizeIQ4_NL_ref(x.data(), reinterpret_cast<BlockIQ4_NL*>(ref.data()), 2048);
  QuantizeIQ4_NL_weighted(x.data(), reinterpret_cast<BlockIQ4_NL*>(w.data()), 2048, nullptr);
  EXPECT_EQ(ref, w);
}

// With skewed importance every weighted quantizer lowers the weighted error
// against its unweighted result (what the weights are for), and the scalar
// and dispatched paths agree.
TEST(WeightedQuantizersTest, ImportanceLowersTheWeightedError) {
  constexpr int kCols = 512, kRows = 8;
  const std::vector<float> x = Gaussian(kCols * kRows, 5);
  std::vector<float> qw(kCols);
  for (int j = 0; j < kCols; ++j) qw[j] = j % 16 == 3 ? 50.0f : 0.05f;
  int checked = 0;
  for (const GgmlKernels& k : AllGgmlKernels()) {
    if (k.quantize_weighted == nullptr) continue;
    ++checked;
    const int64_t bytes = RowBytes(k.type, kCols) * kRows;
    std::vector<uint8_t> plain(bytes), weighted(bytes), weighted_ref(bytes);
    QuantizeRows(k.type, x.data(), plain.data(), kRows, kCols, nullptr);
    QuantizeRows(k.type, x.data(), weighted.data(), kRows, kCols, qw.data());
    QuantizeRows_ref(k.type, x.data(), weighted_ref.data(), kRows, kCols, qw.data());
    EXPECT_EQ(weighted, weighted_ref) << TypeName(k.type);
    std::vector<float> a(x.size()), b(x.size());
    DequantizeRow(k.type, plain.data(), a.data(), static_cast<int64_t>(x.size()));
    DequantizeRow(k.type, weighted.data(), b.data(), static_cast<int64_t>(x.size()));
    double ea = 0, eb = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      const double w = qw[i % kCols];
      ea += w * (x[i] - a[i]) * (x[i] - a[i]);
      eb += w * (x[i] - b[i]) * (x[i] - b[i]);
    }
    EXPECT_LT(eb, ea) << TypeName(k.type);
    EXPECT_TRUE(UsesImportance(k.type));
  }
  EXPECT_GE(checked, 11);  // Q4_0..Q5_1, Q2_K..Q6_K, IQ4_NL, IQ4_XS
  EXPECT_FALSE(UsesImportance(GgmlType::kQ8_0));
  EXPECT_FALSE(UsesImportance(GgmlType::kTQ2_0));
}

// The vector weighted kernels write the references' bytes on rows with the
// branches' cases (all-zero and constant sub-blocks, tiny values, outliers,
// zero importance for some columns) and odd super-block counts.
TEST(WeightedQuantizersTest, VariantsWriteTheReferenceBytesOnEdgeCases) {
  constexpr int kCols = 768;  // 3 super-blocks: a pass with an unpaired one
  std::vector<float> x = Gaussian(kCols * 6, 9);
  for (int j = 0; j < kCols; ++j) {
    x[j] = j < 300 ? 0.0f : x[j];                               // zeros
    x[kCols + j] = 0.125f;                                      // constant
    x[2 * kCols + j] = 1e-18f * static_cast<float>(j % 7 - 3);  // tiny
    if (j % 41 == 0) x[3 * kCols + j] = 5.0f;                   // outliers
    x[4 * kCols + j] = std::fabs(x[4 * kCols + j]);             // positive only
  }
  std::vector<float> qw(kCols);
  for (int j = 0; j < kCols; ++j) qw[j] = j % 5 == 0 ? 0.0f : 0.5f + static_cast<float>(j % 13);
  for (const GgmlKernels& k : AllGgmlKernels()) {
    if (k.quantize_weighted == nullptr || kCols % TypeInfo(k.type).block_size != 0) continue;
    const int64_t bytes = RowBytes(k.type, kCols) * 6;
    std::vector<uint8_t> ref(bytes), fast(bytes, 0xAA);
    QuantizeRows_ref(k.type, x.data(), ref.data(), 6, kCols, qw.data());
    QuantizeRows(k.type, x.data(), fast.data(), 6, kCols, qw.data());
    EXPECT_EQ(ref, fast) << TypeName(k.type);
  }
}

TEST(TernaryTest, ExactTernaryValuesRoundTrip) {
  std::vector<float> x(512);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = 0.5f * static_cast<float>(static_cast<int>(i * 7 % 3) - 1);
  for (GgmlType t : {GgmlType::kTQ1_0, GgmlType::kTQ2_0}) {
    std::vector<uint8_t> q(RowBytes(t, 512));
    std::vector<float> back(512);
    QuantizeRow(t, x.data(), q.data(), 512);
    DequantizeRow(t, q.data(), back.data(), 512);
    EXPECT_EQ(back, x) << TypeName(t);
  }
}

class ImatrixRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("imatrix_run_test_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  static Recipe Q(const std::string& type) {
    Recipe r;
    r.format = ModelFormat::kGguf;
    r.gguf_type = type;
    return r;
  }
  const std::string model_ = std::string(QUANTD_TESTDATA) + "/gguf/tiny-llama-f32.gguf";
  fs::path dir_;
};

TEST_F(ImatrixRunTest, VeryLowBitTypesNeedAMatrix) {
  for (const char* type : {"IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ1_S", "IQ1_M", "Q2_K_S"}) {
    EXPECT_THAT(RunGguf(Q(type), model_, (dir_ / "out.gguf").string(), RunContext()).status(),
                StatusWith(absl::StatusCode::kInvalidArgument,
                           AllOf(HasSubstr(type), HasSubstr("needs an importance matrix"))))
        << type;
  }
  EXPECT_FALSE(fs::exists(dir_ / "out.gguf"));
}

TEST_F(ImatrixRunTest, SizeMismatchIsRefusedNamingEntryAndTensor) {
  Recipe r = Q("Q4_K_M");
  r.imatrix =
      Write("bad.dat",
            LegacyDat({{"blk.0.attn_q.weight", 1, std::vector<float>(100, 1.0f)}}, 1, "c.txt"));
  EXPECT_THAT(RunGguf(r, model_, (dir_ / "out.gguf").string(), RunContext()).status(),
              StatusWith(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("entry 'blk.0.attn_q.weight' has 100 values"),
                               HasSubstr("needs 256"))));
  // Excluding that entry leaves no matrix: the run is the plain one.
  r.imatrix_exclude = {"attn_q"};
  auto plain = RunGguf(Q("Q4_K_M"), model_, (dir_ / "plain.gguf").string(), RunContext());
  auto filtered = RunGguf(r, model_, (dir_ / "filtered.gguf").string(), RunContext());
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(filtered.ok()) << filtered.status();
  std::ifstream a(dir_ / "plain.gguf", std::ios::binary),
      b(dir_ / "filtered.gguf", std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(a), {}),
            std::string(std::istreambuf_iterator<char>(b), {}));
}

TEST_F(ImatrixRunTest, MatrixChangesOnlyTheTensorsItCovers) {
  Recipe r = Q("Q4_K_M");
  std::vector<float> skew(256);
  for (int j = 0; j < 256; ++j) skew[j] = j % 8 == 0 ? 10.0f : 0.1f;
  r.imatrix = Write("m.dat", LegacyDat({{"blk.0.attn_q.weight", 1, skew}}, 3, "calib.txt"));
  ASSERT_TRUE(RunGguf(r, model_, (dir_ / "w.gguf").string(), RunContext()).ok());
  ASSERT_TRUE(RunGguf(Q("Q4_K_M"), model_, (dir_ / "p.gguf").string(), RunContext()).ok());
  std::ifstream fw(dir_ / "w.gguf", std::ios::binary), fp(dir_ / "p.gguf", std::ios::binary);
  const std::string w(std::istreambuf_iterator<char>(fw), {}),
      p(std::istreambuf_iterator<char>(fp), {});
  auto gw = GgufFile::Parse(Bytes(w));
  auto gp = GgufFile::Parse(Bytes(p));
  ASSERT_TRUE(gw.ok() && gp.ok());
  ASSERT_NE(gw->FindKv("quantize.imatrix.file"), nullptr);
  EXPECT_EQ(gw->FindKv("quantize.imatrix.file")->AsString(), "m.dat");
  EXPECT_EQ(gw->FindKv("quantize.imatrix.dataset")->AsString(), "calib.txt");
  EXPECT_EQ(gw->FindKv("quantize.imatrix.entries_count")->AsInt(), 1);
  EXPECT_EQ(gw->FindKv("quantize.imatrix.chunks_count")->AsInt(), 3);
  int differ = 0;
  for (const GgufTensorInfo& t : gp->tensors()) {
    const GgufTensorInfo* u = gw->FindTensor(t.name);
    ASSERT_NE(u, nullptr);
    const bool same = std::memcmp(p.data() + gp->data_offset() + t.offset,
                                  w.data() + gw->data_offset() + u->offset, t.nbytes) == 0;
    if (!same) {
      ++differ;
      EXPECT_EQ(t.name, "blk.0.attn_q.weight");
    }
  }
  EXPECT_EQ(differ, 1);
}

}  // namespace
}  // namespace quantd::core::gguf
