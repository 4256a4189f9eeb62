#include "quantd/core/onnx/onnx_model.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/base/half.h"
#include "quantd/core/onnx/onnx_types.h"
#include "quantd/testing/status_matchers.h"
#include "test_models.h"

namespace quantd::core {
namespace {

namespace fs = std::filesystem;
using ::quantd::testing::AddNode;
using ::quantd::testing::FloatTensor;
using ::quantd::testing::MakeTempDir;
using ::quantd::testing::RawTensor;
using ::quantd::testing::SmallMlp;
using ::quantd::testing::WriteModel;
using ::testing::HasSubstr;

using ::quantd::testing::StatusIs;

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string FloatBytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

// A model whose "W" [4,3] float initializer lives in external data.
class ExternalDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("quantd-ext");
    model_ = SmallMlp();
    auto* w = model_.mutable_graph()->mutable_initializer(0);
    ASSERT_EQ(w->name(), "W");
    WriteBytes(dir_ + "/weights.bin",
               std::string(64, '\0') + FloatBytes(quantd::testing::RandomFloats(12, 3)));
    SetRef(w, "weights.bin", "64", "48");
  }
  void TearDown() override { fs::remove_all(dir_); }

  static void SetRef(onnx::TensorProto* t, const std::string& location, const std::string& offset,
                     const std::string& length) {
    t->clear_raw_data();
    t->clear_external_data();
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto add = [t](const char* k, const std::string& v) {
      if (v.empty()) return;
      auto* kv = t->add_external_data();
      kv->set_key(k);
      kv->set_value(v);
    };
    add("location", location);
    add("offset", offset);
    add("length", length);
  }
  onnx::TensorProto* W() { return model_.mutable_graph()->mutable_initializer(0); }
  absl::Status LoadStatus() {
    WriteModel(model_, dir_ + "/model.onnx");
    return OnnxModel::Load(dir_ + "/model.onnx").status();
  }

  std::string dir_;
  onnx::ModelProto model_;
};

TEST_F(ExternalDataTest, LoadsAndReadsThroughTheMapping) {
  WriteModel(model_, dir_ + "/model.onnx");
  auto model = OnnxModel::Load(dir_ + "/model.onnx");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_TRUE((*model)->had_external_data());
  auto sites = (*model)->Tensors();
  auto data = (*model)->Read(*sites[0].tensor);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->size(), 48u);
  EXPECT_EQ(data->as<float>()[0], quantd::testing::RandomFloats(12, 3)[0]);
}

TEST_F(ExternalDataTest, RefusesAbsoluteLocation) {
  SetRef(W(), dir_ + "/weights.bin", "64", "48");
  EXPECT_THAT(LoadStatus(), StatusIs(absl::StatusCode::kInvalidArgument, "is absolute"));
  EXPECT_THAT(std::string(LoadStatus().message()), HasSubstr("initializer 'W'"));
}

TEST_F(ExternalDataTest, RefusesDotDotEscape) {
  SetRef(W(), "../weights.bin", "64", "48");
  EXPECT_THAT(LoadStatus(),
              StatusIs(absl::StatusCode::kInvalidArgument, "escapes the model's folder"));
}

TEST_F(ExternalDataTest, RefusesSymlinkOutOfTheFolder) {
  std::string outside = MakeTempDir("quantd-outside");
  WriteBytes(outside + "/secret.bin", std::string(200, 'x'));
  fs::create_symlink(outside + "/secret.bin", dir_ + "/link.bin");
  SetRef(W(), "link.bin", "0", "48");
  EXPECT_THAT(LoadStatus(),
              StatusIs(absl::StatusCode::kInvalidArgument, "outside the model's folder"));
  fs::remove_all(outside);
}

// "." is the model's folder, not a symlink escape: the message says so.
TEST_F(ExternalDataTest, RefusesTheFolderItselfOrASubfolderAsLocation) {
  for (const char* location : {".", "./"}) {
    SetRef(W(), location, "0", "48");
    absl::Status st = LoadStatus();
    EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument, "names the model's folder itself"))
        << location;
    EXPECT_THAT(std::string(st.message()), ::testing::Not(HasSubstr("symbolic link"))) << location;
  }
  fs::create_directory(dir_ + "/sub");
  SetRef(W(), "sub", "0", "48");
  EXPECT_THAT(LoadStatus(), StatusIs(absl::StatusCode::kInvalidArgument, "is not a regular file"));
}

// Data at an odd offset: Read() hands out an aligned copy, so typed loads of
// its floats are well defined.
TEST_F(ExternalDataTest, OddOffsetIsReadAligned) {
  const std::vector<float> values = quantd::testing::RandomFloats(12, 3);
  WriteBytes(dir_ + "/odd.bin", std::string(65, '\0') + FloatBytes(values));
  SetRef(W(), "odd.bin", "65", "48");
  WriteModel(model_, dir_ + "/model.onnx");
  auto model = OnnxModel::Load(dir_ + "/model.onnx");
  ASSERT_TRUE(model.ok()) << model.status();
  auto data = (*model)->Read(*(*model)->Tensors()[0].tensor);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(data->bytes().data()) % alignof(float), 0u);
  ASSERT_EQ(data->size(), 48u);
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(data->as<float>()[i], values[i]) << i;
}

TEST_F(ExternalDataTest, AcceptsSymlinkInsideTheFolder) {
  fs::create_directory(dir_ + "/sub");
  fs::rename(dir_ + "/weights.bin", dir_ + "/sub/weights.bin");
  fs::create_symlink("sub/weights.bin", dir_ + "/link.bin");
  SetRef(W(), "link.bin", "64", "48");
  EXPECT_TRUE(LoadStatus().ok()) << LoadStatus();
}

TEST_F(ExternalDataTest, RefusesRangeBeyondTheFile) {
  SetRef(W(), "weights.bin", "100", "48");
  EXPECT_THAT(LoadStatus(),
              StatusIs(absl::StatusCode::kDataLoss, "beyond the end of 'weights.bin'"));
}

TEST_F(ExternalDataTest, RefusesHugeOffsetWithoutOverflow) {
  SetRef(W(), "weights.bin", "18446744073709551600", "48");
  EXPECT_THAT(LoadStatus(), StatusIs(absl::StatusCode::kDataLoss, "beyond the end"));
}

TEST_F(ExternalDataTest, RefusesLengthThatDoesNotMatchDims) {
  SetRef(W(), "weights.bin", "64", "44");
  EXPECT_THAT(LoadStatus(), StatusIs(absl::StatusCode::kInvalidArgument,
                                     "does not match dims x element size (12 x FLOAT = 48 bytes)"));
}

TEST_F(ExternalDataTest, RefusesMissingFile) {
  SetRef(W(), "nope.bin", "0", "48");
  EXPECT_THAT(LoadStatus(), StatusIs(absl::StatusCode::kNotFound, "'nope.bin' not found"));
}

TEST_F(ExternalDataTest, RefusesMissingLocation) {
  SetRef(W(), "", "0", "48");
  EXPECT_THAT(LoadStatus(), StatusIs(absl::StatusCode::kInvalidArgument, "has no location"));
}

TEST_F(ExternalDataTest, RefusesUnknownDataType) {
  W()->set_data_type(77);
  EXPECT_THAT(LoadStatus(),
              StatusIs(absl::StatusCode::kInvalidArgument, "unsupported tensor data type type 77"));
}

TEST_F(ExternalDataTest, RefusesNegativeDims) {
  W()->set_dims(0, -4);
  EXPECT_THAT(LoadStatus(), StatusIs(absl::StatusCode::kInvalidArgument, "negative dimension"));
}

TEST(OnnxModelTest, RefusesRawDataOfWrongSize) {
  auto m = SmallMlp();
  m.mutable_graph()->mutable_initializer(1)->mutable_raw_data()->resize(10);
  auto model = OnnxModel::FromProto(m, "/tmp");
  EXPECT_THAT(model.status(), StatusIs(absl::StatusCode::kInvalidArgument,
                                       "initializer 'b' of graph 'mlp': raw_data has 10 bytes"));
}

// A deferred 2-D tensor may carry a producer of its transpose:
// ReadTransposed reads it, Read the tensor's own layout; a tensor that is not
// 2-D, or was deferred without one, has none; TakeData keeps it with the data.
TEST(OnnxModelTest, DeferredTensorsReadTheirTransposeWhenGiven) {
  auto model = OnnxModel::FromProto(SmallMlp(), "/tmp");
  ASSERT_TRUE(model.ok()) << model.status();
  onnx::GraphProto* g = (*model)->proto().mutable_graph();
  auto bytes = [](std::vector<float> v) {
    std::vector<uint8_t> b(v.size() * 4);
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  };
  auto add = [&](const std::string& name, std::vector<int64_t> dims) {
    onnx::TensorProto* t = g->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    return t;
  };
  onnx::TensorProto* w = add("w", {2, 3});  // [[1 2 3] [4 5 6]]
  (*model)->Defer(
      w,
      [&] {
        return absl::StatusOr<std::vector<uint8_t>>(bytes({1, 2, 3, 4, 5, 6}));
      },
      DeferredReaders{.transposed = [&] {
        return absl::StatusOr<std::vector<uint8_t>>(bytes({1, 4, 2, 5, 3, 6}));
      }});
  onnx::TensorProto* plain = add("plain", {2, 3});
  (*model)->Defer(plain, [&] {
    return absl::StatusOr<std::vector<uint8_t>>(bytes({1, 2, 3, 4, 5, 6}));
  });
  onnx::TensorProto* cube = add("cube", {1, 2, 3});
  (*model)->Defer(
      cube,
      [&] {
        return absl::StatusOr<std::vector<uint8_t>>(bytes({1, 2, 3, 4, 5, 6}));
      },
      DeferredReaders{.transposed = [&] {
        return absl::StatusOr<std::vector<uint8_t>>(bytes({1, 4, 2, 5, 3, 6}));
      }});
  ASSERT_TRUE((*model)->HasTransposed(*w));
  EXPECT_FALSE((*model)->HasTransposed(*plain));
  EXPECT_FALSE((*model)->HasTransposed(*cube));
  EXPECT_THAT((*model)->ReadTransposed(*plain).status(),
              StatusIs(absl::StatusCode::kInternal, "no transposed producer"));
  auto own = (*model)->Read(*w);
  auto t = (*model)->ReadTransposed(*w);
  ASSERT_TRUE(own.ok() && t.ok());
  EXPECT_EQ(std::vector<float>(own->as<float>().begin(), own->as<float>().end()),
            (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(std::vector<float>(t->as<float>().begin(), t->as<float>().end()),
            (std::vector<float>{1, 4, 2, 5, 3, 6}));
  const onnx::TensorProto moved = (*model)->TakeData(w);
  EXPECT_TRUE((*model)->HasTransposed(moved));
  EXPECT_FALSE((*model)->HasTransposed(*w));
}

TEST(OnnxModelTest, RefusesGarbage) {
  std::string dir = MakeTempDir("quantd-garbage");
  WriteBytes(dir + "/model.onnx", "this is not a protobuf \xff\xff\xff\xff");
  EXPECT_THAT(OnnxModel::Load(dir + "/model.onnx").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "not a valid ONNX model"));
  EXPECT_THAT(OnnxModel::Load(dir + "/missing.onnx").status(),
              StatusIs(absl::StatusCode::kNotFound, "no such file"));
  fs::remove_all(dir);
}

TEST(OnnxModelTest, ReadsTypedFieldsOfEveryFloatType) {
  onnx::ModelProto m = SmallMlp();
  auto* g = m.mutable_graph();
  onnx::TensorProto f32;
  f32.set_name("typed_f32");
  f32.set_data_type(kOnnxFloat);
  f32.add_dims(2);
  f32.add_float_data(1.5f);
  f32.add_float_data(-2.0f);
  *g->add_initializer() = f32;
  onnx::TensorProto f16;
  f16.set_name("typed_f16");
  f16.set_data_type(kOnnxFloat16);
  f16.add_dims(2);
  f16.add_int32_data(FloatToHalf(0.5f));
  f16.add_int32_data(FloatToHalf(-3.0f));
  *g->add_initializer() = f16;
  onnx::TensorProto bf16;
  bf16.set_name("typed_bf16");
  bf16.set_data_type(kOnnxBfloat16);
  bf16.add_dims(1);
  bf16.add_int32_data(FloatToBfloat16(4.0f));
  *g->add_initializer() = bf16;
  auto model = OnnxModel::FromProto(m, "/tmp");
  ASSERT_TRUE(model.ok()) << model.status();
  std::map<std::string, std::vector<float>> got;
  for (auto& site : (*model)->Tensors()) {
    auto d = (*model)->Read(*site.tensor);
    ASSERT_TRUE(d.ok());
    const auto& t = *site.tensor;
    std::vector<float> v;
    if (t.data_type() == kOnnxFloat) {
      for (float x : d->as<float>()) v.push_back(x);
    } else if (t.data_type() == kOnnxFloat16) {
      for (uint16_t x : d->as<uint16_t>()) v.push_back(HalfToFloat(x));
    } else if (t.data_type() == kOnnxBfloat16) {
      for (uint16_t x : d->as<uint16_t>()) v.push_back(Bfloat16ToFloat(x));
    }
    got[t.name()] = v;
  }
  EXPECT_EQ(got["typed_f32"], (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(got["typed_f16"], (std::vector<float>{0.5f, -3.0f}));
  EXPECT_EQ(got["typed_bf16"], (std::vector<float>{4.0f}));
}

TEST(OnnxModelTest, RefusesTypedFieldCountMismatch) {
  onnx::ModelProto m = SmallMlp();
  onnx::TensorProto t;
  t.set_name("short");
  t.set_data_type(kOnnxFloat);
  t.add_dims(3);
  t.add_float_data(1.0f);
  *m.mutable_graph()->add_initializer() = t;
  EXPECT_THAT(OnnxModel::FromProto(m, "/tmp").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "holds 1 values but its dims give 3"));
}

// paddle2onnx-style: weights in Constant nodes, and a Constant inside an If branch.
TEST(OnnxModelTest, FindsConstantNodeAndSubgraphWeights) {
  onnx::ModelProto m = SmallMlp();
  auto* g = m.mutable_graph();
  auto* c = AddNode(g, "Constant", "const_w", {}, {"cw"});
  auto* a = c->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = FloatTensor("", {2}, {1.0f, 2.0f});
  auto* iff = AddNode(g, "If", "branch", {"cond"}, {"z"});
  auto* then_attr = iff->add_attribute();
  then_attr->set_name("then_branch");
  then_attr->set_type(onnx::AttributeProto::GRAPH);
  auto* sub = then_attr->mutable_g();
  sub->set_name("then");
  *sub->add_initializer() = FloatTensor("sub_w", {1}, {7.0f});
  auto model = OnnxModel::FromProto(m, "/tmp");
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<std::string> where;
  for (auto& s : (*model)->Tensors()) where.push_back(s.where);
  EXPECT_THAT(where,
              ::testing::Contains(HasSubstr("attribute 'value' of Constant node 'const_w'")));
  EXPECT_THAT(where, ::testing::Contains(HasSubstr("initializer 'sub_w' of graph 'then'")));
}

TEST(OnnxModelTest, SavesInlineAndExternalWithAlignedOffsets) {
  std::string dir = MakeTempDir("quantd-save");
  onnx::ModelProto m = SmallMlp();
  *m.mutable_graph()->add_initializer() =
      FloatTensor("big1", {1000}, quantd::testing::RandomFloats(1000, 5));
  *m.mutable_graph()->add_initializer() =
      FloatTensor("big2", {3000}, quantd::testing::RandomFloats(3000, 6));
  auto model = OnnxModel::FromProto(m, dir);
  ASSERT_TRUE(model.ok());
  SaveOptions opts;
  opts.external_data = SaveOptions::ExternalData::kAlways;
  auto saved = (*model)->Save(dir + "/out.onnx", opts);
  ASSERT_TRUE(saved.ok()) << saved.status();
  ASSERT_EQ(saved->files.size(), 2u);
  auto back = quantd::testing::ReadModelProto(dir + "/out.onnx");
  int external = 0;
  for (const auto& t : back.graph().initializer()) {
    if (t.data_location() != onnx::TensorProto::EXTERNAL) {
      EXPECT_LT(t.raw_data().size(), 1024u) << t.name();
      continue;
    }
    ++external;
    for (const auto& kv : t.external_data()) {
      if (kv.key() == "offset") {
        EXPECT_EQ(std::stoull(kv.value()) % 4096, 0u) << t.name();
      }
      if (kv.key() == "location") {
        EXPECT_EQ(kv.value(), "out.onnx.data");
      }
    }
  }
  EXPECT_EQ(external, 2);
  auto reloaded = OnnxModel::Load(dir + "/out.onnx");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  for (auto& s : (*reloaded)->Tensors()) {
    if (s.tensor->name() != "big2") continue;
    auto d = (*reloaded)->Read(*s.tensor);
    ASSERT_TRUE(d.ok());
    auto want = quantd::testing::RandomFloats(3000, 6);
    EXPECT_EQ(std::memcmp(d->bytes().data(), want.data(), 12000), 0);
  }
  // No temp files left behind.
  for (auto& e : fs::directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
  fs::remove_all(dir);
}

// Reads a whole file.
std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Builds a model mixing the three kinds of tensor bytes Save writes to
// external data: the proto's own raw data, computed (deferred) bytes and,
// after a first save and reload, views into a mapped data file (queued to
// the disk with O_DIRECT). Saves with and without a pool must give the same
// files, and a failing producer must leave none.
TEST(OnnxModelTest, MixedTensorBytesGiveTheSameFilesWithAndWithoutAPool) {
  std::string dir = MakeTempDir("quantd-bg");
  auto build = [&](bool fail) {
    onnx::ModelProto m = SmallMlp();
    for (int i = 0; i < 6; ++i) {
      // big5: 1.2 MB, several queued O_DIRECT blocks when passed through.
      const int size = i == 5 ? 300000 : 20000 + 1000 * i;
      *m.mutable_graph()->add_initializer() = FloatTensor(
          "big" + std::to_string(i), {size}, quantd::testing::RandomFloats(size, 10 + i));
    }
    auto model = OnnxModel::FromProto(m, dir);
    EXPECT_TRUE(model.ok());
    int k = 0;
    for (auto& site : (*model)->Tensors()) {
      if (site.tensor->name().rfind("big", 0) != 0 || ++k % 2 == 0) continue;
      const size_t n = static_cast<size_t>(site.tensor->dims(0)) * 4;
      const bool fails = fail && k == 5;
      (*model)->Defer(site.tensor, [n, k, fails]() -> absl::StatusOr<std::vector<uint8_t>> {
        if (fails) return absl::InvalidArgumentError("producer failed");
        std::vector<uint8_t> v(n);
        for (size_t j = 0; j < n; ++j) v[j] = static_cast<uint8_t>(j * 7 + static_cast<size_t>(k));
        return v;
      });
    }
    return std::move(*model);
  };
  SaveOptions opts;
  opts.external_data = SaveOptions::ExternalData::kAlways;
  ThreadPool pool(2);
  RunContext threaded;
  threaded.pool = &pool;
  threaded.parallelism = 3;
  for (const char* sub : {"/a", "/b", "/c", "/d"}) fs::create_directories(dir + sub);
  ASSERT_TRUE(build(false)->Save(dir + "/a/m.onnx", opts).ok());
  auto b = build(false)->Save(dir + "/b/m.onnx", opts, threaded);
  ASSERT_TRUE(b.ok()) << b.status();
  const std::string data = FileBytes(dir + "/a/m.onnx.data");
  EXPECT_GT(data.size(), 100000u);
  EXPECT_EQ(FileBytes(dir + "/b/m.onnx.data"), data);
  EXPECT_EQ(FileBytes(dir + "/b/m.onnx"), FileBytes(dir + "/a/m.onnx"));
  // Re-saving a loaded model: its tensors are views into the mapped data.
  auto loaded = OnnxModel::Load(dir + "/a/m.onnx");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE((*loaded)->Save(dir + "/c/m.onnx", opts, threaded).ok());
  EXPECT_EQ(FileBytes(dir + "/c/m.onnx.data"), data);
  EXPECT_THAT(build(true)->Save(dir + "/d/m.onnx", opts, threaded).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "producer failed"));
  EXPECT_TRUE(fs::is_empty(dir + "/d"));
  // A loaded model with every other big tensor recomputed: views of the
  // mapped input (queued to the disk, past the page cache) interleave with
  // computed bytes (through it); the files do not depend on the pool, and a
  // producer failing after views were queued leaves none.
  auto reload_and_defer = [&](int fail_at) {
    auto m = OnnxModel::Load(dir + "/a/m.onnx");
    EXPECT_TRUE(m.ok()) << m.status();
    int k = 0;
    for (auto& site : (*m)->Tensors()) {
      if (site.tensor->name().rfind("big", 0) != 0 || ++k % 2 == 1) continue;
      const size_t n = static_cast<size_t>(site.tensor->dims(0)) * 4;
      const bool fails = k == fail_at;
      (*m)->Defer(site.tensor, [n, k, fails]() -> absl::StatusOr<std::vector<uint8_t>> {
        if (fails) return absl::InvalidArgumentError("producer failed");
        std::vector<uint8_t> v(n);
        for (size_t j = 0; j < n; ++j) v[j] = static_cast<uint8_t>(j * 13 + static_cast<size_t>(k));
        return v;
      });
    }
    return std::move(*m);
  };
  for (const char* sub : {"/e", "/f", "/g"}) fs::create_directories(dir + sub);
  ASSERT_TRUE(reload_and_defer(0)->Save(dir + "/e/m.onnx", opts).ok());
  auto f = reload_and_defer(0)->Save(dir + "/f/m.onnx", opts, threaded);
  ASSERT_TRUE(f.ok()) << f.status();
  const std::string mixed = FileBytes(dir + "/e/m.onnx.data");
  EXPECT_NE(mixed, data);  // the recomputed tensors differ from the first save's
  EXPECT_EQ(mixed.size(), data.size());
  EXPECT_EQ(FileBytes(dir + "/f/m.onnx.data"), mixed);
  EXPECT_EQ(FileBytes(dir + "/f/m.onnx"), FileBytes(dir + "/e/m.onnx"));
  EXPECT_THAT(reload_and_defer(6)->Save(dir + "/g/m.onnx", opts, threaded).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "producer failed"));
  EXPECT_TRUE(fs::is_empty(dir + "/g"));
  fs::remove_all(dir);
}

TEST(OnnxModelTest, CancelledSaveLeavesNoOutput) {
  std::string dir = MakeTempDir("quantd-cancel");
  auto model = OnnxModel::FromProto(SmallMlp(), dir);
  ASSERT_TRUE(model.ok());
  CancelToken cancel;
  cancel.Cancel();
  RunContext ctx;
  ctx.cancel = &cancel;
  auto saved = (*model)->Save(dir + "/out.onnx", SaveOptions(), ctx);
  EXPECT_EQ(saved.status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(fs::is_empty(dir));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace quantd::core
