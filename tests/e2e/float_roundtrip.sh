#!/usr/bin/env bash
# End-to-end FP16/FP32 conversion of one model, checked in real ONNX Runtime.
#
#   float_roundtrip.sh MODEL.onnx
#
# 1. quantd quantize MODEL -> FP16; ORT cosine vs the original >= 0.999 per
#    output; element types checked (nothing that must stay FP32 became FP16,
#    graph I/O types kept).
# 2. that FP16 model -> FP32; same checks against the original.
# 3. MODEL -> FP32 directly (widens FP16/BF16 originals); same checks.
# 4. that FP32 model -> FP16 again (a real FP32 -> FP16 conversion even for
#    FP16 originals such as the external-data Llama); same checks.
# 5. MODEL -> FP16 with --no-keep-io-types (graph I/O becomes FP16 too).
# Needs QUANTD_BIN; uses /usr/bin/python3 (Debian's onnx) and node.
set -euo pipefail
model=$1
here=$(cd "$(dirname "$0")" && pwd)
py=${QUANTD_PYTHON:-/usr/bin/python3}
work=$(mktemp -d /tmp/quantd-e2e-float.XXXXXX)
trap 'rm -rf "$work"' EXIT

block=$("$QUANTD_BIN" presets --json | "$py" -c 'import json,sys; print(",".join(json.load(sys.stdin)["fp16_op_block_list"]))')
min=0.999

step() { echo "== $*"; }
# Nodes the FP16 conversion kept in FP32 (constants beyond FP16's range).
kept() { "$py" -c 'import json,sys; print(",".join(k["node"] for k in json.load(open(sys.argv[1])).get("kept_fp32", [])))' "$1"; }

step "fp16: $model"
"$QUANTD_BIN" quantize "$model" -o "$work/fp16.onnx" --precision fp16 --report "$work/fp16.json" --quiet
node "$here/ort_compare.mjs" --ref "$model" --test "$work/fp16.onnx" --min-cosine $min
"$py" "$here/check_types.py" "$model" "$work/fp16.onnx" --precision fp16 --block-list "$block" --node-block-list "$(kept "$work/fp16.json")"
"$py" -c 'import json,sys; r=json.load(open(sys.argv[1])); t=r["totals"]; print("report:", {k: t[k] for k in ("tensors_converted","bytes_before","bytes_after","values_clamped","values_flushed","casts_inserted")})' "$work/fp16.json"

step "fp16 -> fp32"
"$QUANTD_BIN" quantize "$work/fp16.onnx" -o "$work/back.onnx" --precision fp32 --quiet
node "$here/ort_compare.mjs" --ref "$model" --test "$work/back.onnx" --min-cosine $min
"$py" "$here/check_types.py" "$model" "$work/back.onnx" --precision fp32

step "fp32 directly"
"$QUANTD_BIN" quantize "$model" -o "$work/fp32.onnx" --precision fp32 --quiet
node "$here/ort_compare.mjs" --ref "$model" --test "$work/fp32.onnx" --min-cosine $min
"$py" "$here/check_types.py" "$model" "$work/fp32.onnx" --precision fp32

step "fp32 -> fp16"
"$QUANTD_BIN" quantize "$work/fp32.onnx" -o "$work/fp16b.onnx" --precision fp16 --report "$work/fp16b.json" --quiet
node "$here/ort_compare.mjs" --ref "$model" --test "$work/fp16b.onnx" --min-cosine $min
"$py" "$here/check_types.py" "$work/fp32.onnx" "$work/fp16b.onnx" --precision fp16 --block-list "$block" --node-block-list "$(kept "$work/fp16b.json")"

step "fp16 --no-keep-io-types"
"$QUANTD_BIN" quantize "$model" -o "$work/fp16io.onnx" --precision fp16 --no-keep-io-types --report "$work/fp16io.json" --quiet
node "$here/ort_compare.mjs" --ref "$model" --test "$work/fp16io.onnx" --min-cosine $min
"$py" "$here/check_types.py" "$model" "$work/fp16io.onnx" --precision fp16 --no-keep-io-types --block-list "$block" --node-block-list "$(kept "$work/fp16io.json")"
echo "PASS $model"
