#include "onnx_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl.h"
#include "onnx/onnx_pb.h"

namespace quantd::quantctl {
namespace {

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
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return absl::DataLossError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
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

}  // namespace

absl::StatusOr<std::vector<std::string>> OnnxExternalDataFiles(const std::string& onnx_path) {
  auto model = ReadModel(onnx_path);
  if (!model.ok()) return model.status();
  std::vector<std::string> files;
  absl::Status error;
  VisitModel(&*model, [&](onnx::TensorProto* t) {
    if (t->data_location() != onnx::TensorProto::EXTERNAL) return;
    for (const auto& kv : t->external_data()) {
      if (kv.key() != "location") continue;
      const std::string& loc = kv.value();
      if (loc.empty() || absl::StrContains(loc, "/") || absl::StrContains(loc, "\\") ||
          loc == "." || loc == "..") {
        error = absl::InvalidArgumentError(absl::StrCat(
            onnx_path, ": tensor ", t->name(), " has external data at '", loc,
            "'; only files in the model's own folder are supported"));
        return;
      }
      if (std::find(files.begin(), files.end(), loc) == files.end()) files.push_back(loc);
    }
  });
  if (!error.ok()) return error;
  const std::filesystem::path dir = std::filesystem::path(onnx_path).parent_path();
  for (const auto& f : files) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(dir / f, ec)) {
      return absl::NotFoundError(absl::StrCat(onnx_path, " keeps weights in '", f,
                                              "' but that file is not next to it"));
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
  const std::string tmp = absl::StrCat(onnx_path, ".relocate.tmp");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::DataLossError(absl::StrCat(tmp, ": cannot create: ", std::strerror(errno)));
  }
  bool ok;
  {
    google::protobuf::io::FileOutputStream out(fd);
    ok = model->SerializeToZeroCopyStream(&out) && out.Flush();
  }
  ok = ok && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), onnx_path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return absl::DataLossError(absl::StrCat(onnx_path, ": cannot rewrite: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace quantd::quantctl
