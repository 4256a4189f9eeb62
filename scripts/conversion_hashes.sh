#!/usr/bin/env bash
# Runs a fixed list of conversions with one `quantd` binary and prints the
# sha256 of every output file, one line per file:
#   <conversion name> <file> <sha256>
# Used to prove that a refactoring changes no output byte: run it with the
# old and the new binary and diff the two listings.
#
#   scripts/conversion_hashes.sh QUANTD_BINARY [SHARED_DIR] > hashes.txt
set -euo pipefail
quantd=$(realpath "$1")
shared=$(realpath "${2:-$(dirname "$0")/../../shared}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

onnx=(
  "gpt2:$shared/testdata/onnx/genai-tiny-random-gpt2-fp32/past.onnx"
  "llama16:$shared/testdata/onnx/genai-tiny-random-llama-fp16-extdata/model.onnx"
  "gqa:$shared/testdata/onnx/genai-webgpu-tiny-gqa/model.onnx"
  "ov3x4:$shared/testdata/onnx/openvino-matmulnbits-3x4/matmulnbits_3x4.as-published.onnx"
)
onnx_recipes=(
  "fp16:--precision fp16"
  "fp32:--precision fp32"
  "int8-weight:--precision int8"
  "int8-weight-perchannel:--precision int8 --per-channel"
  "int8-dynamic:--precision int8 --int8-mode dynamic"
  "int4-mnb:--precision int4"
  "int4-mnb-asym-b128:--precision int4 --asymmetric --block-size 128 --accuracy-level 4"
  "int4-mnb-lmhead8-emb:--precision int4 --lm-head int8 --quantize-embeddings"
  "int4-qdq:--precision int4 --int4-format qdq"
  "int4-search:--precision int4 --algorithm search"
  "int8-mnb:--precision int8 --int8-mode matmulnbits"
  "int8-mnb-asym-b64:--precision int8 --int8-mode matmulnbits --asymmetric --block-size 64"
)
# Hugging Face checkpoints: GenAI folders, MLX folders and GGUF.
checkpoints=(
  "phi3:$shared/testdata/hf/checkpoints/phi3-tiny-shared"
  "llama:$shared/testdata/hf/checkpoints/llama-tiny-shared"
)
checkpoint_recipes=(
  "genai-fp32:out:--format onnx --precision fp32"
  "genai-fp16:out:--format onnx --precision fp16"
  "genai-int8:out:--format onnx --precision int8"
  "genai-int4:out:--format onnx --precision int4"
  "mlx4:out:--format mlx"
  "mlx8:out:--format mlx --bits 8"
  "gguf-f16:out.gguf:--gguf-type F16"
  "gguf-q4km:out.gguf:--gguf-type Q4_K_M"
)
gguf_in=(
  "f32:$shared/testdata/gguf/tiny-llama-f32.gguf"
  "f16:$shared/testdata/gguf/tiny-llama-f16.gguf"
)
gguf_types=(Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL)

run() {  # name out-path args...
  local name=$1 out=$2; shift 2
  mkdir -p "$work/$name"
  if "$quantd" quantize "$@" -o "$work/$name/$out" >/dev/null 2>"$work/$name.err"; then
    (cd "$work/$name" && find . -type f ! -name '*.json' -print0 | sort -z | xargs -0 sha256sum) |
      while read -r sum file; do echo "$name ${file#./} $sum"; done
  else
    echo "$name FAILED $(tail -c 300 "$work/$name.err" | tr '\n' ' ')"
  fi
}

for m in "${onnx[@]}"; do
  for r in "${onnx_recipes[@]}"; do
    for threads in 1 2; do
      # shellcheck disable=SC2086
      run "${m%%:*}.${r%%:*}.t$threads" model.onnx "${m#*:}" ${r#*:} --threads $threads
    done
  done
done
for c in "${checkpoints[@]}"; do
  for r in "${checkpoint_recipes[@]}"; do
    name=${r%%:*} rest=${r#*:}
    for threads in 1 2; do
      # shellcheck disable=SC2086
      run "${c%%:*}.$name.t$threads" "${rest%%:*}" "${c#*:}" ${rest#*:} --threads $threads
    done
  done
done
for g in "${gguf_in[@]}"; do
  for t in "${gguf_types[@]}"; do
    for threads in 1 2; do
      run "${g%%:*}.$t.t$threads" out.gguf "${g#*:}" --gguf-type "$t" --threads $threads
    done
  done
done
