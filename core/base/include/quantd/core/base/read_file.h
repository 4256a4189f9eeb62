// Reading a small file whole, with a size bound: for metadata files (JSON,
// tokenizers) that are parsed in memory, never for tensor data (mapped_file.h).
//
// Thread safety: a free function without state.
#ifndef QUANTD_CORE_BASE_READ_FILE_H_
#define QUANTD_CORE_BASE_READ_FILE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace quantd::core {

// The bytes of the regular file `path`. A file larger than `max_bytes` is
// refused before it is read; `what` names the kind of file in that message
// ("a tokenizer file", "JSON"). Errors: NotFound (missing, or not a regular
// file), InvalidArgument (larger than `max_bytes`), DataLoss (short read).
absl::StatusOr<std::string> ReadFileUpTo(const std::string& path, uint64_t max_bytes,
                                         absl::string_view what);

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_READ_FILE_H_
