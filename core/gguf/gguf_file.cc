#include "quantd/core/gguf/gguf_file.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <unordered_set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "quantd/core/base/status_macros.h"

namespace quantd::core::gguf {
namespace {

constexpr int kMaxArrayDepth = 8;

// Size of a fixed-size scalar value type, 0 for string/array/unknown.
uint64_t ScalarSize(uint32_t t) {
  switch (static_cast<GgufValueType>(t)) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    default:
      return 0;
  }
}

bool KnownValueType(uint32_t t) { return t <= 12; }

// Bounds-checked little-endian cursor over the file.
class Reader {
 public:
  explicit Reader(absl::Span<const uint8_t> b) : b_(b) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return b_.size() - pos_; }

  absl::Status Need(uint64_t n, absl::string_view what) const {
    if (n > remaining()) {
      return absl::InvalidArgumentError(absl::StrCat("malformed GGUF: ", what, " at byte ", pos_,
                                                     " needs ", n, " bytes but only ", remaining(),
                                                     " remain in the file (truncated or corrupt)"));
    }
    return absl::OkStatus();
  }
  template <class T>
  absl::StatusOr<T> Read(absl::string_view what) {
    QUANTD_RETURN_IF_ERROR(Need(sizeof(T), what));
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  absl::StatusOr<std::string> ReadString(absl::string_view what) {
    QUANTD_ASSIGN_OR_RETURN(uint64_t n, Read<uint64_t>(what));
    if (n > remaining()) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed GGUF: ", what, " at byte ", pos_ - 8, " has length ", n,
                       " which runs past the end of the file (", remaining(), " bytes remain)"));
    }
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  absl::Status Skip(uint64_t n, absl::string_view what) {
    QUANTD_RETURN_IF_ERROR(Need(n, what));
    pos_ += n;
    return absl::OkStatus();
  }
  const uint8_t* data() const { return b_.data(); }

 private:
  absl::Span<const uint8_t> b_;
  uint64_t pos_ = 0;
};

// Validates (skips) one value of type `t` at the cursor.
absl::Status SkipValue(Reader* r, uint32_t t, const std::string& key, int depth) {
  if (!KnownValueType(t)) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed GGUF: metadata '", key, "' has unknown value type ", t));
  }
  const uint64_t scalar = ScalarSize(t);
  if (scalar != 0) return r->Skip(scalar, absl::StrCat("value of '", key, "'"));
  if (static_cast<GgufValueType>(t) == GgufValueType::kString) {
    return r->ReadString(absl::StrCat("string value of '", key, "'")).status();
  }
  // Array.
  if (depth >= kMaxArrayDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed GGUF: metadata '", key, "' nests arrays too deeply"));
  }
  QUANTD_ASSIGN_OR_RETURN(uint32_t et,
                          r->Read<uint32_t>(absl::StrCat("array type of '", key, "'")));
  QUANTD_ASSIGN_OR_RETURN(uint64_t n,
                          r->Read<uint64_t>(absl::StrCat("array length of '", key, "'")));
  if (!KnownValueType(et)) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed GGUF: array '", key, "' has unknown element type ", et));
  }
  const uint64_t es = ScalarSize(et);
  // Every element takes at least one byte (strings 8): reject impossible counts
  // before looping.
  const uint64_t min_size = es != 0 ? es : (et == 8 ? 8 : 12);
  if (n > r->remaining() / min_size) {
    return absl::InvalidArgumentError(absl::StrCat("malformed GGUF: array '", key, "' claims ", n,
                                                   " elements, more than fit in the ",
                                                   r->remaining(), " bytes left in the file"));
  }
  if (es != 0) return r->Skip(n * es, absl::StrCat("elements of '", key, "'"));
  for (uint64_t i = 0; i < n; ++i) QUANTD_RETURN_IF_ERROR(SkipValue(r, et, key, depth + 1));
  return absl::OkStatus();
}

template <class T>
T Load(const std::string& raw, size_t at = 0) {
  T v;
  std::memcpy(&v, raw.data() + at, sizeof(T));
  return v;
}

std::optional<int64_t> IntFrom(GgufValueType t, const std::string& raw, size_t at) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kBool:
      return Load<uint8_t>(raw, at);
    case GgufValueType::kInt8:
      return Load<int8_t>(raw, at);
    case GgufValueType::kUint16:
      return Load<uint16_t>(raw, at);
    case GgufValueType::kInt16:
      return Load<int16_t>(raw, at);
    case GgufValueType::kUint32:
      return Load<uint32_t>(raw, at);
    case GgufValueType::kInt32:
      return Load<int32_t>(raw, at);
    case GgufValueType::kUint64:
      return static_cast<int64_t>(Load<uint64_t>(raw, at));
    case GgufValueType::kInt64:
      return Load<int64_t>(raw, at);
    default:
      return std::nullopt;
  }
}

void AppendString(std::string* out, absl::string_view s) {
  const uint64_t n = s.size();
  out->append(reinterpret_cast<const char*>(&n), 8);
  out->append(s.data(), s.size());
}
template <class T>
void AppendPod(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

}  // namespace

std::optional<int64_t> GgufKv::AsInt() const {
  if (raw.size() < ScalarSize(static_cast<uint32_t>(type)) ||
      ScalarSize(static_cast<uint32_t>(type)) == 0) {
    return std::nullopt;
  }
  return IntFrom(type, raw, 0);
}

std::optional<std::string> GgufKv::AsString() const {
  if (type != GgufValueType::kString || raw.size() < 8) return std::nullopt;
  return raw.substr(8);
}

std::optional<std::pair<GgufValueType, uint64_t>> GgufKv::ArrayInfo() const {
  if (type != GgufValueType::kArray || raw.size() < 12) return std::nullopt;
  return std::make_pair(static_cast<GgufValueType>(Load<uint32_t>(raw)), Load<uint64_t>(raw, 4));
}

std::optional<int64_t> GgufKv::FirstArrayInt() const {
  auto info = ArrayInfo();
  if (!info || info->second == 0) return std::nullopt;
  const uint64_t es = ScalarSize(static_cast<uint32_t>(info->first));
  if (es == 0 || raw.size() < 12 + es) return std::nullopt;
  return IntFrom(info->first, raw, 12);
}

GgufKv GgufKv::Uint32(std::string key, uint32_t v) {
  GgufKv kv{std::move(key), GgufValueType::kUint32, {}};
  AppendPod(&kv.raw, v);
  return kv;
}

GgufKv GgufKv::Uint16(std::string key, uint16_t v) {
  GgufKv kv{std::move(key), GgufValueType::kUint16, {}};
  AppendPod(&kv.raw, v);
  return kv;
}

GgufKv GgufKv::Int32(std::string key, int32_t v) {
  GgufKv kv{std::move(key), GgufValueType::kInt32, {}};
  AppendPod(&kv.raw, v);
  return kv;
}

GgufKv GgufKv::String(std::string key, absl::string_view v) {
  GgufKv kv{std::move(key), GgufValueType::kString, {}};
  AppendString(&kv.raw, v);
  return kv;
}

GgufKv GgufKv::Bool(std::string key, bool v) {
  GgufKv kv{std::move(key), GgufValueType::kBool, {}};
  AppendPod<uint8_t>(&kv.raw, v ? 1 : 0);
  return kv;
}

GgufKv GgufKv::StringArray(std::string key, absl::Span<const std::string> v) {
  GgufKv kv{std::move(key), GgufValueType::kArray, {}};
  AppendPod<uint32_t>(&kv.raw, static_cast<uint32_t>(GgufValueType::kString));
  AppendPod<uint64_t>(&kv.raw, v.size());
  for (const std::string& s : v) AppendString(&kv.raw, s);
  return kv;
}

GgufKv GgufKv::Float32Array(std::string key, absl::Span<const float> v) {
  GgufKv kv{std::move(key), GgufValueType::kArray, {}};
  AppendPod<uint32_t>(&kv.raw, static_cast<uint32_t>(GgufValueType::kFloat32));
  AppendPod<uint64_t>(&kv.raw, v.size());
  kv.raw.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  return kv;
}

GgufKv GgufKv::Int32Array(std::string key, absl::Span<const int32_t> v) {
  GgufKv kv{std::move(key), GgufValueType::kArray, {}};
  AppendPod<uint32_t>(&kv.raw, static_cast<uint32_t>(GgufValueType::kInt32));
  AppendPod<uint64_t>(&kv.raw, v.size());
  kv.raw.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(int32_t));
  return kv;
}

int64_t GgufTensorInfo::Elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

absl::StatusOr<GgufFile> GgufFile::Parse(absl::Span<const uint8_t> bytes) {
  Reader r(bytes);
  GgufFile f;
  QUANTD_ASSIGN_OR_RETURN(uint32_t magic, r.Read<uint32_t>("magic"));
  if (magic != kGgufMagic) {
    return absl::InvalidArgumentError("not a GGUF file: the first 4 bytes are not \"GGUF\"");
  }
  QUANTD_ASSIGN_OR_RETURN(f.version_, r.Read<uint32_t>("version"));
  if (f.version_ != 2 && f.version_ != 3) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported GGUF version ", f.version_,
                                                   "; Quantd reads versions 2 and 3 (convert ",
                                                   "the model with a current llama.cpp)"));
  }
  QUANTD_ASSIGN_OR_RETURN(uint64_t n_tensors, r.Read<uint64_t>("tensor count"));
  QUANTD_ASSIGN_OR_RETURN(uint64_t n_kv, r.Read<uint64_t>("metadata count"));
  // A metadata entry takes at least 8+1+4+1 bytes, a tensor info 8+1+4+8+4+8.
  if (n_kv > r.remaining() / 14) {
    return absl::InvalidArgumentError(absl::StrCat(
        "malformed GGUF: metadata count ", n_kv, " cannot fit in a ", bytes.size(), "-byte file"));
  }
  if (n_tensors > r.remaining() / 33) {
    return absl::InvalidArgumentError(absl::StrCat("malformed GGUF: tensor count ", n_tensors,
                                                   " cannot fit in a ", bytes.size(),
                                                   "-byte file"));
  }
  std::unordered_set<std::string> keys;
  f.kvs_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    QUANTD_ASSIGN_OR_RETURN(std::string key, r.ReadString(absl::StrCat("key of metadata #", i)));
    if (!keys.insert(key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed GGUF: duplicate metadata key '", key, "'"));
    }
    QUANTD_ASSIGN_OR_RETURN(uint32_t t, r.Read<uint32_t>(absl::StrCat("type of '", key, "'")));
    const uint64_t start = r.pos();
    QUANTD_RETURN_IF_ERROR(SkipValue(&r, t, key, 0));
    GgufKv kv{std::move(key), static_cast<GgufValueType>(t),
              std::string(reinterpret_cast<const char*>(bytes.data() + start), r.pos() - start)};
    f.kvs_.push_back(std::move(kv));
  }
  if (const GgufKv* a = f.FindKv("general.alignment")) {
    auto v = a->AsInt();
    if (a->type != GgufValueType::kUint32 || !v || *v == 0 || (*v & (*v - 1)) != 0) {
      return absl::InvalidArgumentError(
          "malformed GGUF: general.alignment must be a non-zero power of two (uint32)");
    }
    f.alignment_ = static_cast<uint64_t>(*v);
  }
  std::unordered_set<std::string> names;
  f.tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    QUANTD_ASSIGN_OR_RETURN(t.name, r.ReadString(absl::StrCat("name of tensor #", i)));
    if (!names.insert(t.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed GGUF: duplicate tensor name '", t.name, "'"));
    }
    QUANTD_ASSIGN_OR_RETURN(uint32_t n_dims,
                            r.Read<uint32_t>(absl::StrCat("dims of '", t.name, "'")));
    if (n_dims == 0 || n_dims > kGgufMaxDims) {
      return absl::InvalidArgumentError(absl::StrCat("malformed GGUF: tensor '", t.name, "' has ",
                                                     n_dims, " dimensions; 1 to 4 are allowed"));
    }
    int64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      QUANTD_ASSIGN_OR_RETURN(uint64_t ne,
                              r.Read<uint64_t>(absl::StrCat("shape of '", t.name, "'")));
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (ne != 0 && static_cast<uint64_t>(elements) >
                          static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne)) {
        return absl::InvalidArgumentError(absl::StrCat("malformed GGUF: the dimensions of tensor '",
                                                       t.name, "' overflow (product beyond 2^63)"));
      }
      elements *= static_cast<int64_t>(ne);
      t.ne.push_back(static_cast<int64_t>(ne));
    }
    QUANTD_ASSIGN_OR_RETURN(uint32_t type_id,
                            r.Read<uint32_t>(absl::StrCat("type of '", t.name, "'")));
    auto info = LookupType(type_id);
    if (!info) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed GGUF: tensor '", t.name, "' has unknown ggml type id ", type_id));
    }
    t.type = info->type;
    if (t.ne[0] % info->block_size != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed GGUF: tensor '", t.name, "' has row length ", t.ne[0],
                       ", not a multiple of the ", info->name, " block size ", info->block_size));
    }
    const uint64_t blocks = static_cast<uint64_t>(elements / info->block_size);
    if (blocks > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(info->type_size)) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed GGUF: the byte size of tensor '", t.name, "' overflows"));
    }
    t.nbytes = blocks * static_cast<uint64_t>(info->type_size);
    QUANTD_ASSIGN_OR_RETURN(t.offset, r.Read<uint64_t>(absl::StrCat("offset of '", t.name, "'")));
    if (t.offset % f.alignment_ != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed GGUF: tensor '", t.name, "' data offset ", t.offset,
                       " is not a multiple of the alignment ", f.alignment_));
    }
    f.tensors_.push_back(std::move(t));
  }
  f.data_offset_ = AlignUp(r.pos(), f.alignment_);
  const uint64_t data_size = bytes.size() >= f.data_offset_ ? bytes.size() - f.data_offset_ : 0;
  if (n_tensors > 0 && bytes.size() < f.data_offset_) {
    return absl::InvalidArgumentError(
        "malformed GGUF: the file ends before its tensor data section");
  }
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& t : f.tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      return absl::InvalidArgumentError(absl::StrCat(
          "malformed GGUF: tensor '", t.name, "' data [", t.offset, ", ", t.offset + t.nbytes,
          ") lies beyond the ", data_size, "-byte data section (truncated file?)"));
    }
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo* prev = by_offset[i - 1];
    if (prev->offset + prev->nbytes > by_offset[i]->offset) {
      return absl::InvalidArgumentError(absl::StrCat("malformed GGUF: the data of tensors '",
                                                     prev->name, "' and '", by_offset[i]->name,
                                                     "' overlap"));
    }
  }
  return f;
}

const GgufKv* GgufFile::FindKv(absl::string_view key) const {
  for (const auto& kv : kvs_) {
    if (kv.key == key) return &kv;
  }
  return nullptr;
}

const GgufTensorInfo* GgufFile::FindTensor(absl::string_view name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

void RemoveKv(std::vector<GgufKv>* kvs, absl::string_view key) {
  kvs->erase(
      std::remove_if(kvs->begin(), kvs->end(), [&](const GgufKv& kv) { return kv.key == key; }),
      kvs->end());
}

void SetKv(std::vector<GgufKv>* kvs, GgufKv kv) {
  RemoveKv(kvs, kv.key);
  kvs->push_back(std::move(kv));
}

uint64_t LayoutTensors(std::vector<GgufTensorInfo>* tensors, uint64_t alignment) {
  uint64_t offset = 0;
  for (auto& t : *tensors) {
    t.offset = offset;
    offset += AlignUp(t.nbytes, alignment);
  }
  return offset;
}

std::string SerializeHeader(const std::vector<GgufKv>& kvs,
                            const std::vector<GgufTensorInfo>& tensors) {
  std::string out;
  AppendPod<uint32_t>(&out, kGgufMagic);
  AppendPod<uint32_t>(&out, kGgufVersion);
  AppendPod<uint64_t>(&out, tensors.size());
  AppendPod<uint64_t>(&out, kvs.size());
  for (const auto& kv : kvs) {
    AppendString(&out, kv.key);
    AppendPod<uint32_t>(&out, static_cast<uint32_t>(kv.type));
    out.append(kv.raw);
  }
  for (const auto& t : tensors) {
    AppendString(&out, t.name);
    // Like ggml's writer (ggml_n_dims): trailing dimensions of 1 are dropped.
    size_t n_dims = t.ne.size();
    while (n_dims > 1 && t.ne[n_dims - 1] == 1) --n_dims;
    AppendPod<uint32_t>(&out, static_cast<uint32_t>(n_dims));
    for (size_t d = 0; d < n_dims; ++d) AppendPod<uint64_t>(&out, static_cast<uint64_t>(t.ne[d]));
    AppendPod<uint32_t>(&out, static_cast<uint32_t>(t.type));
    AppendPod<uint64_t>(&out, t.offset);
  }
  return out;
}

absl::StatusOr<GgufFileStart> StartGgufFile(const std::string& path, const std::vector<GgufKv>& kvs,
                                            std::vector<GgufTensorInfo>* tensors,
                                            uint64_t alignment, OutputDigests* digests) {
  const uint64_t data_size = LayoutTensors(tensors, alignment);
  const std::string header = SerializeHeader(kvs, *tensors);
  GgufFileStart start;
  start.total_bytes = AlignUp(header.size(), alignment) + data_size;
  QUANTD_ASSIGN_OR_RETURN(start.writer, AtomicFileWriter::Create(path, digests));
  QUANTD_RETURN_IF_ERROR(start.writer->Write(header.data(), header.size()));
  QUANTD_RETURN_IF_ERROR(start.writer->PadTo(alignment));
  return start;
}

}  // namespace quantd::core::gguf
