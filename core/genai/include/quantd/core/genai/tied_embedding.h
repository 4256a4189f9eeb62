// ShareTiedEmbedding: after the weight pass, makes a tied embedding table
// read the LM head's quantized bytes instead of keeping a float copy.
//
// Before: Gather(Transpose(lm_head.MatMul.weight [H, V]), input_ids), and the
// LM head MatMulNBits(x, B [V, H/bs, bs*bits/8] uint8, scales [V*H/bs]).
// After:  com.microsoft.GatherBlockQuantized(Reshape(B -> [V, H*bits/8]),
//         input_ids, Reshape(scales -> [V, H/bs])), bits and block_size of
//         the MatMulNBits, gather_axis 0, quantize_axis 1; the float table is
//         gone. (GatherBlockQuantized takes 2-D scales only; its implicit zero
//         point, 2^(bits-1), is MatMulNBits' symmetric one.)
// Applies only when the LM head became a symmetric MatMulNBits (no zero
// points) and hidden % block_size == 0; otherwise the graph is left as it is
// and a note says why the table stays float.
//
// Thread safety: not thread-safe (edits the model).
#ifndef QUANTD_CORE_GENAI_TIED_EMBEDDING_H_
#define QUANTD_CORE_GENAI_TIED_EMBEDDING_H_

#include "absl/status/status.h"
#include "quantd/core/onnx/onnx_model.h"
#include "quantd/core/report.h"

namespace quantd::core::genai {

absl::Status ShareTiedEmbedding(OnnxModel* model, Report* report);

}  // namespace quantd::core::genai

#endif  // QUANTD_CORE_GENAI_TIED_EMBEDDING_H_
