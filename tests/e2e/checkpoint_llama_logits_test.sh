#!/usr/bin/env bash
# Quantd's F32 GGUF of each shared Hugging Face checkpoint, run by llama.cpp
# (node-llama-cpp, CPU, F32 KV cache), reproduces the reference forward pass
# ../shared/testdata/hf/ref/<name>.ref.json: top-1 at every prompt position,
# the 16 greedy tokens, |delta log-prob| <= 1e-3 over the reference top-10
# (gguf_llama_logits.mjs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
hf="$QUANTD_TESTDATA/hf"
if [ ! -d "$here/node_modules/node-llama-cpp" ]; then
  echo "node-llama-cpp is not installed: run scripts/setup.sh" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for name in phi3-tiny-shared llama-tiny-shared; do
  "$QUANTD_BIN" quantize "$hf/checkpoints/$name" -o "$tmp/$name-f32.gguf" --gguf-type F32 --quiet
  (cd "$here" && node gguf_llama_logits.mjs "$tmp/$name-f32.gguf" "$hf/ref/$name.ref.json" 1e-3)
done
