#include "quantd/core/checkpoint/safetensors_writer.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "quantd/core/base/status_macros.h"

namespace quantd::core::checkpoint {

int SafetensorsDtypeSize(absl::string_view dtype) {
  static constexpr struct {
    absl::string_view name;
    int size;
  } kDtypes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                 {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U64", 8},  {"U32", 4},
                 {"U16", 2}, {"U8", 1},  {"BOOL", 1}};
  for (const auto& d : kDtypes) {
    if (d.name == dtype) return d.size;
  }
  return 0;
}

uint64_t SafetensorsTensorSpec::nbytes() const {
  uint64_t n = static_cast<uint64_t>(SafetensorsDtypeSize(dtype));
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

absl::StatusOr<std::unique_ptr<SafetensorsWriter>> SafetensorsWriter::Create(
    const std::string& path, std::vector<SafetensorsTensorSpec> tensors,
    const SafetensorsWriterOptions& options) {
  if (options.header_alignment == 0) {
    return absl::InvalidArgumentError("safetensors header_alignment must be at least 1");
  }
  nlohmann::json header = nlohmann::json::object();
  if (!options.metadata.empty()) {
    nlohmann::json meta = nlohmann::json::object();
    for (const auto& [k, v] : options.metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  std::vector<uint64_t> ends;
  ends.reserve(tensors.size());
  uint64_t offset = 0;
  for (const SafetensorsTensorSpec& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__") {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": invalid safetensors tensor name \"", t.name, "\""));
    }
    if (header.contains(t.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor ", t.name, " is listed twice"));
    }
    if (SafetensorsDtypeSize(t.dtype) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor ", t.name, " has unknown safetensors dtype ", t.dtype));
    }
    if (std::any_of(t.shape.begin(), t.shape.end(), [](int64_t d) { return d < 0; })) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor ", t.name, " has a negative dimension"));
    }
    const uint64_t end = offset + t.nbytes();
    header[t.name] = {{"dtype", t.dtype},
                      {"shape", t.shape},
                      {"data_offsets", std::vector<uint64_t>{offset, end}}};
    ends.push_back(end);
    offset = end;
  }
  std::string text = header.dump();
  const uint64_t a = options.header_alignment;
  text.append((a - (8 + text.size()) % a) % a, ' ');

  QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFileWriter> file,
                          AtomicFileWriter::Create(path, options.digests));
  // The file's size is known: reserve it, and send the computed bytes to
  // the disk from staging buffers rather than through new page-cache pages.
  QUANTD_RETURN_IF_ERROR(file->Reserve(8 + text.size() + offset));
  QUANTD_RETURN_IF_ERROR(file->SetStaged(true));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(text.size() >> (8 * i));
  QUANTD_RETURN_IF_ERROR(file->Write(len, sizeof(len)));
  QUANTD_RETURN_IF_ERROR(file->Write(text.data(), text.size()));
  const uint64_t data_offset = 8 + text.size();
  return std::unique_ptr<SafetensorsWriter>(
      new SafetensorsWriter(std::move(file), std::move(tensors), std::move(ends), data_offset));
}

SafetensorsWriter::SafetensorsWriter(std::unique_ptr<AtomicFileWriter> file,
                                     std::vector<SafetensorsTensorSpec> tensors,
                                     std::vector<uint64_t> ends, uint64_t data_offset)
    : file_(std::move(file)),
      tensors_(std::move(tensors)),
      ends_(std::move(ends)),
      data_offset_(data_offset),
      data_bytes_(ends_.empty() ? 0 : ends_.back()) {}

absl::Status SafetensorsWriter::Write(absl::Span<const uint8_t> bytes) {
  if (committed_) {
    return absl::FailedPreconditionError(absl::StrCat(file_->path(), ": already committed"));
  }
  if (bytes.size() > data_bytes_ - written_) {
    return absl::FailedPreconditionError(absl::StrCat(file_->path(), ": ", written_ + bytes.size(),
                                                      " data bytes written, but the tensors hold ",
                                                      data_bytes_));
  }
  QUANTD_RETURN_IF_ERROR(file_->Write(bytes));
  written_ += bytes.size();
  return absl::OkStatus();
}

const SafetensorsTensorSpec* SafetensorsWriter::current_tensor() const {
  auto it = std::upper_bound(ends_.begin(), ends_.end(), written_);
  if (it == ends_.end()) return nullptr;
  return &tensors_[it - ends_.begin()];
}

absl::Status SafetensorsWriter::Commit() {
  if (committed_) {
    return absl::FailedPreconditionError(absl::StrCat(file_->path(), ": already committed"));
  }
  if (written_ != data_bytes_) {
    const SafetensorsTensorSpec* t = current_tensor();
    return absl::FailedPreconditionError(absl::StrCat(file_->path(), ": ", data_bytes_ - written_,
                                                      " data bytes missing (tensor ",
                                                      t != nullptr ? t->name : "?", ")"));
  }
  QUANTD_RETURN_IF_ERROR(file_->Commit());
  committed_ = true;
  return absl::OkStatus();
}

}  // namespace quantd::core::checkpoint
