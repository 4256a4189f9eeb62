// Internal to core/checkpoint: the pieces of a SentencePiece `tokenizer.model`,
// read through Debian's libsentencepiece.
//
// This header and its .cc use only standard types on purpose:
// sentencepiece_processor.h declares its own `absl::string_view`, which
// collides with Abseil's, so the library is confined to one translation unit
// that includes no Abseil header.
//
// Thread safety: a free function with no shared state.
#ifndef QUANTD_CORE_CHECKPOINT_SENTENCEPIECE_PIECES_H_
#define QUANTD_CORE_CHECKPOINT_SENTENCEPIECE_PIECES_H_

#include <cstdint>
#include <string>
#include <vector>

namespace quantd::core::checkpoint::internal {

// GGUF token types (llama.cpp's llama_token_type / gguf-py TokenType).
inline constexpr int32_t kTokenNormal = 1;
inline constexpr int32_t kTokenUnknown = 2;
inline constexpr int32_t kTokenControl = 3;
inline constexpr int32_t kTokenUserDefined = 4;
inline constexpr int32_t kTokenUnused = 5;
inline constexpr int32_t kTokenByte = 6;

struct SentencePiecePieces {
  std::vector<std::string> pieces;  // UTF-8 text of each piece, by id
  std::vector<float> scores;
  // kTokenUnknown, kTokenControl, kTokenUnused, kTokenByte or kTokenNormal,
  // tested in that order (the first that applies wins).
  std::vector<int32_t> types;
};

// Loads the model at `path` into `out`. Returns "" on success, otherwise the
// library's error message (out is then unspecified).
std::string LoadSentencePiecePieces(const std::string& path, SentencePiecePieces* out);

}  // namespace quantd::core::checkpoint::internal

#endif  // QUANTD_CORE_CHECKPOINT_SENTENCEPIECE_PIECES_H_
