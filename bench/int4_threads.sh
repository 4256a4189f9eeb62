#!/usr/bin/env bash
# Whole-job ONNX INT4 (RTN, MatMulNBits, block 32, symmetric, LM head and
# embedding kept FP32 as by default) of the ~1.35 GB FP32 decoder of
# int4_large_model.sh at 1 and 2 threads, back to back, for this build and
# optionally an older binary in the same run:
#
#   quantd quantize model.onnx -o out.onnx --precision int4 --threads N
#
# Each (binary, report level, threads) runs REPEAT times (default 3), fresh
# output folder, warm page cache; the best wall time and the CPU seconds
# (user + sys) of that run are kept. Printed per binary and report level:
# wall and CPU at 1 and 2 threads, the 2-thread speed-up (wall 1 / wall 2;
# 2.00 is perfect and only means something on an otherwise idle machine),
# the CPU ratio (CPU 2 / CPU 1; 1.00: the second thread costs no extra
# work) and GB of input per CPU second at 1 thread (the per-core figure).
# Every output is compared (cmp) with the first binary's 1-thread output.
#
#   bench/int4_threads.sh [BUILD_DIR] [WORK_DIR] [OLD_QUANTD]
# Environment: REPEAT (runs per figure), LEVELS (report levels, default
# "summary none"), EXTRA (more quantize flags, e.g. "--lm-head int8", the
# recipe of int4_large_model.sh), OUT_DIR (where the outputs go, default
# /tmp; a tmpfs such as /dev/shm takes the disk out of the figures),
# ANCHOR (default 1: after the table, the time dd takes to put as many bytes
# as the output folder holds on the same disk, O_DIRECT in 4 MiB requests
# and buffered with fsync, best of REPEAT: a 2-thread job near it waits for
# the disk, not for its threads).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
work=${2:-/tmp/writer-int4}
old=${3:-}
repeat=${REPEAT:-3}
levels=${LEVELS:-summary none}
read -r -a extra <<< "${EXTRA:-}"
mkdir -p "$work"
# shellcheck source=bench/large_decoder.sh
source "$here/large_decoder.sh"
# shellcheck source=bench/disk_anchor.sh
source "$here/disk_anchor.sh"
ensure_large_decoder "$work/model.onnx"
in_bytes=$(model_bytes "$work/model.onnx")
cat "$work/model.onnx.data" > /dev/null  # warm the page cache
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)," \
  "input $(awk -v b="$in_bytes" 'BEGIN { printf "%.2f GB", b / 1e9 }'), best of $repeat," \
  "flags: --precision int4 ${EXTRA:-}"
bins=()
[ -n "$old" ] && bins+=("old:$old")
bins+=("new:$build/server/quantd")
out=$(mktemp -d "${OUT_DIR:-/tmp}/quantd-int4-threads.XXXXXX")
trap 'rm -rf "$out"' EXIT
run() {  # name binary level threads -> prints "wall cpu"
  local name=$1 bin=$2 level=$3 threads=$4 best_wall="" best_cpu=""
  for _ in $(seq "$repeat"); do
    rm -rf "$out/$name"; mkdir -p "$out/$name"
    /usr/bin/time -f "%e %U %S" -o "$out/time.txt" "$bin" quantize "$work/model.onnx" \
      -o "$out/$name/model.onnx" --precision int4 --threads "$threads" --report-level "$level" \
      --quiet ${extra[@]+"${extra[@]}"}
    read -r wall user sys < "$out/time.txt"
    if [ -z "$best_wall" ] || awk -v a="$wall" -v b="$best_wall" 'BEGIN { exit !(a < b) }'; then
      best_wall=$wall best_cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')
    fi
  done
  echo "$best_wall $best_cpu"
}
printf "%-4s %-8s %8s %8s %8s %8s %9s %9s %11s\n" bin level wall1 cpu1 wall2 cpu2 speed-up cpu-ratio "GB/s/cpu-s"
for level in $levels; do
  for entry in "${bins[@]}"; do
    name=${entry%%:*} bin=${entry#*:}
    read -r w1 c1 < <(run "$name-$level-1" "$bin" "$level" 1)
    read -r w2 c2 < <(run "$name-$level-2" "$bin" "$level" 2)
    awk -v n="$name" -v l="$level" -v w1="$w1" -v c1="$c1" -v w2="$w2" -v c2="$c2" -v b="$in_bytes" \
      'BEGIN { printf "%-4s %-8s %8.2f %8.2f %8.2f %8.2f %8.2fx %9.2f %11.2f\n",
               n, l, w1, c1, w2, c2, w1 / w2, c2 / c1, b / 1e9 / c1 }'
  done
done
if [ "${ANCHOR:-1}" = 1 ]; then
  sample=$(find "$out" -mindepth 1 -maxdepth 1 -type d | head -1)
  bytes=$(du -cb "$sample"/* | tail -1 | cut -f1)
  for mode in direct1 buffered; do
    best=""
    for _ in $(seq "$repeat"); do
      sync; sleep 0.2
      ms=$(($(disk_anchor_us "$mode" "$out/anchor.bin" "$bytes") / 1000))
      if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
    done
    echo "anchor: $(awk -v b="$bytes" 'BEGIN { printf "%.0f MB", b / 1e6 }') (the output's size) to the same disk by dd, $mode: best ${best} ms"
  done
fi
first=""
for d in "$out"/*/; do
  if [ -z "$first" ]; then first=$d; continue; fi
  cmp "$first/model.onnx.data" "$d/model.onnx.data"
  cmp "$first/model.onnx" "$d/model.onnx"
done
echo "outputs identical; load now $(cut -d' ' -f1-3 /proc/loadavg)"
