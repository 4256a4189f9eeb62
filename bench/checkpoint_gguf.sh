#!/usr/bin/env bash
# Hugging Face checkpoint -> Q4_K_M in one step, against Quantd's own
# F32 GGUF -> Q4_K_M on the same weights (not part of CTest: slow, ~30 GB of
# disk).
#
# Generates (once) a random Phi-3.5-mini-shaped checkpoint with
# bench/make_hf_checkpoint.py (hidden 3072, 32 layers, intermediate 8192,
# vocab 32064, BF16, 2 shards: 7.6 GB; tokenizer files from the shared
# phi3-tiny-shared checkpoint, whose vocabulary has the same size), converts
# it to an F32 GGUF with quantd (15.3 GB), then for each thread count times
#   one step:  quantd quantize CKPT_DIR -o out.gguf --gguf-type Q4_K_M
#   two steps: quantd quantize F32.gguf -o out.gguf --gguf-type Q4_K_M
# (the second step only: what the one-step path adds on top of quantizing)
# with /usr/bin/time -v, the input's page cache warmed before each run, and
# checks that both outputs are the same bytes. Prints wall time, CPU time,
# peak RSS and the one-step / two-step wall-time ratio. Deletes the generated
# files at the end unless CKPT_BENCH_KEEP=1.
#
#   bench/checkpoint_gguf.sh [BUILD_DIR] [WORK_DIR]
#   defaults: BUILD_DIR=build, WORK_DIR=/tmp/quantd-checkpoint-bench
#   environment: CKPT_BENCH_THREADS ("1 2"), CKPT_BENCH_TYPE (Q4_K_M),
#   QUANTD_SHARED_TESTDATA (../shared/testdata), QUANTD_PYTHON
#   (/usr/bin/python3, which has Debian's numpy), CKPT_BENCH_GEN_ARGS (extra
#   make_hf_checkpoint.py flags, e.g. "--layers 2" for a quick trial)
# Needs target quantd built (Release).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-build}"
work="${2:-/tmp/quantd-checkpoint-bench}"
quantd="$build/server/quantd"
py="${QUANTD_PYTHON:-/usr/bin/python3}"
testdata="${QUANTD_SHARED_TESTDATA:-$here/../../shared/testdata}"
type="${CKPT_BENCH_TYPE:-Q4_K_M}"
threads=(${CKPT_BENCH_THREADS:-1 2})
[ -x "$quantd" ] || { echo "missing $quantd: cmake --build $build --target quantd" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package 'time')" >&2; exit 1; }
tok="$testdata/hf/checkpoints/phi3-tiny-shared"
[ -f "$tok/tokenizer.json" ] || { echo "missing $tok (set QUANTD_SHARED_TESTDATA)" >&2; exit 1; }

mkdir -p "$work"
ckpt="$work/Phi-3.5-mini-shaped"
f32="$work/phi35-shaped-f32.gguf"
if [ "${CKPT_BENCH_KEEP:-0}" != 1 ]; then
  trap 'rm -rf "$ckpt" "$f32" "$work"/out-*.gguf' EXIT
fi
need_gb=32
avail_gb=$(df -BG --output=avail "$work" | tail -1 | tr -dc 0-9)
if [ ! -f "$f32" ] && [ "$avail_gb" -lt "$need_gb" ]; then
  echo "$work has ${avail_gb} GB free; the benchmark needs about $need_gb GB" >&2
  exit 1
fi

seconds() {  # wall-clock field of time -v -> seconds
  awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"
}
cpu() { awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.2f", u+s}' "$1"; }
rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$1"; }
warm() { cat "$@" > /dev/null; }

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB RAM"
if [ ! -f "$ckpt/config.json" ]; then
  start=$(date +%s)
  "$py" "$here/make_hf_checkpoint.py" "$ckpt" --tokenizer-from "$tok" ${CKPT_BENCH_GEN_ARGS:-}
  echo "generated $ckpt ($(du -sh "$ckpt" | cut -f1)) in $(( $(date +%s) - start )) s"
fi
if [ ! -f "$f32" ]; then
  /usr/bin/time -v "$quantd" quantize "$ckpt" -o "$f32" --gguf-type F32 --threads 2 --quiet 2> "$work/time-f32.txt"
  echo "checkpoint -> F32 GGUF ($(du -h "$f32" | cut -f1)): $(seconds "$work/time-f32.txt") s wall," \
       "$(cpu "$work/time-f32.txt") s CPU, peak RSS $(rss_mb "$work/time-f32.txt") MB"
fi
echo "load before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

printf '%-28s %4s %9s %9s %12s\n' path threads wall_s cpu_s peak_RSS_MB
for thr in "${threads[@]}"; do
  warm "$ckpt"/*.safetensors
  /usr/bin/time -v "$quantd" quantize "$ckpt" -o "$work/out-one.gguf" --gguf-type "$type" --threads "$thr" \
    --quiet 2> "$work/time-one-$thr.txt"
  warm "$f32"
  /usr/bin/time -v "$quantd" quantize "$f32" -o "$work/out-two.gguf" --gguf-type "$type" --threads "$thr" \
    --quiet 2> "$work/time-two-$thr.txt"
  cmp -s "$work/out-one.gguf" "$work/out-two.gguf" || { echo "FAIL: one-step and two-step outputs differ" >&2; exit 1; }
  for run in one two; do
    log="$work/time-$run-$thr.txt"
    label=$([ "$run" = one ] && echo "checkpoint -> $type" || echo "F32 GGUF -> $type")
    printf '%-28s %4d %9.2f %9.2f %12d\n' "$label" "$thr" "$(seconds "$log")" "$(cpu "$log")" "$(rss_mb "$log")"
  done
  awk -v a="$(seconds "$work/time-one-$thr.txt")" -v b="$(seconds "$work/time-two-$thr.txt")" -v t="$thr" \
    'BEGIN { printf "threads %d: one step / F32 step = %.3f (wall); outputs identical\n", t, a / b }'
  rm -f "$work/out-one.gguf" "$work/out-two.gguf"
done
echo "load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
