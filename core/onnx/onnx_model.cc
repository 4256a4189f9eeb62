#include "quantd/core/onnx/onnx_model.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/base/populate.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/onnx/onnx_check.h"
#include "quantd/core/onnx/onnx_types.h"

namespace quantd::core {
namespace fs = std::filesystem;
namespace {

constexpr char kDeferredPrefix[] = "quantd:deferred/";
constexpr uint64_t kAutoExternalBytes = uint64_t{1} << 30;

std::string GraphLabel(const onnx::GraphProto& g) {
  return g.name().empty() ? std::string("(unnamed)") : g.name();
}

void CollectGraph(onnx::GraphProto* g, std::vector<TensorSite>* out) {
  for (auto& init : *g->mutable_initializer()) {
    out->push_back(
        {&init, g, nullptr,
         absl::StrCat("initializer '", init.name(), "' of graph '", GraphLabel(*g), "'")});
  }
  for (auto& node : *g->mutable_node()) {
    for (auto& attr : *node.mutable_attribute()) {
      std::string node_label = absl::StrCat(node.op_type(), " node '", node.name(), "'");
      if (attr.has_t()) {
        out->push_back({attr.mutable_t(), g, &node,
                        absl::StrCat("attribute '", attr.name(), "' of ", node_label)});
      }
      for (auto& t : *attr.mutable_tensors()) {
        out->push_back(
            {&t, g, &node, absl::StrCat("attribute '", attr.name(), "' of ", node_label)});
      }
      if (attr.has_g()) CollectGraph(attr.mutable_g(), out);
      for (auto& sub : *attr.mutable_graphs()) CollectGraph(&sub, out);
    }
  }
}

struct ExternalRef {
  std::string location;
  uint64_t offset = 0;
  bool has_length = false;
  uint64_t length = 0;
};

absl::StatusOr<ExternalRef> ParseExternalRef(const onnx::TensorProto& t, const std::string& where) {
  ExternalRef ref;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") {
      ref.location = kv.value();
    } else if (kv.key() == "offset") {
      if (!absl::SimpleAtoi(kv.value(), &ref.offset)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": external data offset '", kv.value(), "' is not a number"));
      }
    } else if (kv.key() == "length") {
      if (!absl::SimpleAtoi(kv.value(), &ref.length)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": external data length '", kv.value(), "' is not a number"));
      }
      ref.has_length = true;
    }
  }
  if (ref.location.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": external data has no location"));
  }
  return ref;
}

// Moves typed-field contents (float_data, int32_data, ...) into raw_data so
// every later step sees one representation. Returns false if the type has no
// supported typed field.
template <typename Src, typename Dst>
std::string PackTyped(const google::protobuf::RepeatedField<Src>& field) {
  std::string raw(field.size() * sizeof(Dst), '\0');
  Dst* p = reinterpret_cast<Dst*>(raw.data());
  for (int i = 0; i < field.size(); ++i) p[i] = static_cast<Dst>(field.Get(i));
  return raw;
}

absl::Status NormalizeTypedFields(onnx::TensorProto* t, uint64_t count, const std::string& where) {
  std::string raw;
  uint64_t have = 0;
  switch (t->data_type()) {
    case kOnnxFloat:
      have = t->float_data_size();
      raw = PackTyped<float, float>(t->float_data());
      t->clear_float_data();
      break;
    case kOnnxComplex64:
      have = t->float_data_size() / 2;
      raw = PackTyped<float, float>(t->float_data());
      t->clear_float_data();
      break;
    case kOnnxDouble:
      have = t->double_data_size();
      raw = PackTyped<double, double>(t->double_data());
      t->clear_double_data();
      break;
    case kOnnxComplex128:
      have = t->double_data_size() / 2;
      raw = PackTyped<double, double>(t->double_data());
      t->clear_double_data();
      break;
    case kOnnxInt64:
      have = t->int64_data_size();
      raw = PackTyped<int64_t, int64_t>(t->int64_data());
      t->clear_int64_data();
      break;
    case kOnnxUint32:
      have = t->uint64_data_size();
      raw = PackTyped<uint64_t, uint32_t>(t->uint64_data());
      t->clear_uint64_data();
      break;
    case kOnnxUint64:
      have = t->uint64_data_size();
      raw = PackTyped<uint64_t, uint64_t>(t->uint64_data());
      t->clear_uint64_data();
      break;
    case kOnnxInt32:
      have = t->int32_data_size();
      raw = PackTyped<int32_t, int32_t>(t->int32_data());
      t->clear_int32_data();
      break;
    case kOnnxInt16:
      have = t->int32_data_size();
      raw = PackTyped<int32_t, int16_t>(t->int32_data());
      t->clear_int32_data();
      break;
    case kOnnxUint16:
    case kOnnxFloat16:
    case kOnnxBfloat16:  // 16-bit patterns stored one per int32
      have = t->int32_data_size();
      raw = PackTyped<int32_t, uint16_t>(t->int32_data());
      t->clear_int32_data();
      break;
    case kOnnxInt8:
      have = t->int32_data_size();
      raw = PackTyped<int32_t, int8_t>(t->int32_data());
      t->clear_int32_data();
      break;
    case kOnnxUint8:
    case kOnnxBool:
    case kOnnxFloat8E4M3FN:
    case kOnnxFloat8E4M3FNUZ:
    case kOnnxFloat8E5M2:
    case kOnnxFloat8E5M2FNUZ:
      have = t->int32_data_size();
      raw = PackTyped<int32_t, uint8_t>(t->int32_data());
      t->clear_int32_data();
      break;
    default:
      if (count == 0) return absl::OkStatus();
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", OnnxTypeName(t->data_type()),
                                                     " data in typed fields is not supported"));
  }
  if (have != count) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": holds ", have, " values but its dims give ", count));
  }
  *t->mutable_raw_data() = std::move(raw);
  return absl::OkStatus();
}

bool IsDeferred(const onnx::TensorProto& t, uint64_t* id) {
  if (t.data_location() != onnx::TensorProto::EXTERNAL) return false;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location" && absl::StartsWith(kv.value(), kDeferredPrefix)) {
      return absl::SimpleAtoi(kv.value().substr(sizeof(kDeferredPrefix) - 1), id);
    }
  }
  return false;
}

void SetExternal(onnx::TensorProto* t, const std::string& location, uint64_t offset,
                 uint64_t length) {
  t->clear_raw_data();
  t->clear_external_data();
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto add = [t](const char* key, std::string value) {
    auto* kv = t->add_external_data();
    kv->set_key(key);
    kv->set_value(std::move(value));
  };
  add("location", location);
  add("offset", absl::StrCat(offset));
  add("length", absl::StrCat(length));
}

// Write-back is started every this many bytes of external data, so the disk
// works while later tensors are computed and Commit's fsync is short.
constexpr uint64_t kWriteBackBytes = 32 << 20;

}  // namespace

std::string DescribeTensor(const TensorSite& site) { return site.where; }

void TensorData::Release() {
  if (file_ != nullptr) file_->ReleasePages(file_offset_, view_.size());
  if (release_) release_();
  RecycleBuffer(std::move(owned_));  // a large one serves the next weight
}

TensorData::~TensorData() { Release(); }

TensorData& TensorData::operator=(TensorData&& other) noexcept {
  if (this == &other) return *this;
  Release();
  // A view into `owned_` stays valid: moving a vector keeps its buffer.
  view_ = other.view_;
  owned_ = std::move(other.owned_);
  file_ = other.file_;
  file_offset_ = other.file_offset_;
  release_ = std::move(other.release_);
  other.view_ = {};
  other.owned_.clear();
  other.file_ = nullptr;
  other.release_ = nullptr;
  return *this;
}

std::vector<uint8_t> TensorData::TakeOwned() {
  if (file_ != nullptr || owned_.size() != view_.size() || owned_.data() != view_.data()) return {};
  view_ = {};
  std::vector<uint8_t> out = std::move(owned_);
  owned_.clear();
  return out;
}

OnnxModel::~OnnxModel() = default;

absl::StatusOr<std::unique_ptr<OnnxModel>> OnnxModel::Load(const std::string& path) {
  QUANTD_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  if (file->size() > static_cast<uint64_t>(INT_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": ", file->size(),
        " bytes; an ONNX protobuf cannot exceed 2 GiB, store the weights as external data"));
  }
  onnx::ModelProto proto;
  {
    google::protobuf::io::CodedInputStream in(file->bytes().data(), static_cast<int>(file->size()));
    in.SetTotalBytesLimit(INT_MAX);
    if (!proto.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": not a valid ONNX model (protobuf parse failed)"));
    }
  }
  file.reset();
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  fs::path canon = fs::canonical(dir, ec);
  if (ec) return absl::NotFoundError(absl::StrCat(dir.string(), ": ", ec.message()));
  return FromProto(std::move(proto), canon.string());
}

absl::StatusOr<std::unique_ptr<OnnxModel>> OnnxModel::FromProto(onnx::ModelProto proto,
                                                                const std::string& base_dir) {
  if (!proto.has_graph()) return absl::InvalidArgumentError("not an ONNX model: it has no graph");
  std::unique_ptr<OnnxModel> model(new OnnxModel());
  model->proto_ = std::move(proto);
  std::error_code ec;
  fs::path canon = fs::canonical(base_dir, ec);
  model->base_dir_ = ec ? base_dir : canon.string();
  model->NormalizeOpsetImports();
  QUANTD_RETURN_IF_ERROR(model->Validate());
  return model;
}

absl::StatusOr<const MappedFile*> OnnxModel::MapExternal(const std::string& location,
                                                         const std::string& where) {
  auto it = files_.find(location);
  if (it != files_.end()) return it->second.get();
  fs::path rel(location);
  if (rel.is_absolute()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": external data location '", location,
                     "' is absolute; it must be relative to the model's folder"));
  }
  for (const auto& part : rel) {
    if (part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(where, ": external data location '", location,
                                                     "' escapes the model's folder"));
    }
  }
  fs::path full = fs::path(base_dir_) / rel;
  std::error_code ec;
  fs::path canon = fs::canonical(full, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat(where, ": external data file '", location, "' not found next to the model"));
  }
  const std::string prefix = base_dir_ + "/";
  if (!absl::StartsWith(canon.string(), prefix)) {
    if (canon.string() == base_dir_) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": external data location '", location,
                       "' names the model's folder itself; it must name a file in it"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": external data location '", location,
                     "' resolves outside the model's folder (through a symbolic link)"));
  }
  if (!fs::is_regular_file(canon, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": external data location '", location, "' is not a regular file"));
  }
  QUANTD_ASSIGN_OR_RETURN(auto mapped, MappedFile::Open(canon.string()));
  const MappedFile* raw = mapped.get();
  files_[location] = std::move(mapped);
  return raw;
}

absl::Status OnnxModel::Validate() {
  for (TensorSite& site : Tensors()) {
    onnx::TensorProto* t = site.tensor;
    const std::string& where = site.where;
    if (t->data_type() == kOnnxString) {
      if (t->data_location() == onnx::TensorProto::EXTERNAL) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": STRING data cannot be external"));
      }
      continue;
    }
    auto count = ElementCount({t->dims().data(), static_cast<size_t>(t->dims_size())});
    if (!count.ok())
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", count.status().message()));
    auto bytes = ByteSize(t->data_type(), *count);
    if (!bytes.ok())
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", bytes.status().message()));
    if (t->data_location() == onnx::TensorProto::EXTERNAL) {
      QUANTD_ASSIGN_OR_RETURN(ExternalRef ref, ParseExternalRef(*t, where));
      QUANTD_ASSIGN_OR_RETURN(const MappedFile* file, MapExternal(ref.location, where));
      uint64_t length = ref.has_length ? ref.length : *bytes;
      if (ref.has_length && ref.length != *bytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": external data length ", ref.length, " does not match dims x element size (",
            *count, " x ", OnnxTypeName(t->data_type()), " = ", *bytes, " bytes)"));
      }
      if (ref.offset > file->size() || length > file->size() - ref.offset) {
        return absl::DataLossError(absl::StrCat(where, ": external data range [", ref.offset, ", ",
                                                ref.offset + length, ") is beyond the end of '",
                                                ref.location, "' (", file->size(), " bytes)"));
      }
      continue;
    }
    if (t->has_raw_data()) {
      if (t->raw_data().size() != *bytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": raw_data has ", t->raw_data().size(), " bytes but dims x element size is ",
            *count, " x ", OnnxTypeName(t->data_type()), " = ", *bytes, " bytes"));
      }
      continue;
    }
    QUANTD_RETURN_IF_ERROR(NormalizeTypedFields(t, *count, where));
  }
  return absl::OkStatus();
}

void OnnxModel::NormalizeOpsetImports() {
  // Some published models import a domain twice (e.g. ai.onnx 7 and 1);
  // runtimes then pick one arbitrarily. Keep the highest version of each.
  std::map<std::string, int64_t> best;
  for (const auto& o : proto_.opset_import()) {
    auto [it, inserted] = best.emplace(o.domain(), o.version());
    if (!inserted) {
      notes_.push_back(absl::StrCat("opset domain '", o.domain().empty() ? "ai.onnx" : o.domain(),
                                    "' was imported twice (", it->second, " and ", o.version(),
                                    "); kept ", std::max(it->second, o.version())));
      it->second = std::max(it->second, o.version());
    }
  }
  if (static_cast<int>(best.size()) == proto_.opset_import_size()) return;
  proto_.clear_opset_import();
  for (const auto& [domain, version] : best) {
    auto* o = proto_.add_opset_import();
    o->set_domain(domain);
    o->set_version(version);
  }
}

std::vector<TensorSite> OnnxModel::Tensors() {
  std::vector<TensorSite> out;
  CollectGraph(proto_.mutable_graph(), &out);
  return out;
}

absl::StatusOr<TensorData> OnnxModel::Read(const onnx::TensorProto& t) const {
  TensorData data;
  uint64_t id = 0;
  if (IsDeferred(t, &id)) {
    if (id >= producers_.size() || !producers_[id]) {
      return absl::InternalError(
          absl::StrCat("tensor '", t.name(), "': unknown deferred producer"));
    }
    return Produce(producers_[id]);
  }
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    std::string where = absl::StrCat("tensor '", t.name(), "'");
    QUANTD_ASSIGN_OR_RETURN(ExternalRef ref, ParseExternalRef(t, where));
    auto it = files_.find(ref.location);
    if (it == files_.end()) {
      return absl::InternalError(
          absl::StrCat(where, ": external file '", ref.location, "' not mapped"));
    }
    const MappedFile* file = it->second.get();
    uint64_t length = ref.length;
    if (!ref.has_length) {
      auto count = ElementCount({t.dims().data(), static_cast<size_t>(t.dims_size())});
      if (!count.ok()) return count.status();
      QUANTD_ASSIGN_OR_RETURN(length, ByteSize(t.data_type(), *count));
    }
    if (ref.offset > file->size() || length > file->size() - ref.offset) {
      return absl::DataLossError(absl::StrCat(where, ": external data beyond end of file"));
    }
    data.view_ = file->bytes().subspan(ref.offset, length);
    // Readers load whole elements (as<T>(), the quantizers): an element at an
    // offset that is not a multiple of its size is copied to an aligned
    // buffer rather than read misaligned (undefined behaviour).
    const uint64_t element = std::clamp<uint64_t>(OnnxTypeBits(t.data_type()) / 8, 1, 8);
    if (reinterpret_cast<uintptr_t>(data.view_.data()) % element != 0) {
      data.owned_.assign(data.view_.begin(), data.view_.end());
      data.view_ = {data.owned_.data(), data.owned_.size()};
      file->ReleasePages(ref.offset, length);
      return data;
    }
    data.file_ = file;
    data.file_offset_ = ref.offset;
    return data;
  }
  if (t.has_raw_data()) {
    data.view_ = {reinterpret_cast<const uint8_t*>(t.raw_data().data()), t.raw_data().size()};
    return data;
  }
  auto count = ElementCount({t.dims().data(), static_cast<size_t>(t.dims_size())});
  if (count.ok() && *count == 0) return data;
  return absl::InvalidArgumentError(
      absl::StrCat("tensor '", t.name(), "' (", OnnxTypeName(t.data_type()), ") has no data"));
}

onnx::TensorProto OnnxModel::TakeData(onnx::TensorProto* t) {
  onnx::TensorProto out;
  out.set_name(t->name());
  out.set_data_type(t->data_type());
  *out.mutable_dims() = t->dims();
  if (t->data_location() == onnx::TensorProto::EXTERNAL) {
    out.set_data_location(onnx::TensorProto::EXTERNAL);
    *out.mutable_external_data() = t->external_data();
    t->clear_external_data();
    t->clear_data_location();
  } else {
    out.mutable_raw_data()->swap(*t->mutable_raw_data());
    t->clear_raw_data();
  }
  return out;
}

void OnnxModel::Defer(onnx::TensorProto* t, TensorProducer producer, DeferredReaders readers) {
  uint64_t id = producers_.size();
  producers_.push_back(std::move(producer));
  if (t->dims_size() != 2) readers.transposed = nullptr;
  if (!readers.transposed || t->data_type() != kOnnxFloat) readers.transposed_bfloat16 = nullptr;
  if (t->data_type() != kOnnxFloat) {
    readers.range = nullptr;
    readers.halves = nullptr;
  }
  readers_.push_back(std::move(readers));
  t->clear_raw_data();
  t->clear_external_data();
  t->set_data_location(onnx::TensorProto::EXTERNAL);
  auto* kv = t->add_external_data();
  kv->set_key("location");
  kv->set_value(absl::StrCat(kDeferredPrefix, id));
}

const DeferredReaders* OnnxModel::ReadersOf(const onnx::TensorProto& t) const {
  uint64_t id = 0;
  return IsDeferred(t, &id) && id < readers_.size() ? &readers_[id] : nullptr;
}

namespace {

absl::Status NoReader(const onnx::TensorProto& t, absl::string_view reader) {
  return absl::InternalError(absl::StrCat("tensor '", t.name(), "' has no ", reader));
}

}  // namespace

bool OnnxModel::HasTransposed(const onnx::TensorProto& t) const {
  const DeferredReaders* r = ReadersOf(t);
  return r != nullptr && r->transposed;
}

absl::StatusOr<TensorData> OnnxModel::ReadTransposed(const onnx::TensorProto& t) const {
  if (!HasTransposed(t)) return NoReader(t, "transposed producer");
  return Produce(ReadersOf(t)->transposed);
}

bool OnnxModel::HasTransposedBfloat16(const onnx::TensorProto& t) const {
  const DeferredReaders* r = ReadersOf(t);
  return r != nullptr && r->transposed_bfloat16;
}

absl::StatusOr<TensorData> OnnxModel::ReadTransposedBfloat16(const onnx::TensorProto& t) const {
  if (!HasTransposedBfloat16(t)) return NoReader(t, "bfloat16 transposed producer");
  QUANTD_ASSIGN_OR_RETURN(LentBytes lent, ReadersOf(t)->transposed_bfloat16());
  TensorData data;
  if (!lent.owned.empty()) {
    data.owned_ = std::move(lent.owned);
    data.view_ = {data.owned_.data(), data.owned_.size()};
  } else {
    data.view_ = lent.view;
  }
  data.release_ = std::move(lent.release);
  return data;
}

bool OnnxModel::HasRangeScanner(const onnx::TensorProto& t) const {
  const DeferredReaders* r = ReadersOf(t);
  return r != nullptr && r->range;
}

absl::StatusOr<FloatRangeStats> OnnxModel::ScanRange(const onnx::TensorProto& t) const {
  if (!HasRangeScanner(t)) return NoReader(t, "range scanner");
  return ReadersOf(t)->range();
}

bool OnnxModel::HasHalfProducer(const onnx::TensorProto& t) const {
  const DeferredReaders* r = ReadersOf(t);
  return r != nullptr && r->halves;
}

absl::StatusOr<std::vector<uint8_t>> OnnxModel::ProduceHalves(const onnx::TensorProto& t,
                                                              NarrowingStats* stats) const {
  if (!HasHalfProducer(t)) return NoReader(t, "half producer");
  return ReadersOf(t)->halves(stats);
}

absl::StatusOr<TensorData> OnnxModel::Produce(const TensorProducer& producer) {
  TensorData data;
  QUANTD_ASSIGN_OR_RETURN(data.owned_, producer());
  data.view_ = {data.owned_.data(), data.owned_.size()};
  return data;
}

absl::StatusOr<SaveResult> OnnxModel::Save(const std::string& path, const SaveOptions& options,
                                           const RunContext& ctx) {
  std::vector<TensorSite> sites = Tensors();
  uint64_t total = 0;
  for (const TensorSite& s : sites) {
    auto count =
        ElementCount({s.tensor->dims().data(), static_cast<size_t>(s.tensor->dims_size())});
    auto bytes = count.ok() ? ByteSize(s.tensor->data_type(), *count) : count.status();
    if (bytes.ok()) total += *bytes;
  }
  bool external = options.external_data == SaveOptions::ExternalData::kAlways ||
                  (options.external_data == SaveOptions::ExternalData::kAuto &&
                   (had_external_data() || total > kAutoExternalBytes));
  const uint64_t alignment = std::max<uint64_t>(options.alignment, 1);
  const std::string data_name = fs::path(path).filename().string() + ".data";
  const std::string data_path = (fs::path(path).parent_path() / data_name).string();

  SaveResult result;
  std::unique_ptr<AtomicFileWriter> data_writer;
  uint64_t data_end = 0;  // the data file's size
  Progress p{"write", 0, sites.size(), 0, total};
  for (size_t i = 0; i < sites.size(); ++i) {
    QUANTD_RETURN_IF_ERROR(ctx.CheckCancelled());
    onnx::TensorProto* t = sites[i].tensor;
    if (t->data_type() == kOnnxString) continue;
    auto data = Read(*t);
    if (!data.ok()) {
      return absl::Status(data.status().code(),
                          absl::StrCat(sites[i].where, ": ", data.status().message()));
    }
    const uint64_t n = data->size();
    result.tensor_bytes += n;
    if (external && n >= options.size_threshold) {
      if (data_writer == nullptr) {
        QUANTD_ASSIGN_OR_RETURN(data_writer,
                                AtomicFileWriter::Create(data_path, ctx.output_digests));
        // An upper bound (every tensor padded); Commit gives back the rest.
        QUANTD_RETURN_IF_ERROR(data_writer->Reserve(total + sites.size() * alignment));
        data_writer->set_write_back_interval(kWriteBackBytes);
        QUANTD_RETURN_IF_ERROR(data_writer->SetStaged(true));
      }
      const uint64_t offset = (data_end + alignment - 1) / alignment * alignment;
      data_end = offset + n;
      // Written here, by the thread that computed the bytes (the pool is
      // free for the next tensor's loop): input bytes passed through (a view
      // of the input's mapping, unchanged until Commit) are queued to the
      // disk with O_DIRECT, without a copy into the page cache and without
      // waiting; computed bytes are copied from this thread's caches into
      // the writer's staging buffers, which go to the disk with O_DIRECT too
      // (into the page cache they cost several times the CPU on a VM that
      // backs new pages lazily, and on another thread 16x as much: the
      // profiles of the 1.35 GB decoder in docs/benchmarks.md).
      QUANTD_RETURN_IF_ERROR(data_writer->PadTo(alignment));
      QUANTD_RETURN_IF_ERROR(data->file_ != nullptr ? data_writer->WriteUncachedAsync(data->bytes())
                                                    : data_writer->Write(data->bytes()));
      *data = TensorData();  // releases mapped pages / the computed buffer
      SetExternal(t, data_name, offset, n);
    } else if (!(t->has_raw_data() &&
                 data->bytes().data() == reinterpret_cast<const uint8_t*>(t->raw_data().data()))) {
      std::string raw(reinterpret_cast<const char*>(data->bytes().data()), n);
      *data = TensorData();
      t->clear_external_data();
      t->clear_data_location();
      *t->mutable_raw_data() = std::move(raw);
    }
    p.tensors_done = i + 1;
    p.bytes_done += n;
    ctx.Report(p);
  }
  if (data_writer != nullptr && data_writer->offset() != data_end) {
    return absl::InternalError(absl::StrCat("external data file has ", data_writer->offset(),
                                            " bytes, expected ", data_end));
  }
  const size_t proto_size = proto_.ByteSizeLong();
  if (proto_size > static_cast<size_t>(INT_MAX)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the model is ", proto_size, " bytes inline; a protobuf cannot exceed 2 GiB - ",
        "save with external data"));
  }
  if (options.check) {
    QUANTD_ASSIGN_OR_RETURN(result.notes, CheckOnnxOutput(&proto_));
  }
  std::string serialized;
  if (!proto_.SerializeToString(&serialized)) {
    return absl::InternalError("failed to serialize the ONNX model");
  }
  // Data first, model last: a crash never leaves a model pointing at missing data.
  if (data_writer != nullptr) {
    result.bytes += data_writer->offset();
    QUANTD_RETURN_IF_ERROR(data_writer->Commit());
  }
  QUANTD_RETURN_IF_ERROR(WriteFileAtomically(
      path, {reinterpret_cast<const uint8_t*>(serialized.data()), serialized.size()},
      ctx.output_digests));
  result.bytes += serialized.size();
  result.files.push_back(path);
  if (data_writer != nullptr) result.files.push_back(data_path);
  return result;
}

}  // namespace quantd::core
