#!/usr/bin/env bash
# Generated Hugging Face checkpoints -> quantd quantize (F32, Q8_0, Q4_K_M) ->
# llama.cpp (node-llama-cpp, CPU) loads each GGUF and generates. Covers what
# the shared checkpoints do not: Qwen2 q/k/v biases with tied embeddings (F16),
# a Phi-4-mini-like Phi-3 (partial_rotary_factor 0.75, LongRoPE, tied, BF16 in
# 3 shards), Llama with 4 query heads per KV head (BF16, 2 shards). The
# tokenizer files are the shared Phi-3 checkpoint's.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="${QUANTD_SOURCE_DIR:-$here/../..}"
py="${QUANTD_PYTHON:-/usr/bin/python3}"
tok="$QUANTD_TESTDATA/hf/checkpoints/phi3-tiny-shared"
if [ ! -d "$here/node_modules/node-llama-cpp" ]; then
  echo "node-llama-cpp is not installed: run scripts/setup.sh" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
gen() { "$py" "$src/bench/make_hf_checkpoint.py" "$tmp/$1" "${@:2}" --hidden 64 --layers 2 --inter 128 \
          --heads 4 --vocab 32064 --tokenizer-from "$tok"; }
gen qwen2-tied --arch qwen2 --kv-heads 2 --dtype f16 --shards 1 --tied
gen phi4-mini-like --arch phi3 --kv-heads 2 --dtype bf16 --shards 3 --tied --partial-rotary 0.75 --longrope
gen llama-gqa --arch llama --kv-heads 1 --dtype bf16 --shards 2
for ckpt in qwen2-tied phi4-mini-like llama-gqa; do
  for type in F32 Q8_0 Q4_K_M; do  # Q4_K_M: one step, checkpoint -> llama-quantize type
    "$QUANTD_BIN" quantize "$tmp/$ckpt" -o "$tmp/$ckpt-$type.gguf" --gguf-type "$type" --quiet
    (cd "$here" && node gguf_llama_generate.mjs "$tmp/$ckpt-$type.gguf" 8)
  done
done
