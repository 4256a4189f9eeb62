#!/usr/bin/env bash
# Before/after speed of two builds of Quantd, measured in one run with the
# two builds interleaved (so machine load affects both alike):
#   * INT4 RTN kernel (bench int4_bench, block 32 symmetric, 1 thread): GB/s
#     of FP32 input, and the same run's memcpy GB/s;
#   * GGUF Q4_K_M and Q8_0 conversion of a 247.5 M-weight F32 model
#     (bench gguf_gen_model), 1 and 2 threads: wall and CPU seconds.
# Prints medians per build and the ratio new/old.
#
#   bench/compare_builds.sh OLD_BUILD_DIR NEW_BUILD_DIR [REPEATS]
# Each BUILD_DIR needs server/quantd, bench/int4_bench, bench/gguf_gen_model.
set -euo pipefail
old=$(realpath "$1"); new=$(realpath "$2"); reps=${3:-3}
work=${COMPARE_WORK_DIR:-/tmp/quantd-compare}
mkdir -p "$work"
model="$work/model-f32.gguf"
[ -f "$model" ] || "$new/bench/gguf_gen_model" "$model" >/dev/null
cat "$model" >/dev/null

echo "date: $(date -u +%FT%TZ)  machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A vals
filter='BM_(Memcpy|Int4Rtn/bs:32/sym:1/qdq:0/threads:1)/'
for rep in $(seq "$reps"); do
  for side in old new; do
    dir=${!side}
    "$dir/bench/int4_bench" --benchmark_filter="$filter" --benchmark_format=json 2>/dev/null |
      /usr/bin/python3 -c '
import json, sys
for b in json.load(sys.stdin)["benchmarks"]:
    key = "memcpy_GBps" if b["name"].startswith("BM_Memcpy") else "int4_rtn_GBps"
    print(sys.argv[1], key, b["bytes_per_second"] / 1e9)' "$side" >> "$work/vals.txt"
    for t in Q4_K_M Q8_0; do
      for thr in 1 2; do
        /usr/bin/time -f "%e %U %S" -o "$work/time.txt" "$dir/server/quantd" quantize "$model" \
          -o "$work/out.gguf" --gguf-type "$t" --threads "$thr" >/dev/null 2>&1
        read -r wall usr sys < "$work/time.txt"
        echo "$side ${t}_t${thr}_wall_s $wall" >> "$work/vals.txt"
        echo "$side ${t}_t${thr}_cpu_s $(echo "$usr + $sys" | bc)" >> "$work/vals.txt"
        rm -f "$work/out.gguf"
      done
    done
  done
done
/usr/bin/python3 - "$work/vals.txt" <<'PY'
import sys, statistics, collections
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    side, key, x = line.split()
    v[(side, key)].append(float(x))
keys = sorted({k for _, k in v}, key=lambda k: (not k.startswith(("memcpy", "int4")), k))
print(f"{'metric':22} {'old (median)':>13} {'new (median)':>13} {'new/old':>8}")
for k in keys:
    o, n = statistics.median(v[("old", k)]), statistics.median(v[("new", k)])
    print(f"{k:22} {o:13.3f} {n:13.3f} {n / o:8.3f}")
PY
rm -f "$work/vals.txt"
