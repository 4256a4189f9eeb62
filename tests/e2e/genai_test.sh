#!/usr/bin/env bash
# Checkpoint -> ONNX Runtime GenAI folder, run in onnxruntime-node (CPU) by
# genai_decode.mjs: a prompt pass of the reference's 16 ids and 16 decode
# steps through the KV cache, each step also checked against a full re-run
# without cache.
#
#   genai_test.sh reference NAME   fp32: top-1 at all 16 prompt positions, the
#                                  16 greedy tokens, |d log-prob| <= 1e-4 vs
#                                  ref/NAME.ref.json; fp16: greedy tokens,
#                                  <= 3e-2; both with the cache check.
#   genai_test.sh dequantized NAME int4 and int8 (accuracy level 0; int4 also
#                                  asymmetric with block 64, and mixed: layer 0
#                                  and every down_proj INT8): the folder's
#                                  log-probs equal, within 1e-3, the fp32
#                                  export of the checkpoint whose weights are
#                                  the folder's dequantized MatMulNBits.
#   genai_test.sh llamacpp         generated Phi-4-mini-like (partial rotary
#                                  0.75, LongRoPE, GQA, tied) and Qwen2-like
#                                  (q/k/v biases, GQA, tied, BF16) checkpoints:
#                                  ONNX fp32 and llama.cpp on Quantd's F32 GGUF
#                                  agree within 1e-3 over llama.cpp's top-10;
#                                  its int4 and int8 folders (the tied table
#                                  read through GatherBlockQuantized) equal
#                                  their dequantized float within 1e-3.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
hf="$QUANTD_TESTDATA/hf"
mode="$1"
n=0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
decode() { (cd "$here" && node genai_decode.mjs "$@"); }

case "$mode" in
  reference)
    name="$2"
    "$QUANTD_BIN" quantize "$hf/checkpoints/$name" -o "$tmp/fp32" --format onnx --precision fp32 --quiet
    decode --model "$tmp/fp32" --ref "$hf/ref/$name.ref.json" --tol 1e-4 --require-top1 \
      --require-greedy --cache-tol 1e-4
    "$QUANTD_BIN" quantize "$hf/checkpoints/$name" -o "$tmp/fp16" --format onnx --precision fp16 --quiet
    decode --model "$tmp/fp16" --ref "$hf/ref/$name.ref.json" --tol 3e-2 --require-greedy \
      --cache-tol 3e-2
    ;;
  dequantized)
    name="$2"
    set -f  # recipes hold regexes: no globbing of the unquoted $recipe
    for recipe in "int4" "int8" "int4 --asymmetric --block-size 64" \
      "int4 --int8-layers first:1 --int8-nodes .*/down_proj/.*"; do
      tag="r$((++n))"
      # shellcheck disable=SC2086
      "$QUANTD_BIN" quantize "$hf/checkpoints/$name" -o "$tmp/$tag" --format onnx \
        --precision $recipe --accuracy-level 0 --quiet
      /usr/bin/python3 "$here/genai_dequantize_to_hf.py" "$tmp/$tag" "$hf/checkpoints/$name" \
        "$tmp/$tag-ckpt"
      "$QUANTD_BIN" quantize "$tmp/$tag-ckpt" -o "$tmp/$tag-fp32" --format onnx --precision fp32 --quiet
      decode --model "$tmp/$tag" --ref "$hf/ref/$name.ref.json" --against "$tmp/$tag-fp32" \
        --tol 1e-3 --cache-tol 1e-3
    done
    ;;
  llamacpp)
    gen() {
      /usr/bin/python3 "$here/../../bench/make_hf_checkpoint.py" "$1" --hidden 256 --layers 2 \
        --heads 4 --kv-heads 2 --inter 512 --vocab 32064 --tied --shards 2 --bos-token-id 1 \
        --eos-token-id 32000 --tokenizer-from "$hf/checkpoints/phi3-tiny-shared" "${@:2}" >/dev/null
    }
    gen "$tmp/phi4-mini-like" --arch phi3 --partial-rotary 0.75 --longrope --dtype f32
    gen "$tmp/qwen2-like" --arch qwen2 --dtype bf16
    for ckpt in "$tmp/phi4-mini-like" "$tmp/qwen2-like"; do
      "$QUANTD_BIN" quantize "$ckpt" -o "$ckpt-f32.gguf" --gguf-type F32 --quiet
      "$QUANTD_BIN" quantize "$ckpt" -o "$ckpt-onnx" --format onnx --precision fp32 --quiet
      (cd "$here" && node gguf_llama_prompt_logprobs.mjs "$ckpt-f32.gguf" \
        "$hf/ref/phi3-tiny-shared.ref.json" "$ckpt-llama.json")
      decode --model "$ckpt-onnx" --ref "$ckpt-llama.json" --steps 0 --tol 1e-3 --require-top1
    done
    ckpt="$tmp/phi4-mini-like"
    for bits in int4 int8; do
      "$QUANTD_BIN" quantize "$ckpt" -o "$tmp/$bits" --format onnx --precision "$bits" \
        --accuracy-level 0 --quiet
      grep -q GatherBlockQuantized "$tmp/$bits/model.onnx"
      /usr/bin/python3 "$here/genai_dequantize_to_hf.py" "$tmp/$bits" "$ckpt" "$tmp/$bits-ckpt"
      "$QUANTD_BIN" quantize "$tmp/$bits-ckpt" -o "$tmp/$bits-fp32" --format onnx --precision fp32 \
        --quiet
      decode --model "$tmp/$bits" --ref "$hf/ref/phi3-tiny-shared.ref.json" \
        --against "$tmp/$bits-fp32" --tol 1e-3 --cache-tol 1e-3
    done
    ;;
  *)
    echo "usage: genai_test.sh reference NAME | dequantized NAME | llamacpp" >&2
    exit 2
    ;;
esac
