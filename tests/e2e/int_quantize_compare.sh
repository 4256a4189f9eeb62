#!/bin/bash
# Quantizes MODEL with `quantd quantize` and compares it with the original in
# ONNX Runtime (ort_compare.mjs): every output's cosine must reach MIN_COSINE.
#
#   int_quantize_compare.sh MODEL OUT_DIR MIN_COSINE [quantd flags...]
#
# Env: QUANTD_BIN (quantd), QUANTD_SOURCE_DIR (repo). Prints the report's
# worst tensors and the cosines; exit code from ort_compare (0 = pass).
set -euo pipefail
model=$1 out=$2 min=$3
shift 3
mkdir -p "$out"
rm -f "$out"/model.onnx "$out"/model.onnx.data
"$QUANTD_BIN" quantize "$model" -o "$out/model.onnx" --report "$out/report.json" "$@"
node "$QUANTD_SOURCE_DIR/tests/e2e/ort_compare.mjs" --ref "$model" --test "$out/model.onnx" \
  --min-cosine "$min" --seq "${INT_SEQ:-4}"
