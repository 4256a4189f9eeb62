#include "quantd/core/gguf/gguf_file_source.h"

#include <algorithm>
#include <cstring>

#include <sys/mman.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/gguf/quants.h"

namespace quantd::core::gguf {

absl::StatusOr<std::unique_ptr<GgufFileSource>> GgufFileSource::Open(const std::string& path) {
  QUANTD_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapped, MappedFile::Open(path));
  auto parsed = GgufFile::Parse(mapped->bytes());
  if (!parsed.ok()) {
    return absl::Status(parsed.status().code(),
                        absl::StrCat(path, ": ", parsed.status().message()));
  }
  return std::unique_ptr<GgufFileSource>(new GgufFileSource(std::move(mapped), *std::move(parsed)));
}

absl::Span<const uint8_t> GgufFileSource::StoredBytes(size_t index) const {
  const GgufTensorInfo& t = file_.tensors()[index];
  return mapped_->bytes().subspan(file_.data_offset() + t.offset, t.nbytes);
}

void GgufFileSource::ReadRows(size_t index, int64_t first_row, int64_t num_rows, float* dst) const {
  const GgufTensorInfo& t = file_.tensors()[index];
  const int64_t row_bytes = RowBytes(t.type, t.ne[0]);
  const uint8_t* src = StoredBytes(index).data() + first_row * row_bytes;
  const int64_t n = num_rows * t.ne[0];
  if (t.type == GgmlType::kF32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  } else {
    DequantizeRow(t.type, src, dst, n);
  }
}

void GgufFileSource::Prefetch(size_t index, uint64_t offset, uint64_t length) const {
#ifdef __linux__
  constexpr int kMadvPopulateRead = 22;
  constexpr uintptr_t kPage = 4096;
  const absl::Span<const uint8_t> bytes = StoredBytes(index);
  if (offset >= bytes.size()) return;
  length = std::min<uint64_t>(length, bytes.size() - offset);
  const uintptr_t first = reinterpret_cast<uintptr_t>(bytes.data()) + offset;
  const uintptr_t begin = first / kPage * kPage;
  const uintptr_t end = first + length;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, kMadvPopulateRead);
#else
  (void)index;
  (void)offset;
  (void)length;
#endif
}

void GgufFileSource::Release(size_t index) const {
  const GgufTensorInfo& t = file_.tensors()[index];
  mapped_->ReleasePages(file_.data_offset() + t.offset, t.nbytes);
}

std::string GgufFileSource::SourceDtype(size_t index) const {
  return TypeName(file_.tensors()[index].type);
}

uint64_t GgufFileSource::SourceBytes(size_t index) const { return file_.tensors()[index].nbytes; }

}  // namespace quantd::core::gguf
