#!/usr/bin/env bash
# FP16 never corrupts a model silently: a BatchNormalization whose variance is
# beyond FP16's range stays FP32 (named in the report's kept_fp32), and ONNX
# Runtime's output of the FP16 model is within 1e-2 of the FP32 model's;
# --force-fp16 clamps as before and must miss that bound (so the check bites).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${QUANTD_PYTHON:-/usr/bin/python3}
work=$(mktemp -d /tmp/quantd-e2e-fp16range.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$py" "$here/fp16_range_net.py" "$work/model.onnx"
"$QUANTD_BIN" quantize "$work/model.onnx" -o "$work/fp16.onnx" --precision fp16 \
  --report "$work/report.json" --quiet
"$py" - "$work/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
kept = r.get("kept_fp32", [])
assert [(k["node"], k["op"], k["input"]) for k in kept] == [("bn", "BatchNormalization", "var")], kept
assert kept[0]["max_abs"] > 65504, kept
assert r["totals"]["values_clamped"] == 0, r["totals"]
print("ok   kept_fp32:", kept)
PY
node "$here/ort_compare.mjs" --ref "$work/model.onnx" --test "$work/fp16.onnx" --max-abs 1e-2

"$QUANTD_BIN" quantize "$work/model.onnx" -o "$work/forced.onnx" --precision fp16 --force-fp16 --quiet
if node "$here/ort_compare.mjs" --ref "$work/model.onnx" --test "$work/forced.onnx" \
    --max-abs 1e-2 --min-cosine 0; then
  echo "FAIL --force-fp16 output unexpectedly within 1e-2" >&2
  exit 1
fi
echo "ok   --force-fp16 clamps (output off by more than 1e-2, as expected)"
