#!/usr/bin/env bash
# llama.cpp runs Quantd's output: tiny-llama F32 (+ a minimal vocabulary so
# llama.cpp can load it) -> quantd quantize --gguf-type TYPE -> node-llama-cpp
# loads the file and generates tokens.
#
# Usage: gguf_llama_e2e.sh TYPE   (env: QUANTD_BIN, QUANTD_TESTDATA)
set -euo pipefail
type="${1:-Q4_K_M}"
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -d "$here/node_modules/node-llama-cpp" ]; then
  echo "node-llama-cpp is not installed: run scripts/setup.sh" >&2
  exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$here/gguf_add_vocab.py" "$QUANTD_TESTDATA/gguf/tiny-llama-f32.gguf" "$tmp/in.gguf"
"$QUANTD_BIN" quantize "$tmp/in.gguf" -o "$tmp/out-$type.gguf" --gguf-type "$type" --threads 2
(cd "$here" && node gguf_llama_generate.mjs "$tmp/out-$type.gguf" 8)
