#include "onnx_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl.h"
#include "google/protobuf/wire_format_lite.h"
#include "onnx/onnx_pb.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/base/errno_status.h"

namespace quantd::quantctl {
namespace {

// A file quantctl must read could not be opened: NotFound when it does not
// exist (a usage error), otherwise a data error (exit code 6).
absl::Status OpenError(int err, const std::string& path) {
  absl::Status st = core::ErrnoToStatus(err, "open", path);
  if (absl::IsNotFound(st)) return st;
  return absl::DataLossError(st.message());
}

using TensorVisitor = std::function<void(onnx::TensorProto*)>;

void VisitGraph(onnx::GraphProto* g, const TensorVisitor& visit);

void VisitAttribute(onnx::AttributeProto* a, const TensorVisitor& visit) {
  if (a->has_t()) visit(a->mutable_t());
  for (auto& t : *a->mutable_tensors()) visit(&t);
  if (a->has_g()) VisitGraph(a->mutable_g(), visit);
  for (auto& g : *a->mutable_graphs()) VisitGraph(&g, visit);
}

void VisitGraph(onnx::GraphProto* g, const TensorVisitor& visit) {
  for (auto& t : *g->mutable_initializer()) visit(&t);
  for (auto& s : *g->mutable_sparse_initializer()) {
    visit(s.mutable_values());
    visit(s.mutable_indices());
  }
  for (auto& n : *g->mutable_node()) {
    for (auto& a : *n.mutable_attribute()) VisitAttribute(&a, visit);
  }
}

void VisitModel(onnx::ModelProto* m, const TensorVisitor& visit) {
  if (m->has_graph()) VisitGraph(m->mutable_graph(), visit);
  for (auto& f : *m->mutable_functions()) {
    for (auto& n : *f.mutable_node()) {
      for (auto& a : *n.mutable_attribute()) VisitAttribute(&a, visit);
    }
  }
}

absl::StatusOr<onnx::ModelProto> ReadModel(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return OpenError(errno, path);
  onnx::ModelProto model;
  bool ok;
  {
    google::protobuf::io::FileInputStream raw(fd);
    google::protobuf::io::CodedInputStream coded(&raw);
    coded.SetTotalBytesLimit(INT32_MAX);
    ok = model.ParseFromCodedStream(&coded) && coded.ConsumedEntireMessage();
  }
  ::close(fd);
  if (!ok || !model.has_graph()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a valid ONNX model"));
  }
  return model;
}

// A streaming scan of the ModelProto wire format for external data
// locations: it walks only the messages that can hold tensors and skips
// everything else (raw_data included) without materialising it, so a 2 GB
// single-file model costs a buffer, not 2 GB of RAM. Field numbers are
// onnx.proto's.
class LocationScanner {
 public:
  using Coded = google::protobuf::io::CodedInputStream;
  using Wire = google::protobuf::internal::WireFormatLite;

  bool Model(Coded* in) {
    while (uint32_t tag = in->ReadTag()) {
      const int field = Wire::GetTagFieldNumber(tag);
      if (IsLen(tag) && field == 7) {  // graph
        saw_graph_ = true;
        if (!Nested(in, &LocationScanner::Graph)) return false;
      } else if (IsLen(tag) && field == 25) {  // functions
        if (!Nested(in, &LocationScanner::Function)) return false;
      } else if (!Wire::SkipField(in, tag)) {
        return false;
      }
    }
    return in->ConsumedEntireMessage();
  }

  bool saw_graph() const { return saw_graph_; }
  const std::vector<std::string>& locations() const { return locations_; }

 private:
  static bool IsLen(uint32_t tag) {
    return Wire::GetTagWireType(tag) == Wire::WIRETYPE_LENGTH_DELIMITED;
  }

  bool Nested(Coded* in, bool (LocationScanner::*parse)(Coded*)) {
    uint32_t length;
    if (!in->ReadVarint32(&length)) return false;
    const Coded::Limit limit = in->PushLimit(static_cast<int>(length));
    const bool ok = (this->*parse)(in) && in->ConsumedEntireMessage();
    in->PopLimit(limit);
    return ok;
  }

  // Dispatches the tensor-bearing fields of one message; skips the rest.
  bool Fields(Coded* in,
              std::initializer_list<std::pair<int, bool (LocationScanner::*)(Coded*)>> nested) {
    while (uint32_t tag = in->ReadTag()) {
      const int field = Wire::GetTagFieldNumber(tag);
      bool handled = false;
      if (IsLen(tag)) {
        for (const auto& [number, parse] : nested) {
          if (number == field) {
            if (!Nested(in, parse)) return false;
            handled = true;
            break;
          }
        }
      }
      if (!handled && !Wire::SkipField(in, tag)) return false;
    }
    return true;
  }

  bool Graph(Coded* in) {
    return Fields(in, {{1, &LocationScanner::Node},
                       {5, &LocationScanner::Tensor},
                       {15, &LocationScanner::Sparse}});
  }
  bool Function(Coded* in) { return Fields(in, {{7, &LocationScanner::Node}}); }
  bool Node(Coded* in) { return Fields(in, {{5, &LocationScanner::Attribute}}); }
  bool Attribute(Coded* in) {
    return Fields(in, {{5, &LocationScanner::Tensor},
                       {6, &LocationScanner::Graph},
                       {10, &LocationScanner::Tensor},
                       {11, &LocationScanner::Graph},
                       {22, &LocationScanner::Sparse},
                       {23, &LocationScanner::Sparse}});
  }
  bool Sparse(Coded* in) {
    return Fields(in, {{1, &LocationScanner::Tensor}, {2, &LocationScanner::Tensor}});
  }

  bool Tensor(Coded* in) {
    bool external = false;
    std::string location;
    while (uint32_t tag = in->ReadTag()) {
      const int field = Wire::GetTagFieldNumber(tag);
      if (field == 14 && Wire::GetTagWireType(tag) == Wire::WIRETYPE_VARINT) {
        uint64_t v;
        if (!in->ReadVarint64(&v)) return false;
        external = v == onnx::TensorProto::EXTERNAL;
      } else if (field == 13 && IsLen(tag)) {  // external_data entry {key=1, value=2}
        uint32_t length;
        if (!in->ReadVarint32(&length)) return false;
        const Coded::Limit limit = in->PushLimit(static_cast<int>(length));
        std::string key, value;
        while (uint32_t t = in->ReadTag()) {
          const int f = Wire::GetTagFieldNumber(t);
          if (f == 1 && IsLen(t)) {
            if (!Wire::ReadString(in, &key)) return false;
          } else if (f == 2 && IsLen(t)) {
            if (!Wire::ReadString(in, &value)) return false;
          } else if (!Wire::SkipField(in, t)) {
            return false;
          }
        }
        const bool ok = in->ConsumedEntireMessage();
        in->PopLimit(limit);
        if (!ok) return false;
        if (key == "location") location = value;
      } else if (!Wire::SkipField(in, tag)) {
        return false;
      }
    }
    if (external) locations_.push_back(location);
    return true;
  }

  bool saw_graph_ = false;
  std::vector<std::string> locations_;
};

}  // namespace

absl::StatusOr<std::vector<std::string>> OnnxExternalDataFiles(const std::string& onnx_path) {
  int fd = ::open(onnx_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return OpenError(errno, onnx_path);
  LocationScanner scan;
  bool ok;
  {
    google::protobuf::io::FileInputStream raw(fd, 1 << 20);
    google::protobuf::io::CodedInputStream coded(&raw);
    coded.SetTotalBytesLimit(INT32_MAX);
    ok = scan.Model(&coded);
  }
  ::close(fd);
  if (!ok || !scan.saw_graph()) {
    return absl::InvalidArgumentError(absl::StrCat(onnx_path, " is not a valid ONNX model"));
  }
  std::vector<std::string> files;
  for (const std::string& loc : scan.locations()) {
    if (loc.empty() || absl::StrContains(loc, "/") || absl::StrContains(loc, "\\") || loc == "." ||
        loc == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat(onnx_path, " keeps weights at '", loc,
                       "'; only files in the model's own folder are supported"));
    }
    if (std::find(files.begin(), files.end(), loc) == files.end()) files.push_back(loc);
  }
  const std::filesystem::path dir = std::filesystem::path(onnx_path).parent_path();
  for (const auto& f : files) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(dir / f, ec)) {
      return absl::NotFoundError(
          absl::StrCat(onnx_path, " keeps weights in '", f, "' but that file is not next to it"));
    }
  }
  return files;
}

absl::Status RelocateOnnxExternalData(const std::string& onnx_path, const std::string& from,
                                      const std::string& to) {
  auto model = ReadModel(onnx_path);
  if (!model.ok()) return model.status();
  VisitModel(&*model, [&](onnx::TensorProto* t) {
    if (t->data_location() != onnx::TensorProto::EXTERNAL) return;
    for (auto& kv : *t->mutable_external_data()) {
      if (kv.key() == "location" && kv.value() == from) kv.set_value(to);
    }
  });
  // The graph only: the weights stay in the external data files.
  std::string bytes;
  if (!model->SerializeToString(&bytes)) {
    return absl::DataLossError(absl::StrCat(onnx_path, ": cannot rewrite: serialization failed"));
  }
  absl::Status st = core::WriteFileAtomically(onnx_path, bytes);
  if (!st.ok())
    return absl::DataLossError(absl::StrCat(onnx_path, ": cannot rewrite: ", st.message()));
  return absl::OkStatus();
}

}  // namespace quantd::quantctl
