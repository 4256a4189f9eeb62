// Small file helpers shared by the BlobStore and the UploadStore (private to
// server/): metadata protos written atomically and read back, and the bytes
// a directory tree holds (for the store's usage accounting).
//
// Thread safety: thread-safe free functions.
#ifndef QUANTD_SERVER_STORE_FILES_H_
#define QUANTD_SERVER_STORE_FILES_H_

#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/message_lite.h"

namespace quantd::server {

// Writes `msg` to `path` atomically (temp file, fsync, rename, fsync dir).
absl::Status WriteProtoFile(const std::string& path, const google::protobuf::MessageLite& msg);

// The file's bytes. NotFound when it cannot be opened.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

// Reads a proto written by WriteProtoFile. NotFound when absent; DataLoss
// when it does not parse.
template <typename Msg>
absl::StatusOr<Msg> ReadProtoFile(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadWholeFile(path);
  if (!bytes.ok()) return bytes.status();
  Msg msg;
  if (!msg.ParseFromString(*bytes)) {
    return absl::DataLossError(absl::StrCat(path, ": unreadable metadata"));
  }
  return msg;
}

// Bytes in the regular files under `dir` (0 when it does not exist).
uint64_t TreeBytes(const std::filesystem::path& dir);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_STORE_FILES_H_
