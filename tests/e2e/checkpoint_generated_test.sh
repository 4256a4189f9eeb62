#!/usr/bin/env bash
# Generated Hugging Face checkpoints -> quantd quantize (F32, Q8_0, Q4_K_M) ->
# llama.cpp (node-llama-cpp, CPU) loads each GGUF and generates. Covers what
# the shared checkpoints do not: Qwen2 q/k/v biases with tied embeddings (F16),
# a Phi-4-mini-like Phi-3 (partial_rotary_factor 0.75, LongRoPE, tied, BF16 in
# 3 shards), Llama with 4 query heads per KV head (BF16, 2 shards), all with
# the shared Phi-3 checkpoint's SentencePiece tokenizer; and two Phi-3
# checkpoints with real GPT-2-style BPE tokenizers rebuilt from tiktoken ranks
# (make_bpe_tokenizer.mjs): Phi-4-like (cl100k_base, vocab padded to 100352,
# llama.cpp names its pre-tokenizer "dbrx") and Phi-4-mini-like (o200k_base,
# partial rotary, LongRoPE, tied, vocab 200064, "gpt-4o").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="${QUANTD_SOURCE_DIR:-$here/../..}"
py="${QUANTD_PYTHON:-/usr/bin/python3}"
tok="$QUANTD_TESTDATA/hf/checkpoints/phi3-tiny-shared"
for pkg in node-llama-cpp js-tiktoken; do
  if [ ! -d "$here/node_modules/$pkg" ]; then
    echo "$pkg is not installed: run scripts/setup.sh" >&2
    exit 1
  fi
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
gen() { "$py" "$src/bench/make_hf_checkpoint.py" "$tmp/$1" --hidden 64 --layers 2 --inter 128 \
          --heads 4 --vocab 32064 --tokenizer-from "$tok" "${@:2}"; }
gen qwen2-tied --arch qwen2 --kv-heads 2 --dtype f16 --shards 1 --tied
gen phi4-mini-like --arch phi3 --kv-heads 2 --dtype bf16 --shards 3 --tied --partial-rotary 0.75 --longrope
gen llama-gqa --arch llama --kv-heads 1 --dtype bf16 --shards 2
(cd "$here" && node make_bpe_tokenizer.mjs phi4 "$tmp/tok-cl100k" &&
               node make_bpe_tokenizer.mjs phi4-mini "$tmp/tok-o200k")
gen phi4-bpe --arch phi3 --kv-heads 2 --dtype bf16 --shards 2 --vocab 100352 --tokenizer-from "$tmp/tok-cl100k"
gen phi4-mini-bpe --arch phi3 --kv-heads 2 --dtype bf16 --shards 2 --tied --partial-rotary 0.75 --longrope \
    --vocab 200064 --tokenizer-from "$tmp/tok-o200k"
for ckpt in qwen2-tied phi4-mini-like llama-gqa; do
  for type in F32 Q8_0 Q4_K_M; do  # Q4_K_M: one step, checkpoint -> llama-quantize type
    "$QUANTD_BIN" quantize "$tmp/$ckpt" -o "$tmp/$ckpt-$type.gguf" --gguf-type "$type" --quiet
    (cd "$here" && node gguf_llama_generate.mjs "$tmp/$ckpt-$type.gguf" 8)
  done
done
# The BPE tokenizers: llama.cpp's pre-tokenizer names, found by hashing the
# ids of its check text; F32 and the one-step Q4_K_M. llama.cpp must also
# tokenize text as tiktoken does and keep the chat tokens whole.
for spec in phi4-bpe:dbrx:cl100k phi4-mini-bpe:gpt-4o:o200k; do
  IFS=: read -r ckpt pre enc <<<"$spec"
  if [ "$enc" = cl100k ]; then
    specials=("<|endoftext|>=100257" "<|im_start|>=100264" "<|im_sep|>=100266" "<|im_end|>=100265")
  else
    specials=("<|endoftext|>=199999" "<|user|>=200021" "<|assistant|>=200019" "<|end|>=200020")
  fi
  for type in F32 Q4_K_M; do
    "$QUANTD_BIN" quantize "$tmp/$ckpt" -o "$tmp/$ckpt-$type.gguf" --gguf-type "$type" --quiet
    PYTHONPATH="$here" "$py" - "$tmp/$ckpt-$type.gguf" "$pre" <<'PY'
import sys
import gguf_header
with open(sys.argv[1], "rb") as f:
    kv = gguf_header.parse(f.read()).strings
got = (kv.get("tokenizer.ggml.model"), kv.get("tokenizer.ggml.pre"))
if got != ("gpt2", sys.argv[2]):
    sys.exit(f"{sys.argv[1]}: tokenizer.ggml.model/pre {got}, want ('gpt2', '{sys.argv[2]}')")
print(f"{sys.argv[1]}: tokenizer.ggml.model gpt2, pre {sys.argv[2]}")
PY
    (cd "$here" && node gguf_bpe_tokenize.mjs "$tmp/$ckpt-$type.gguf" "${enc}_base" "${specials[@]}")
    (cd "$here" && node gguf_llama_generate.mjs "$tmp/$ckpt-$type.gguf" 8)
  done
done
