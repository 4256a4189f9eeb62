// RunGguf through the core interface: report, progress, cancellation,
// requantize refusal, thread-count independence, atomic output.
#include "quantd/core/gguf/gguf_run.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/base/mapped_file.h"
#include "quantd/core/gguf/gguf_file.h"
#include "quantd/core/gguf/gguf_file_source.h"
#include "quantd/testing/status_matchers.h"

namespace quantd::core {
namespace {

namespace fs = std::filesystem;

using ::quantd::testing::StatusIs;

const std::string kModel = std::string(QUANTD_TESTDATA) + "/gguf/tiny-llama-f32.gguf";

class GgufRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("gguf_run_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  static Recipe Q(const std::string& type) {
    Recipe r;
    r.format = ModelFormat::kGguf;
    r.gguf_type = type;
    return r;
  }
  std::vector<std::string> Files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    return out;
  }
  static std::string Read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  fs::path dir_;
};

// A NaN or infinity in an F32 weight: quantized types refuse the model with
// the tensor and element named and leave no output; float types carry the
// value over unchanged.
TEST_F(GgufRunTest, NonFiniteWeightIsRefusedByQuantizedTypes) {
  std::string bytes = Read(kModel);
  auto file = gguf::GgufFile::Parse({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
  ASSERT_TRUE(file.ok()) << file.status();
  const gguf::GgufTensorInfo* target = nullptr;
  for (const auto& t : file->tensors()) {
    if (t.name == "blk.0.attn_q.weight") target = &t;
  }
  ASSERT_NE(target, nullptr);
  ASSERT_EQ(target->type, gguf::GgmlType::kF32);
  const int64_t kElement = 1000;
  for (float bad :
       {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    std::memcpy(bytes.data() + file->data_offset() + target->offset + 4 * kElement, &bad, 4);
    {
      std::ofstream f(Path("in.gguf"), std::ios::binary);
      f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    for (const char* type : {"Q8_0", "Q4_K_M", "Q2_K"}) {
      auto report = RunGguf(Q(type), Path("in.gguf"), Path("out.gguf"), RunContext());
      EXPECT_THAT(report.status(),
                  StatusIs(absl::StatusCode::kInvalidArgument,
                           absl::StrCat("tensor 'blk.0.attn_q.weight' element ", kElement, " is ",
                                        std::isnan(bad) ? "NaN" : "Inf")))
          << type;
      EXPECT_THAT(Files(), ::testing::ElementsAre("in.gguf")) << type;  // nothing left behind
    }
    auto f16 = RunGguf(Q("F16"), Path("in.gguf"), Path("out.gguf"), RunContext());
    EXPECT_TRUE(f16.ok()) << f16.status();
    fs::remove(Path("out.gguf"));
  }
}

// The finite check rides on the quality sums (sum x^2 turns non-finite): a
// huge but finite weight overflows the float partial sums and must still be
// quantized, not refused.
TEST_F(GgufRunTest, HugeFiniteWeightIsNotRefused) {
  std::string bytes = Read(kModel);
  auto file = gguf::GgufFile::Parse({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
  ASSERT_TRUE(file.ok()) << file.status();
  const gguf::GgufTensorInfo* target = nullptr;
  for (const auto& t : file->tensors()) {
    if (t.name == "blk.0.attn_q.weight") target = &t;
  }
  ASSERT_NE(target, nullptr);
  const float huge = 3e38f;  // huge * huge overflows float
  std::memcpy(bytes.data() + file->data_offset() + target->offset + 4 * 1000, &huge, 4);
  {
    std::ofstream f(Path("in.gguf"), std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  for (const char* type : {"Q8_0", "Q4_0", "Q4_K_M"}) {
    auto report = RunGguf(Q(type), Path("in.gguf"), Path("out.gguf"), RunContext());
    EXPECT_TRUE(report.ok()) << type << " " << report.status();
    fs::remove(Path("out.gguf"));
  }
}

// report_level none: the same bytes, no quality figures, and NaN/Inf still
// refused (by its own scan, as no quality pass carries the check).
TEST_F(GgufRunTest, ReportLevelNoneKeepsBytesAndTheFiniteCheck) {
  Recipe none = Q("Q8_0");
  none.report_level = ReportLevel::kNone;
  auto with = RunGguf(Q("Q8_0"), kModel, Path("a.gguf"), RunContext());
  auto without = RunGguf(none, kModel, Path("b.gguf"), RunContext());
  ASSERT_TRUE(with.ok() && without.ok());
  EXPECT_EQ(Read(Path("a.gguf")), Read(Path("b.gguf")));
  ASSERT_EQ(without->tensors.size(), with->tensors.size());
  for (const auto& t : without->tensors) {
    EXPECT_FALSE(t.sqnr_db || t.rel_l2_error || t.max_abs_error) << t.name;
  }
  EXPECT_TRUE(with->tensors[0].sqnr_db.has_value());

  std::string bytes = Read(kModel);
  auto file = gguf::GgufFile::Parse({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
  ASSERT_TRUE(file.ok()) << file.status();
  for (const auto& t : file->tensors()) {
    if (t.name != "blk.0.attn_q.weight") continue;
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(bytes.data() + file->data_offset() + t.offset + 4 * 7, &nan, 4);
  }
  {
    std::ofstream f(Path("in.gguf"), std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  EXPECT_THAT(RunGguf(none, Path("in.gguf"), Path("c.gguf"), RunContext()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "tensor 'blk.0.attn_q.weight' element 7 is NaN"));
}

TEST_F(GgufRunTest, ReportsQualityPerTensorAndTotals) {
  auto report = RunGguf(Q("Q4_K_M"), kModel, Path("out.gguf"), RunContext());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->format, "gguf");
  EXPECT_EQ(report->precision, "Q4_K_M");
  EXPECT_EQ(report->tensors_total, 75u);
  EXPECT_EQ(report->tensors_converted, 58u);  // all but the 17 norms
  EXPECT_EQ(report->tensors.size(), 58u);
  EXPECT_EQ(report->output_file_bytes, fs::file_size(Path("out.gguf")));
  EXPECT_GT(report->bytes_before, 3 * report->bytes_after);
  for (const auto& t : report->tensors) {
    ASSERT_TRUE(t.sqnr_db.has_value()) << t.name;
    EXPECT_GT(*t.sqnr_db, 15.0) << t.name;
    EXPECT_LT(*t.rel_l2_error, 0.2) << t.name;
    EXPECT_NE(t.dtype_after, "F32") << t.name;
  }
  EXPECT_THAT(report->notes, ::testing::Contains(::testing::HasSubstr("SQNR")));
  auto mapped = MappedFile::Open(Path("out.gguf"));
  ASSERT_TRUE(mapped.ok());
  auto file = gguf::GgufFile::Parse((*mapped)->bytes());
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->FindKv("general.file_type")->AsInt(), 15);
  EXPECT_EQ(file->FindKv("general.quantization_version")->AsInt(), 2);
}

TEST_F(GgufRunTest, ProgressCountsEveryTensor) {
  std::vector<Progress> seen;
  RunContext ctx;
  ctx.progress = [&](const Progress& p) { seen.push_back(p); };
  auto report = RunGguf(Q("Q8_0"), kModel, Path("out.gguf"), ctx);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_FALSE(seen.empty());
  uint64_t last_bytes = 0, last_done = 0;
  for (const auto& p : seen) {
    if (p.phase != "convert") continue;
    EXPECT_GE(p.bytes_done, last_bytes);
    EXPECT_GE(p.tensors_done, last_done);
    EXPECT_EQ(p.tensors_total, 75u);
    last_bytes = p.bytes_done;
    last_done = p.tensors_done;
  }
  EXPECT_EQ(last_done, 75u);
  EXPECT_EQ(seen.back().bytes_done, seen.back().bytes_total);
  EXPECT_EQ(seen.back().bytes_total, fs::file_size(Path("out.gguf")));
}

TEST_F(GgufRunTest, CancelBetweenTensorsLeavesNoOutput) {
  ThreadPool pool(1);
  for (int threads : {1, 2}) {  // 2: output is written by a background thread
    CancelToken cancel;
    RunContext ctx;
    ctx.pool = &pool;
    ctx.parallelism = threads;
    ctx.cancel = &cancel;
    ctx.progress = [&](const Progress& p) {
      if (p.tensors_done == 5) cancel.Cancel();
    };
    auto report = RunGguf(Q("Q4_K_M"), kModel, Path("out.gguf"), ctx);
    EXPECT_THAT(report.status(), StatusIs(absl::StatusCode::kCancelled, "cancel")) << threads;
    EXPECT_THAT(Files(), ::testing::IsEmpty()) << threads;  // no output, no temp file
  }
}

TEST_F(GgufRunTest, MalformedInputLeavesNoOutput) {
  const std::string bytes = Read(kModel);
  {
    std::ofstream f(Path("truncated.gguf"), std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  auto report = RunGguf(Q("Q4_K_M"), Path("truncated.gguf"), Path("out.gguf"), RunContext());
  EXPECT_THAT(report.status(), StatusIs(absl::StatusCode::kInvalidArgument, "truncated"));
  EXPECT_FALSE(fs::exists(Path("out.gguf")));
}

TEST_F(GgufRunTest, RefusesQuantizedInputUnlessAllowed) {
  ASSERT_TRUE(RunGguf(Q("Q8_0"), kModel, Path("q8.gguf"), RunContext()).ok());
  auto refused = RunGguf(Q("Q4_K_M"), Path("q8.gguf"), Path("q4.gguf"), RunContext());
  EXPECT_THAT(refused.status(), StatusIs(absl::StatusCode::kInvalidArgument, "allow_requantize"));
  EXPECT_FALSE(fs::exists(Path("q4.gguf")));
  Recipe r = Q("Q4_K_M");
  r.allow_requantize = true;
  auto allowed = RunGguf(r, Path("q8.gguf"), Path("q4.gguf"), RunContext());
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  EXPECT_EQ(allowed->tensors.front().dtype_before, "Q8_0");
}

TEST_F(GgufRunTest, ThreadCountDoesNotChangeBytes) {
  ThreadPool pool(2);
  RunContext three;
  three.pool = &pool;
  three.parallelism = 3;
  for (const char* type : {"Q4_K_M", "Q3_K_S", "Q5_1"}) {
    ASSERT_TRUE(RunGguf(Q(type), kModel, Path("a.gguf"), RunContext()).ok());
    ASSERT_TRUE(RunGguf(Q(type), kModel, Path("b.gguf"), three).ok());
    EXPECT_EQ(Read(Path("a.gguf")), Read(Path("b.gguf"))) << type;
  }
}

// An element of a tensor set to a given value.
struct Poison {
  std::string tensor;
  int64_t element;
  float value;
};

struct ChunkyShape {
  int64_t embedding = 256;
  int64_t feed_forward = 512;
  int64_t vocab = 12288;
};

// Writes a llama-shaped F32 model whose token embedding has 48 chunks of
// work (256 x 12288 weights, the default shape), more than the output ring
// holds at any of the thread counts below (at most 8 slots per thread), so
// chunks are written while later ones are computed.
// Weights: a fixed pseudo-random pattern, with the `poison` elements set.
void WriteChunkyModel(const std::string& path, const std::vector<Poison>& poison = {},
                      const ChunkyShape& shape = {}) {
  const int64_t e = shape.embedding, ff = shape.feed_forward, vocab = shape.vocab;
  std::vector<gguf::GgufTensorInfo> tensors;
  auto add = [&](std::string name, std::vector<int64_t> ne) {
    gguf::GgufTensorInfo t;
    t.name = std::move(name);
    t.ne = std::move(ne);
    t.type = gguf::GgmlType::kF32;
    t.nbytes = static_cast<uint64_t>(t.Elements()) * 4;
    tensors.push_back(std::move(t));
  };
  add("token_embd.weight", {e, vocab});
  add("blk.0.attn_norm.weight", {e});
  add("blk.0.attn_q.weight", {e, e});
  add("blk.0.attn_k.weight", {e, e});
  add("blk.0.attn_v.weight", {e, e});
  add("blk.0.attn_output.weight", {e, e});
  add("blk.0.ffn_norm.weight", {e});
  add("blk.0.ffn_gate.weight", {e, ff});
  add("blk.0.ffn_up.weight", {e, ff});
  add("blk.0.ffn_down.weight", {ff, e});
  add("output_norm.weight", {e});
  const std::vector<gguf::GgufKv> kvs = {
      gguf::GgufKv::String("general.architecture", "llama"),
      gguf::GgufKv::Uint32("llama.embedding_length", static_cast<uint32_t>(e)),
      gguf::GgufKv::Uint32("llama.block_count", 1),
      gguf::GgufKv::Uint32("llama.feed_forward_length", static_cast<uint32_t>(ff)),
      gguf::GgufKv::Uint32("llama.attention.head_count", 4),
      gguf::GgufKv::Uint32("llama.attention.head_count_kv", 4),
  };
  auto start = gguf::StartGgufFile(path, kvs, &tensors, gguf::kGgufDefaultAlignment);
  ASSERT_TRUE(start.ok()) << start.status();
  uint32_t state = 12345;
  for (const auto& t : tensors) {
    std::vector<float> v(static_cast<size_t>(t.Elements()));
    for (float& x : v) {
      state = state * 1664525u + 1013904223u;
      x = (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 0.1f;
    }
    for (const Poison& p : poison) {
      if (p.tensor == t.name) v[static_cast<size_t>(p.element)] = p.value;
    }
    ASSERT_TRUE(start->writer->Write(v.data(), v.size() * 4).ok());
    ASSERT_TRUE(start->writer->PadTo(gguf::kGgufDefaultAlignment).ok());
  }
  ASSERT_EQ(start->writer->offset(), start->total_bytes);
  ASSERT_TRUE(start->writer->Commit().ok());
}

// The chunks of a tensor are computed in any order and written in order,
// by whichever thread completes the written prefix: the bytes are those of
// a single-threaded run at every thread count.
TEST_F(GgufRunTest, ChunksAreWrittenInOrderAtEveryThreadCount) {
  WriteChunkyModel(Path("in.gguf"));
  ThreadPool pool(3);
  for (const char* type : {"Q8_0", "Q4_K_M", "F16"}) {
    auto one = RunGguf(Q(type), Path("in.gguf"), Path("one.gguf"), RunContext());
    ASSERT_TRUE(one.ok()) << one.status();
    const std::string expected = Read(Path("one.gguf"));
    ASSERT_EQ(expected.size(), one->output_file_bytes);
    for (int threads : {2, 3, 4}) {
      RunContext ctx;
      ctx.pool = &pool;
      ctx.parallelism = threads;
      auto many = RunGguf(Q(type), Path("in.gguf"), Path("many.gguf"), ctx);
      ASSERT_TRUE(many.ok()) << many.status();
      EXPECT_EQ(Read(Path("many.gguf")), expected) << type << " at " << threads << " threads";
      ASSERT_EQ(many->tensors.size(), one->tensors.size());
      for (size_t i = 0; i < many->tensors.size(); ++i) {
        EXPECT_EQ(many->tensors[i].sqnr_db, one->tensors[i].sqnr_db) << many->tensors[i].name;
      }
    }
  }
}

// A non-finite weight in a late chunk and one in an early chunk of the same
// tensor: whatever the thread count (and however far the writer got), the
// error names the first one and no output is left.
TEST_F(GgufRunTest, FirstNonFiniteWeightIsNamedAtEveryThreadCount) {
  const int64_t kEarly = 3 * 65536 + 17, kLate = 14 * 65536 + 5;
  WriteChunkyModel(Path("in.gguf"),
                   {{"token_embd.weight", kLate, std::numeric_limits<float>::quiet_NaN()},
                    {"token_embd.weight", kEarly, std::numeric_limits<float>::infinity()}});
  ThreadPool pool(3);
  // Q8_0, pure Q4_0 and Q4_0's mix (which makes the tied embedding Q6_K)
  // check in their one-pass kernels, with and without the quality sums;
  // pure Q4_K_M (the embedding Q4_K) scans each chunk before quantizing it.
  for (const auto& [type, pure] : std::vector<std::pair<const char*, bool>>{
           {"Q8_0", false}, {"Q4_0", true}, {"Q4_0", false}, {"Q4_K_M", true}}) {
    for (ReportLevel level : {ReportLevel::kSummary, ReportLevel::kNone}) {
      Recipe recipe = Q(type);
      recipe.pure = pure;
      recipe.report_level = level;
      for (int threads : {1, 2, 4}) {
        RunContext ctx;
        ctx.pool = &pool;
        ctx.parallelism = threads;
        EXPECT_THAT(
            RunGguf(recipe, Path("in.gguf"), Path("out.gguf"), ctx).status(),
            StatusIs(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("tensor 'token_embd.weight' element ", kEarly, " is Inf")))
            << type << " at " << threads;
        EXPECT_THAT(Files(), ::testing::ElementsAre("in.gguf")) << type << " at " << threads;
      }
    }
  }
}

// A GgufFileSource whose reads of one chunk (its Prefetch, at the chunk's
// start) wait until another tensor has been read, then 100 ms more: the
// later tensor's chunks are computed (and fail) first.
class HeldChunkSource final : public gguf::TensorSource {
 public:
  HeldChunkSource(std::unique_ptr<gguf::GgufFileSource> source, const std::string& held,
                  uint64_t held_offset, const std::string& first)
      : source_(std::move(source)),
        held_(IndexOf(held)),
        held_offset_(held_offset),
        first_(IndexOf(first)) {}
  const std::vector<gguf::GgufKv>& kvs() const override { return source_->kvs(); }
  const std::vector<gguf::GgufTensorInfo>& tensors() const override { return source_->tensors(); }
  uint64_t alignment() const override { return source_->alignment(); }
  absl::Span<const uint8_t> StoredBytes(size_t index) const override {
    return source_->StoredBytes(index);
  }
  void ReadRows(size_t index, int64_t first_row, int64_t num_rows, float* dst) const override {
    source_->ReadRows(index, first_row, num_rows, dst);
  }
  void Prefetch(size_t index, uint64_t offset, uint64_t length) const override {
    if (index == first_) {
      absl::MutexLock lock(&mu_);
      first_read_ = true;
    } else if (index == held_ && offset <= held_offset_ && held_offset_ < offset + length) {
      {
        absl::MutexLock lock(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(&first_read_), absl::Seconds(5));
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    source_->Prefetch(index, offset, length);
  }
  void Release(size_t index) const override { source_->Release(index); }
  std::string SourceDtype(size_t index) const override { return source_->SourceDtype(index); }
  uint64_t SourceBytes(size_t index) const override { return source_->SourceBytes(index); }

 private:
  size_t IndexOf(const std::string& name) const {
    for (size_t i = 0; i < source_->tensors().size(); ++i) {
      if (source_->tensors()[i].name == name) return i;
    }
    ADD_FAILURE() << "no tensor " << name;
    return 0;
  }

  std::unique_ptr<gguf::GgufFileSource> source_;
  const size_t held_;
  const uint64_t held_offset_;
  const size_t first_;
  mutable absl::Mutex mu_;
  mutable bool first_read_ ABSL_GUARDED_BY(mu_) = false;
};

// Non-finite weights in three tensors: the first tensor's in its last
// chunk, the later ones' in their first chunk. One loop computes the chunks
// of all tensors in any order, and at 2 and 4 threads the first tensor's
// failing chunk is held until a later tensor has failed and stopped the
// writer; whatever the thread count, the error names the first tensor's
// element and no output is left.
TEST_F(GgufRunTest, FirstFailingTensorIsNamedAtEveryThreadCount) {
  const int64_t kLast = 47 * 65536 + 3;
  WriteChunkyModel(Path("in.gguf"),
                   {{"token_embd.weight", kLast, std::numeric_limits<float>::quiet_NaN()},
                    {"blk.0.attn_q.weight", 0, std::numeric_limits<float>::infinity()},
                    {"blk.0.ffn_down.weight", 5, std::numeric_limits<float>::infinity()}});
  ThreadPool pool(3);
  for (const char* type : {"Q8_0", "Q4_K_M"}) {
    for (int threads : {1, 2, 4}) {
      auto file = gguf::GgufFileSource::Open(Path("in.gguf"));
      ASSERT_TRUE(file.ok()) << file.status();
      // At 1 thread the chunks run in order: nothing to hold.
      HeldChunkSource source(*std::move(file), "token_embd.weight",
                             threads > 1 ? uint64_t{kLast} * 4 : ~uint64_t{0},
                             "blk.0.attn_q.weight");
      RunContext ctx;
      ctx.pool = &pool;
      ctx.parallelism = threads;
      EXPECT_THAT(RunGguf(Q(type), source, Path("out.gguf"), ctx).status(),
                  StatusIs(absl::StatusCode::kInvalidArgument,
                           absl::StrCat("tensor 'token_embd.weight' element ", kLast, " is NaN")))
          << type << " at " << threads;
      EXPECT_THAT(Files(), ::testing::ElementsAre("in.gguf")) << type << " at " << threads;
    }
  }
}

// One loop runs over the chunks of all of a part's tensors: here tensors of
// different row widths (256 and 768: chunks of 256 and 85 rows, of
// different byte sizes, each tensor's last one partial), of output types
// with different block sizes in one mix, and float tensors kept as is
// between converted ones. The bytes, the quality figures and the progress
// reports (from the calling thread, one per tensor in order, with the bytes
// written) are those of a single-threaded run at every thread count.
TEST_F(GgufRunTest, PartLoopSpansTensorsOfDifferentWidthsAtEveryThreadCount) {
  WriteChunkyModel(Path("in.gguf"), {}, {.embedding = 256, .feed_forward = 768, .vocab = 1000});
  ThreadPool pool(2);
  for (const char* type : {"Q4_K_M", "Q8_0", "F16"}) {
    std::string expected;
    std::vector<TensorReport> expected_tensors;
    std::vector<std::pair<uint64_t, uint64_t>> expected_progress;
    for (int threads : {1, 2, 3}) {
      const std::thread::id caller = std::this_thread::get_id();
      std::vector<std::pair<uint64_t, uint64_t>> progress;  // (tensors, bytes) done
      bool reported_elsewhere = false;
      RunContext ctx;
      ctx.pool = &pool;
      ctx.parallelism = threads;
      ctx.progress = [&](const Progress& p) {
        if (std::this_thread::get_id() != caller) reported_elsewhere = true;
        if (p.phase == "convert") progress.emplace_back(p.tensors_done, p.bytes_done);
      };
      auto report = RunGguf(Q(type), Path("in.gguf"), Path("out.gguf"), ctx);
      ASSERT_TRUE(report.ok()) << report.status();
      EXPECT_FALSE(reported_elsewhere) << type << " at " << threads;
      if (threads == 1) {
        expected = Read(Path("out.gguf"));
        expected_tensors = report->tensors;
        expected_progress = progress;
        // The start, then one report per tensor (11), the last one at the
        // end of the file.
        ASSERT_EQ(progress.size(), 12u) << type;
        for (size_t i = 0; i < progress.size(); ++i) {
          EXPECT_EQ(progress[i].first, i) << type;
          if (i > 0) {
            EXPECT_GT(progress[i].second, progress[i - 1].second) << type;
          }
        }
        EXPECT_EQ(progress.back().second, expected.size()) << type;
        continue;
      }
      EXPECT_EQ(Read(Path("out.gguf")), expected) << type << " at " << threads;
      EXPECT_EQ(progress, expected_progress) << type << " at " << threads;
      ASSERT_EQ(report->tensors.size(), expected_tensors.size()) << type;
      for (size_t i = 0; i < expected_tensors.size(); ++i) {
        EXPECT_EQ(report->tensors[i].sqnr_db, expected_tensors[i].sqnr_db)
            << type << " " << expected_tensors[i].name;
        EXPECT_EQ(report->tensors[i].max_abs_error, expected_tensors[i].max_abs_error)
            << type << " " << expected_tensors[i].name;
      }
    }
  }
}

// A GgufFileSource that records, per tensor, how often it was released and
// whether it was read (Prefetch, from the chunk's thread) after that.
class ReleaseRecordingSource final : public gguf::TensorSource {
 public:
  explicit ReleaseRecordingSource(std::unique_ptr<gguf::GgufFileSource> source)
      : source_(std::move(source)), released_(source_->tensors().size()) {}
  const std::vector<gguf::GgufKv>& kvs() const override { return source_->kvs(); }
  const std::vector<gguf::GgufTensorInfo>& tensors() const override { return source_->tensors(); }
  uint64_t alignment() const override { return source_->alignment(); }
  absl::Span<const uint8_t> StoredBytes(size_t index) const override {
    Touch(index);
    return source_->StoredBytes(index);
  }
  void ReadRows(size_t index, int64_t first_row, int64_t num_rows, float* dst) const override {
    Touch(index);
    source_->ReadRows(index, first_row, num_rows, dst);
  }
  void Prefetch(size_t index, uint64_t offset, uint64_t length) const override {
    Touch(index);
    source_->Prefetch(index, offset, length);
  }
  void Release(size_t index) const override {
    absl::MutexLock lock(&mu_);
    ++released_[index];
    source_->Release(index);
  }
  std::string SourceDtype(size_t index) const override { return source_->SourceDtype(index); }
  uint64_t SourceBytes(size_t index) const override { return source_->SourceBytes(index); }

  std::vector<int> released() const {
    absl::MutexLock lock(&mu_);
    return released_;
  }
  bool read_after_release() const { return read_after_release_; }

 private:
  void Touch(size_t index) const {
    absl::MutexLock lock(&mu_);
    if (released_[index] > 0) read_after_release_ = true;
  }

  std::unique_ptr<gguf::GgufFileSource> source_;
  mutable absl::Mutex mu_;
  mutable std::vector<int> released_;
  mutable bool read_after_release_ = false;
};

// A converted tensor's input pages are released by the thread that
// computes its last chunk, while the other threads go on with the next
// tensors; a tensor kept as is, once written. Every tensor is released
// exactly once, never before its last chunk was read, at every thread
// count, and the bytes stay those of a single-threaded run.
TEST_F(GgufRunTest, InputPagesAreReleasedOnceAfterTheirTensorIsDone) {
  WriteChunkyModel(Path("in.gguf"));
  ThreadPool pool(2);
  for (const char* type : {"Q8_0", "Q4_K_M"}) {
    std::string expected;
    for (int threads : {1, 2, 3}) {
      auto file = gguf::GgufFileSource::Open(Path("in.gguf"));
      ASSERT_TRUE(file.ok()) << file.status();
      ReleaseRecordingSource source(*std::move(file));
      RunContext ctx;
      ctx.pool = &pool;
      ctx.parallelism = threads;
      auto report = RunGguf(Q(type), source, Path("out.gguf"), ctx);
      ASSERT_TRUE(report.ok()) << report.status();
      EXPECT_THAT(source.released(), ::testing::Each(1)) << type << " at " << threads;
      EXPECT_FALSE(source.read_after_release()) << type << " at " << threads;
      if (threads == 1) expected = Read(Path("out.gguf"));
      EXPECT_EQ(Read(Path("out.gguf")), expected) << type << " at " << threads;
    }
  }
}

TEST_F(GgufRunTest, FloatTargetsConvertWeightMatrices) {
  auto report = RunGguf(Q("F16"), kModel, Path("f16.gguf"), RunContext());
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->tensors.front().dtype_after, "F16");
  EXPECT_EQ(Read(Path("f16.gguf")).size(), report->output_file_bytes);
}

TEST_F(GgufRunTest, RejectsUnknownTypes) {
  EXPECT_THAT(RunGguf(Q("Q9_K"), kModel, Path("o.gguf"), RunContext()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown GGUF type"));
  Recipe r = Q("Q4_K_M");
  r.output_tensor_type = "q7_0";
  EXPECT_THAT(RunGguf(r, kModel, Path("o.gguf"), RunContext()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "output_tensor_type 'q7_0'"));
}

}  // namespace
}  // namespace quantd::core
