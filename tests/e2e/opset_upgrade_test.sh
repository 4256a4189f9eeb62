#!/usr/bin/env bash
# Quantizing an opset-9 model whose ops changed meaning after 9 (Slice and
# Clip attributes, Upsample, BatchNormalization, Constant nodes; opset9_net.py)
# converts it with ONNX's version converter, and ONNX Runtime's outputs of the
# result agree with the opset-9 original:
#   - converted, nothing quantized (--min-tensor-elements above every weight):
#     every output within float rounding (max |diff| <= 1e-5; measured 0);
#   - INT8 weight-only (opset 10, per-channel 13) and dynamic (11): the
#     MatMul/Gemm output y within INT8 rounding error, the Upsample outputs
#     (no weight) within float rounding;
#   - INT4 QDQ (converted to 17, then raised to 21): y within INT4 error.
# Tolerances for y: INT8 rounding moves a weight by at most max|W|/254, 0.4%
# of the largest weight; through three layers that is 1-2% of max|y| (about
# 1.3 here). So cosine >= 0.999 (int.cmake's INT8 floor) and max |diff| <=
# 0.05 (measured worst 0.026); INT4 cosine >= 0.98 (int.cmake's INT4 floor)
# and max |diff| <= 0.3 (measured 0.154).
# Also: the report says the opset was converted, and from where to where.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${QUANTD_PYTHON:-/usr/bin/python3}
work=$(mktemp -d /tmp/quantd-e2e-opset.XXXXXX)
trap 'rm -rf "$work"' EXIT

"$py" "$here/opset9_net.py" "$work/net9.onnx"

# name|opset after|y min cosine|y max abs|quantd flags (comma-separated)
configs=(
  "converted_int8|10|0.999999|1e-5|--precision,int8,--min-tensor-elements,1000000000"
  "converted_dynamic|11|0.999999|1e-5|--precision,int8,--int8-mode,dynamic,--min-tensor-elements,1000000000"
  "converted_per_channel|13|0.999999|1e-5|--precision,int8,--per-channel,--min-tensor-elements,1000000000"
  "int8_weight_only|10|0.999|0.05|--precision,int8"
  "int8_weight_only_per_channel|13|0.999|0.05|--precision,int8,--per-channel"
  "int8_dynamic|11|0.999|0.05|--precision,int8,--int8-mode,dynamic"
  "int8_dynamic_per_channel|11|0.999|0.05|--precision,int8,--int8-mode,dynamic,--per-channel"
  "int4_qdq|21|0.98|0.3|--precision,int4,--int4-format,qdq"
)
for c in "${configs[@]}"; do
  IFS='|' read -r name opset min maxabs flags <<<"$c"
  IFS=',' read -r -a args <<<"$flags"
  echo "== $name"
  "$QUANTD_BIN" quantize "$work/net9.onnx" -o "$work/$name.onnx" --report "$work/$name.json" \
    --quiet "${args[@]}"
  "$py" - "$work/$name.json" "$work/$name.onnx" "$opset" <<'PY'
import json, sys
import onnx
report, model, opset = sys.argv[1], sys.argv[2], int(sys.argv[3])
notes = json.load(open(report))["notes"]
converted = [n for n in notes if n.startswith("converted the default opset from 9 to ")]
assert converted and "ONNX version converter" in converted[0], notes
m = onnx.load(model, load_external_data=False)
got = [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")]
assert got == [opset], (got, opset)
ops = {n.op_type for n in m.graph.node}
assert "Upsample" not in ops and "Resize" in ops, ops
print("ok  ", converted[0])
PY
  node "$here/ort_compare.mjs" --ref "$work/net9.onnx" --test "$work/$name.onnx" \
    --outputs y --min-cosine "$min" --max-abs "$maxabs"
  node "$here/ort_compare.mjs" --ref "$work/net9.onnx" --test "$work/$name.onnx" \
    --outputs up_nearest,up_linear --min-cosine 0.999999 --max-abs 1e-5
done

# The check bites: quantized y is not within float rounding of the original.
if node "$here/ort_compare.mjs" --ref "$work/net9.onnx" --test "$work/int8_weight_only.onnx" \
    --outputs y --max-abs 1e-5 >/dev/null; then
  echo "FAIL INT8 output unexpectedly within 1e-5" >&2
  exit 1
fi
echo "ok   INT8 output differs from the float one beyond 1e-5, as it must"
