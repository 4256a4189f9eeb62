#!/usr/bin/env bash
# Generates a >= 1 GiB FP32 decoder with external data, converts it to FP16
# with `quantd quantize`, prints wall time and peak RSS (/usr/bin/time -v)
# next to the memory bound (256 MiB + 2 x the largest tensor).
#
#   bench/fp16_large_model.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
work=${2:-$(mktemp -d /tmp/quantd-bench-large.XXXXXX)}
quantd=$build/server/quantd
mkdir -p "$work"
if [ ! -f "$work/decoder.onnx" ]; then
  echo "generating a ~1.2 GB FP32 decoder in $work ..."
  /usr/bin/python3 "$here/../tests/e2e/gen_models.py" "$work" --decoder-dim 2048 --layers 4 \
    --vocab 32000 --ff 5632 --external > /dev/null
fi
in_bytes=$(( $(stat -c %s "$work/decoder.onnx") + $(stat -c %s "$work/decoder.onnx.data") ))
largest=$(( 32000 * 2048 * 4 ))   # embed / lm_head, FP32
/usr/bin/time -v "$quantd" quantize "$work/decoder.onnx" -o "$work/decoder-fp16.onnx" \
  --precision fp16 --quiet 2> "$work/time.txt"
wall=$(grep "Elapsed (wall clock)" "$work/time.txt" | awk '{print $NF}')
rss_kb=$(grep "Maximum resident set size" "$work/time.txt" | awk '{print $NF}')
out_bytes=$(( $(stat -c %s "$work/decoder-fp16.onnx") + $(stat -c %s "$work/decoder-fp16.onnx.data") ))
bound=$(( 256 * 1024 * 1024 + 2 * largest ))
mib() { awk -v b="$1" 'BEGIN { printf "%8.1f", b / 1048576 }'; }
echo "input            $(mib "$in_bytes") MiB (FP32, external data)"
echo "output           $(mib "$out_bytes") MiB (FP16)"
echo "wall time        $wall"
echo "peak RSS         $(mib $(( rss_kb * 1024 ))) MiB"
echo "bound            $(mib "$bound") MiB (256 MiB + 2 x largest tensor $(mib "$largest") MiB)"
if [ "$(( rss_kb * 1024 ))" -le "$bound" ]; then echo "within bound"; else echo "OVER BOUND"; fi
