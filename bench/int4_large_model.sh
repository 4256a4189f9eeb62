#!/usr/bin/env bash
# Generates a >= 1 GiB FP32 decoder with external data (realistic weights,
# tests/e2e/int_make_decoder.py), quantizes it to INT4 (MatMulNBits, block 32,
# symmetric; LM head INT8) with `quantd quantize`, prints wall time and peak
# RSS (/usr/bin/time -v) next to the memory bound (256 MiB + 2 x the largest
# tensor), then runs both models in ONNX Runtime and prints the logits cosine.
#
#   bench/int4_large_model.sh [BUILD_DIR] [WORK_DIR] [THREADS]
# THREADS may be a list ("1 2"): the conversion runs once per count, each
# printing wall and CPU (user + sys) seconds, and then the speed-up of the
# last count over the first (wall) and the CPU ratio (CPU last / first; 1.00:
# the extra threads cost no extra work). The speed-up only means something
# on an otherwise idle machine. QUANTD=/path/to/quantd times another binary;
# SKIP_ORT=1 skips the ONNX Runtime comparison.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
work=${2:-$(mktemp -d /tmp/quantd-int4-large.XXXXXX)}
threads_list=${3:-$(nproc)}
quantd=${QUANTD:-$build/server/quantd}
mkdir -p "$work"
# shellcheck source=bench/large_decoder.sh
source "$here/large_decoder.sh"
ensure_large_decoder "$work/model.onnx"
in_bytes=$(model_bytes "$work/model.onnx")
largest=$(( 32000 * 2048 * 4 ))   # embedding / lm_head, FP32
mkdir -p "$work/int4"
cat "$work/model.onnx.data" > /dev/null  # warm the page cache
first_wall="" first_cpu="" first_threads=""
for threads in $threads_list; do
  rm -f "$work/int4/model.onnx" "$work/int4/model.onnx.data"
  /usr/bin/time -v "$quantd" quantize "$work/model.onnx" -o "$work/int4/model.onnx" \
    --precision int4 --block-size 32 --lm-head int8 --threads "$threads" \
    --report "$work/int4/report.json" --quiet 2> "$work/time.txt"
  wall=$(grep "Elapsed (wall clock)" "$work/time.txt" | awk '{print $NF}')
  wall_s=$(echo "$wall" | awk -F: '{s=0; for(i=1;i<=NF;i++) s=s*60+$i; print s}')
  cpu_s=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u+s}' "$work/time.txt")
  rss_mib=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$work/time.txt")
  echo "threads $threads: wall $wall_s s, CPU $cpu_s s, peak RSS $rss_mib MiB"
  if [ -z "$first_wall" ]; then
    first_wall=$wall_s first_cpu=$cpu_s first_threads=$threads
  else
    awk -v a="$first_threads" -v b="$threads" -v w1="$first_wall" -v w2="$wall_s" -v c1="$first_cpu" \
      -v c2="$cpu_s" 'BEGIN { printf "speed-up %s -> %s threads: %.2fx (wall), CPU ratio %.2f\n", a, b, w1/w2, c2/c1 }'
  fi
done
rss_kb=$(grep "Maximum resident set size" "$work/time.txt" | awk '{print $NF}')
out_bytes=$(( $(stat -c %s "$work/int4/model.onnx") + $(stat -c %s "$work/int4/model.onnx.data") ))
bound=$(( 256 * 1024 * 1024 + 2 * largest ))
mib() { awk -v b="$1" 'BEGIN { printf "%8.1f", b / 1048576 }'; }
echo "input            $(mib "$in_bytes") MiB (FP32, external data)"
echo "output           $(mib "$out_bytes") MiB (INT4 MatMulNBits, LM head INT8)"
echo "threads          $threads"
echo "wall time        $wall"
echo "peak RSS         $(mib $(( rss_kb * 1024 ))) MiB"
echo "bound            $(mib "$bound") MiB (256 MiB + 2 x largest tensor $(mib "$largest") MiB)"
if [ "$(( rss_kb * 1024 ))" -le "$bound" ]; then echo "within bound"; else echo "OVER BOUND"; fi
/usr/bin/python3 - "$work/int4/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = r["totals"]
print(f"tensors quantized {t['tensors_converted']}, compression {t['compression_ratio']:.2f}x, "
      f"quantize time {t['seconds']:.1f} s")
print("worst tensors:", ", ".join(f"{w['name']} {w['sqnr_db']:.2f} dB" for w in r["worst_tensors"][:3]))
PY
if [ "${SKIP_ORT:-0}" != 1 ]; then
  node "$here/../tests/e2e/ort_compare.mjs" --ref "$work/model.onnx" --test "$work/int4/model.onnx" \
    --min-cosine 0.95 --seq 4 || true
fi
