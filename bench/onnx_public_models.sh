#!/usr/bin/env bash
# Every ONNX conversion Quantd offers, on every public model in
# ../shared/testdata/onnx, each run in ONNX Runtime against its input.
#
# For each model x recipe it prints one row: ok with the lowest output cosine
# (onnxruntime-node, CPU, generated inputs: tests/e2e/ort_compare.mjs) and the
# file size, or the refusal (exit code and the first line of the message).
# Not part of CTest: it is a survey; the CTests check the same conversions
# with bounds.
#
#   bench/onnx_public_models.sh [BUILD_DIR] [TESTDATA]
#   defaults: BUILD_DIR=build, TESTDATA=../shared/testdata (from the repo root)
# Needs: build/server/quantd, node and tests/e2e/node_modules (onnxruntime-node).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
data="${2:-$root/../shared/testdata}"
quantd="$build/server/quantd"
[ -x "$quantd" ] || { echo "missing $quantd" >&2; exit 1; }
compare="$root/tests/e2e/ort_compare.mjs"
[ -d "$root/tests/e2e/node_modules/onnxruntime-node" ] ||
  { echo "needs tests/e2e/node_modules (npm ci in tests/e2e)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

recipes=(
  "fp16|--precision fp16"
  "fp32|--precision fp32"
  "int8 weight-only|--precision int8 --int8-mode weight-only"
  "int8 dynamic (aipc-int8)|--preset aipc-int8"
  "int8 MatMulNBits|--precision int8 --int8-mode matmulnbits"
  "int4 b32|--precision int4 --block-size 32"
  "mobile-int4|--preset mobile-int4"
  "iot-int4|--preset iot-int4"
  "int4 int8-layers first:1,last:1|--precision int4 --int8-layers first:1,last:1"
  "int4 GatherBlockQuantized embeddings|--precision int4 --quantize-embeddings --embedding-op gatherblockquantized"
  "int4 + 8-bit GatherBlockQuantized emb|--precision int4 --quantize-embeddings --int8-embeddings --embedding-op gatherblockquantized"
  "int8 + 8-bit GatherBlockQuantized emb|--precision int8 --quantize-embeddings --embedding-op gatherblockquantized"
  "openvino-int4|--preset openvino-int4"
)

models=()
for d in "$data"/onnx/*/; do
  m=$(ls "$d"*.onnx 2>/dev/null | head -1)
  [ -n "$m" ] && models+=("$m")
done

printf '%-40s %-38s %s\n' model recipe result
for m in "${models[@]}"; do
  name=$(basename "$(dirname "$m")")
  for entry in "${recipes[@]}"; do
    label=${entry%%|*}
    flags=${entry#*|}
    out="$work/$name/$(echo "$label" | tr -c 'a-zA-Z0-9\n' '_').onnx"
    mkdir -p "$(dirname "$out")"
    # shellcheck disable=SC2086
    if "$quantd" quantize "$m" -o "$out" $flags --quiet 2> "$work/err"; then
      cos=$(node "$compare" --ref "$m" --test "$out" --min-cosine -2 --json 2> "$work/cerr" |
        /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.6f" % min(o["cosine"] for o in r["results"]))' \
        2> /dev/null || echo "ORT failed: $(head -c 120 "$work/cerr")")
      size=$(du -cb "$out"* | tail -1 | cut -f1)
      printf '%-40s %-38s ok  cosine %s  %s bytes\n' "$name" "$label" "$cos" "$size"
    else
      printf '%-40s %-38s refused: %s\n' "$name" "$label" "$(head -n 1 "$work/err" | cut -c1-150)"
    fi
  done
done
