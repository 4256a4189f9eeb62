#include "sentencepiece_pieces.h"

#include <unordered_set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sentencepiece_model.pb.h"

namespace quantd::core::checkpoint::internal {

absl::StatusOr<SentencePiecePieces> ParseSentencePieceModel(const std::string& path,
                                                            absl::string_view bytes) {
  using Piece = quantd::checkpoint::sentencepiece::ModelProto::SentencePiece;
  quantd::checkpoint::sentencepiece::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a SentencePiece model (the protobuf does not parse)"));
  }
  if (model.pieces_size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": SentencePiece model without pieces"));
  }
  SentencePiecePieces out;
  out.pieces.reserve(model.pieces_size());
  out.scores.reserve(model.pieces_size());
  out.types.reserve(model.pieces_size());
  std::unordered_set<std::string> seen;
  bool has_unknown = false;
  for (int id = 0; id < model.pieces_size(); ++id) {
    const Piece& p = model.pieces(id);
    if (!seen.insert(p.piece()).second) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": SentencePiece model defines piece \"",
                                                     p.piece(), "\" twice (id ", id, ")"));
    }
    int32_t type = kTokenNormal;
    switch (p.type()) {
      case Piece::UNKNOWN:
        type = kTokenUnknown;
        has_unknown = true;
        break;
      case Piece::CONTROL:
        type = kTokenControl;
        break;
      case Piece::UNUSED:
        type = kTokenUnused;
        break;
      case Piece::BYTE:
        type = kTokenByte;
        break;
      default:
        break;  // NORMAL, USER_DEFINED
    }
    out.pieces.push_back(p.piece());
    out.scores.push_back(p.score());
    out.types.push_back(type);
  }
  if (!has_unknown) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": SentencePiece model has no unknown piece"));
  }
  return out;
}

}  // namespace quantd::core::checkpoint::internal
