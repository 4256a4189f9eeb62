#!/usr/bin/env bash
# Hugging Face checkpoint -> a model folder (MLX or ONNX Runtime GenAI; not
# part of CTest: slow, ~10 GB of disk). Generates (once) the random
# Phi-3.5-mini-shaped checkpoint of bench/checkpoint_gguf.sh (hidden 3072,
# 32 layers, intermediate 8192, vocab 32064, BF16, 2 shards: 7.6 GB) and times
#   quantd quantize CKPT_DIR -o OUT/ FORMAT_ARGS... VARIANT_ARGS... --threads T
# with /usr/bin/time -v, the checkpoint's page cache warmed first, for every
# variant and thread count. Prints wall time, CPU time, peak RSS and the
# output size. Deletes what it generated unless CKPT_BENCH_KEEP=1.
# bench/checkpoint_mlx.sh and bench/checkpoint_onnx.sh call it.
#
#   FOLDER_BENCH_FORMAT="--format mlx" FOLDER_BENCH_VARIANTS="--bits 4" \
#     bench/checkpoint_folder.sh [BUILD_DIR] [WORK_DIR]
#   environment: FOLDER_BENCH_FORMAT, FOLDER_BENCH_VARIANTS (variants separated
#   by ";"), CKPT_BENCH_THREADS ("1 2"),
#   QUANTD_SHARED_TESTDATA (../shared/testdata), QUANTD_PYTHON (/usr/bin/python3),
#   CKPT_BENCH_GEN_ARGS (extra make_hf_checkpoint.py flags, e.g. "--layers 2")
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-build}"
work="${2:-/tmp/quantd-folder-bench}"
quantd="$build/server/quantd"
py="${QUANTD_PYTHON:-/usr/bin/python3}"
testdata="${QUANTD_SHARED_TESTDATA:-$here/../../shared/testdata}"
threads=(${CKPT_BENCH_THREADS:-1 2})
IFS=';' read -r -a variants <<< "${FOLDER_BENCH_VARIANTS:-}"
[ "${#variants[@]}" -gt 0 ] || variants=("")
[ -x "$quantd" ] || { echo "missing $quantd: cmake --build $build --target quantd" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package 'time')" >&2; exit 1; }
tok="$testdata/hf/checkpoints/phi3-tiny-shared"
mkdir -p "$work"
ckpt="$work/Phi-3.5-mini-shaped"
if [ "${CKPT_BENCH_KEEP:-0}" != 1 ]; then trap 'rm -rf "$ckpt" "$work"/out-*' EXIT; fi
# make_hf_checkpoint.py's defaults are the Phi-3.5-mini shape.
[ -f "$ckpt/config.json" ] || "$py" "$here/make_hf_checkpoint.py" "$ckpt" --tokenizer-from "$tok" \
  --bos-token-id 1 --eos-token-id 32000 \
  ${CKPT_BENCH_GEN_ARGS:-} >/dev/null

echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')  machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: $(du -sb "$ckpt" | cut -f1) bytes"
echo "command: quantd quantize CKPT -o OUT/ ${FOLDER_BENCH_FORMAT:-} VARIANT --threads T --quiet"
printf '%-32s %4s %8s %8s %12s %14s\n' variant thr wall_s cpu_s peak_RSS_MB output_bytes
for v in "${variants[@]}"; do
  for t in "${threads[@]}"; do
    out="$work/out-$t"
    rm -rf "$out"
    cat "$ckpt"/*.safetensors > /dev/null
    # shellcheck disable=SC2086
    /usr/bin/time -v "$quantd" quantize "$ckpt" -o "$out/" ${FOLDER_BENCH_FORMAT:-} $v \
      --threads "$t" --quiet 2> "$work/time.txt" >/dev/null
    awk -F': ' -v b="${v:-default}" -v t="$t" -v o="$(du -sb "$out" | cut -f1)" '
      /Elapsed \(wall clock\)/ {n=split($2,a,":"); w=0; for(i=1;i<=n;i++) w=w*60+a[i]}
      /User time/ {u=$2} /System time/ {s=$2} /Maximum resident set size/ {r=$2/1024}
      END {printf "%-32s %4s %8.1f %8.1f %12.0f %14s\n", b, t, w, u+s, r, o}' "$work/time.txt"
    rm -rf "$out"
  done
done
