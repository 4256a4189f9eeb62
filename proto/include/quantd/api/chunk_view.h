// Chunk messages read where they lie: an UploadRequest { chunk { offset,
// data } } (the server's uploads) or a DownloadChunk { offset, data } (the
// client's downloads) as it arrived in gRPC's slices, without copying
// `data`: the chunk's bytes are returned as pieces of those slices, to be
// hashed and written from there.
//
// Only the common shape is taken: `offset` (varint) and `data` (bytes),
// each at most once or repeated (the last wins, as protobuf has it), in any
// order, and for an upload inside the one top-level `chunk` field. Anything
// else (an upload's header and finish messages, a download's first message
// with its FileInfo, unknown fields, a malformed message) returns false and
// is left to the protobuf parser, which decides what it means. Wire format:
// protobuf.dev/programming-guides/encoding.
//
// Thread safety: pure functions.
#ifndef QUANTD_API_CHUNK_VIEW_H_
#define QUANTD_API_CHUNK_VIEW_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"

namespace quantd::api {

struct ChunkView {
  uint64_t offset = 0;
  std::vector<absl::string_view> data;  // pieces of the slices, in order
  uint64_t size = 0;                    // of all pieces
};

// True when `slices` (a message's bytes, in order) are an UploadRequest
// with a chunk of the shape above; `chunk`'s pieces point into `slices`.
bool ParseUploadChunk(const std::vector<grpc::Slice>& slices, ChunkView* chunk);

// The same for a DownloadChunk without its `file` field.
bool ParseDownloadChunk(const std::vector<grpc::Slice>& slices, ChunkView* chunk);

}  // namespace quantd::api

#endif  // QUANTD_API_CHUNK_VIEW_H_
