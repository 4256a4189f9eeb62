// Importance matrices (llama.cpp's `llama-imatrix` output) for the GGUF
// quantizers: per weight tensor, one non-negative importance per input
// column (the mean of the squared activations that column saw).
//
// Two file formats are read, told apart by their first bytes:
//  - the legacy `.dat`: int32 entry count; per entry int32 name length, the
//    name, int32 ncall, int32 nval, nval float32 sums; optionally int32
//    chunk count, int32 length and the dataset name. Importance = sum / ncall
//    (sums kept as they are when ncall <= 0).
//  - GGUF: keys imatrix.datasets (string array), imatrix.chunk_count,
//    imatrix.chunk_size; per weight `<name>.in_sum2` (F32, ne {ncols, nmat})
//    and `<name>.counts` (F32, nmat values). Importance = in_sum2 / count of
//    its matrix row, or 1 where the count is 0 (as llama-quantize does).
//
// Values are owned by the ImportanceMatrix; thread-compatible (read-only
// after loading).
#ifndef QUANTD_CORE_GGUF_IMATRIX_H_
#define QUANTD_CORE_GGUF_IMATRIX_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace quantd::core::gguf {

struct ImportanceMatrix {
  // Tensor name -> importance per column (ne[0] floats per expert matrix).
  std::map<std::string, std::vector<float>> entries;
  std::string dataset;  // calibration file name recorded in the matrix ("" if none)
  int chunks = 0;       // chunks it was computed on (0 when not recorded)
};

// Upper bound on an importance matrix file (it holds one float per input
// column of each weight, so even very large models stay far below this).
inline constexpr uint64_t kMaxImatrixBytes = uint64_t{4} << 30;

// Parses an importance matrix from its bytes. InvalidArgument naming the
// problem (and the entry) for a malformed or truncated file, a non-finite
// value (llama-quantize refuses those too), or a GGUF file without the
// imatrix keys or with sums and counts that do not pair up. `what` names
// the file in messages.
absl::StatusOr<ImportanceMatrix> ParseImportanceMatrix(absl::Span<const uint8_t> bytes,
                                                       const std::string& what);
// Reads and parses the file at `path` (NotFound if missing).
absl::StatusOr<ImportanceMatrix> ReadImportanceMatrix(const std::string& path);

// llama-quantize's --exclude-weights / --include-weights: drops the entries
// whose name contains any `exclude` string, then (if `include` is not empty)
// keeps only those whose name contains an `include` string. Giving both is
// InvalidArgument, as in llama-quantize.
absl::Status FilterImportanceMatrix(const std::vector<std::string>& include,
                                    const std::vector<std::string>& exclude,
                                    ImportanceMatrix* matrix);

}  // namespace quantd::core::gguf

#endif  // QUANTD_CORE_GGUF_IMATRIX_H_
