// No Abseil header may be included here (see sentencepiece_pieces.h).
#include "sentencepiece_pieces.h"

#include <sentencepiece_processor.h>

namespace quantd::core::checkpoint::internal {

std::string LoadSentencePiecePieces(const std::string& path, SentencePiecePieces* out) {
  sentencepiece::SentencePieceProcessor processor;
  const auto status = processor.Load(path);
  if (!status.ok()) return status.ToString();
  const int n = processor.GetPieceSize();
  out->pieces.clear();
  out->scores.clear();
  out->types.clear();
  out->pieces.reserve(n);
  out->scores.reserve(n);
  out->types.reserve(n);
  for (int id = 0; id < n; ++id) {
    int32_t type = kTokenNormal;
    if (processor.IsUnknown(id)) {
      type = kTokenUnknown;
    } else if (processor.IsControl(id)) {
      type = kTokenControl;
    } else if (processor.IsUnused(id)) {
      type = kTokenUnused;
    } else if (processor.IsByte(id)) {
      type = kTokenByte;
    }
    out->pieces.push_back(processor.IdToPiece(id));
    out->scores.push_back(processor.GetScore(id));
    out->types.push_back(type);
  }
  return "";
}

}  // namespace quantd::core::checkpoint::internal
