// Internal to core/checkpoint: the pieces of a SentencePiece `tokenizer.model`.
//
// The model is parsed with SentencePiece's published ModelProto schema
// (sentencepiece_model.proto beside this file) and the protobuf library the
// rest of core uses. (Debian's libsentencepiece is not used: it links
// libprotobuf-lite, and a process that also loads the full libprotobuf, as
// quantd does for ONNX, crashes at start-up.)
//
// Thread safety: a free function with no shared state.
#ifndef QUANTD_CORE_CHECKPOINT_SENTENCEPIECE_PIECES_H_
#define QUANTD_CORE_CHECKPOINT_SENTENCEPIECE_PIECES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace quantd::core::checkpoint::internal {

// GGUF token types (llama.cpp's llama_token_type / gguf-py TokenType).
inline constexpr int32_t kTokenNormal = 1;
inline constexpr int32_t kTokenUnknown = 2;
inline constexpr int32_t kTokenControl = 3;
inline constexpr int32_t kTokenUserDefined = 4;
inline constexpr int32_t kTokenUnused = 5;
inline constexpr int32_t kTokenByte = 6;

struct SentencePiecePieces {
  std::vector<std::string> pieces;  // text of each piece, by id
  std::vector<float> scores;
  // What the converter derives from SentencePieceProcessor's IsUnknown,
  // IsControl, IsUnused, IsByte (tested in that order): kTokenUnknown,
  // kTokenControl, kTokenUnused, kTokenByte, else kTokenNormal (user-defined
  // pieces included).
  std::vector<int32_t> types;
};

// Parses a serialized ModelProto. Refuses, with InvalidArgument naming
// `path`, what SentencePieceProcessor refuses to load: bytes that are not a
// ModelProto, no pieces, a piece defined twice, no unknown piece.
absl::StatusOr<SentencePiecePieces> ParseSentencePieceModel(const std::string& path,
                                                            absl::string_view bytes);

}  // namespace quantd::core::checkpoint::internal

#endif  // QUANTD_CORE_CHECKPOINT_SENTENCEPIECE_PIECES_H_
