// ParseUploadChunk: reads an UploadRequest { chunk { offset, data } } as it
// arrived in gRPC's slices, without copying `data`: the chunk's bytes are
// returned as pieces of those slices, to be hashed and written from there.
//
// Only the common shape is taken: one top-level `chunk` field holding
// `offset` (varint) and `data` (bytes), each at most once or repeated (the
// last wins, as protobuf has it), in any order. Anything else (the header
// and finish messages, unknown fields, a malformed message) returns false
// and is left to the protobuf parser, which decides what it means.
//
// Thread safety: a pure function.
#ifndef QUANTD_SERVER_UPLOAD_CHUNK_VIEW_H_
#define QUANTD_SERVER_UPLOAD_CHUNK_VIEW_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"

namespace quantd::server {

struct UploadChunkView {
  uint64_t offset = 0;
  std::vector<absl::string_view> data;  // pieces of the slices, in order
  uint64_t size = 0;                    // of all pieces
};

// True when `slices` (a message's bytes, in order) are an UploadRequest
// with a chunk of the shape above; `chunk`'s pieces point into `slices`.
bool ParseUploadChunk(const std::vector<grpc::Slice>& slices, UploadChunkView* chunk);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_UPLOAD_CHUNK_VIEW_H_
