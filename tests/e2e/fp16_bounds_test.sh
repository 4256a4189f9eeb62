#!/usr/bin/env bash
# FP16 keeps in FP32 the nodes whose activations are statically known to leave
# FP16's range and the nodes whose constants flush to zero (the report's
# kept_fp32, with a reason), and ONNX Runtime's outputs of the FP16 models are
# finite and within 1e-2 (relative to the largest reference value) of the FP32
# models'; --force-fp16 converts everything and must miss that bound.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${QUANTD_PYTHON:-/usr/bin/python3}
work=$(mktemp -d /tmp/quantd-e2e-fp16bounds.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$py" "$here/fp16_bounds_net.py" "$work"

# name:expected kept_fp32 as node/reason,...
cases=(
  "amplify:t/constant_out_of_range,v/activation_out_of_range,w/activation_out_of_range,z/activation_out_of_range"
  "underflow:var_eps/underflow,rms/underflow,normed/underflow,d/underflow,e/underflow"
)
for c in "${cases[@]}"; do
  name=${c%%:*} want=${c#*:}
  echo "== $name"
  "$QUANTD_BIN" quantize "$work/$name.onnx" -o "$work/$name.fp16.onnx" --precision fp16 \
    --report "$work/$name.json" --quiet
  "$py" - "$work/$name.json" "$want" <<'PY'
import json, sys
kept = json.load(open(sys.argv[1])).get("kept_fp32", [])
got = ",".join(f'{k["node"]}/{k["reason"]}' for k in kept)
assert got == sys.argv[2], f"kept_fp32 {got} != {sys.argv[2]}"
print("ok   kept_fp32:", got)
PY
  node "$here/ort_compare.mjs" --ref "$work/$name.onnx" --test "$work/$name.fp16.onnx" --max-rel 1e-2
  "$QUANTD_BIN" quantize "$work/$name.onnx" -o "$work/$name.forced.onnx" --precision fp16 \
    --force-fp16 --quiet
  if node "$here/ort_compare.mjs" --ref "$work/$name.onnx" --test "$work/$name.forced.onnx" \
      --max-rel 1e-2 --min-cosine 0; then
    echo "FAIL $name: --force-fp16 output unexpectedly within 1e-2" >&2
    exit 1
  fi
  echo "ok   $name: --force-fp16 output is off by more than 1e-2 (or not finite), as expected"
done
