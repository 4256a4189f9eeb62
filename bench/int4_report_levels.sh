#!/usr/bin/env bash
# Whole-file ONNX INT4 (RTN, MatMulNBits bs 32 sym) of the ~1.35 GB FP32
# decoder of int4_large_model.sh at each --report-level, one run each, warm
# page cache, fresh output directories. Prints wall, user and system CPU
# seconds and GB/s of input per CPU second (user + sys: the per-core figure
# on a shared machine). With a second binary (OLD_QUANTD, e.g. a build from
# before the fused report, which takes no --report-level) its default run is
# measured first in the same run.
#
#   bench/int4_report_levels.sh [BUILD_DIR] [WORK_DIR] [THREADS] [OLD_QUANTD]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
work=${2:-$(mktemp -d /tmp/quantd-int4-levels.XXXXXX)}
threads=${3:-1}
old=${4:-}
quantd=$build/server/quantd
mkdir -p "$work"
# shellcheck source=bench/large_decoder.sh
source "$here/large_decoder.sh"
ensure_large_decoder "$work/model.onnx"
in_bytes=$(model_bytes "$work/model.onnx")
cat "$work/model.onnx.data" > /dev/null  # warm the page cache
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)," \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), threads $threads"
run() {  # name binary args...
  local name=$1 bin=$2; shift 2
  rm -rf "$work/out-$name"; mkdir -p "$work/out-$name"
  /usr/bin/time -f "%e %U %S" -o "$work/time-$name.txt" "$bin" quantize "$work/model.onnx" \
    -o "$work/out-$name/model.onnx" --precision int4 --threads "$threads" --quiet "$@"
  read -r wall user sys < "$work/time-$name.txt"
  awk -v n="$name" -v w="$wall" -v u="$user" -v s="$sys" -v b="$in_bytes" 'BEGIN {
    printf "%-14s wall %5.2f s  user %5.2f s  sys %5.2f s  %5.2f GB/s per CPU s (user only %5.2f)\n",
      n, w, u, s, b / 1e9 / (u + s), b / 1e9 / u }'
}
[ -n "$old" ] && run old "$old"
run summary "$quantd" --report-level summary
run full "$quantd" --report-level full
run none "$quantd" --report-level none
if [ -n "$old" ]; then
  cmp "$work/out-old/model.onnx.data" "$work/out-summary/model.onnx.data"
  cmp "$work/out-old/model.onnx" "$work/out-summary/model.onnx"
fi
cmp "$work/out-summary/model.onnx.data" "$work/out-none/model.onnx.data"
cmp "$work/out-summary/model.onnx.data" "$work/out-full/model.onnx.data"
echo "outputs identical"
