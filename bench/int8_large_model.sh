#!/usr/bin/env bash
# Whole-file ONNX INT8 weight quantization of the ~1.35 GB FP32 decoder of
# int4_large_model.sh (hidden 2048, 4 layers, MLP 5632, a 2048 x 32000 LM
# head), old and new binary back to back per recipe: the INT4 model alone
# (the anchor), its LM head at INT8, its first layer at INT8, and the whole
# model at INT8, each at --report-level summary and none, for each thread
# count. Prints wall, user and system seconds of each run, the new/old CPU
# ratio, and whether the two outputs (.onnx and .onnx.data) are byte for
# byte the same and their reports' figures agree (largest relative
# difference). Warm page cache; outputs go to WORK_DIR and are deleted once
# compared (one old/new pair, up to 2.8 GB, on disk at a time).
#
#   bench/int8_large_model.sh OLD_QUANTD NEW_QUANTD [MODEL_DIR] [WORK_DIR] [THREADS...]
#
# MODEL_DIR holds model.onnx + model.onnx.data (generated there when absent);
# it is only read.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
old=$(realpath "$1")
new=$(realpath "$2")
model_dir=${3:-/tmp/quantd-int8-model}
work=${4:-$(mktemp -d /tmp/quantd-int8-large.XXXXXX)}
shift $(( $# < 4 ? $# : 4 ))
threads_list=("${@:-1}")
mkdir -p "$work" "$model_dir"
model=$model_dir/model.onnx
# shellcheck source=bench/large_decoder.sh
source "$here/large_decoder.sh"
ensure_large_decoder "$model"
cat "$model.data" > /dev/null  # warm the page cache
recipes=(
  "int4:--precision int4 --block-size 32"
  "lmhead8:--precision int4 --block-size 32 --lm-head int8"
  "layers8:--precision int4 --block-size 32 --int8-layers first:1"
  "int8:--precision int8"
)
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores," \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "old $old"
echo "new $new"
for threads in "${threads_list[@]}"; do
  for r in "${recipes[@]}"; do
    name=${r%%:*}
    for level in summary none; do
      declare -A cpu=()
      for which in old new; do
        bin=$old
        [ "$which" = new ] && bin=$new
        out=$work/$name.$level.t$threads.$which
        rm -rf "$out"; mkdir -p "$out"
        # shellcheck disable=SC2086
        /usr/bin/time -f "%e %U %S" -o "$out/time.txt" "$bin" quantize "$model" \
          -o "$out/model.onnx" ${r#*:} --report-level "$level" --threads "$threads" --quiet \
          --report "$out/report.json"
        read -r wall user sys < "$out/time.txt"
        cpu[$which]=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')
        printf "%-8s %-7s t%s %-3s wall %5.2f s  user %5.2f s  sys %5.2f s  load %s\n" \
          "$name" "$level" "$threads" "$which" "$wall" "$user" "$sys" "$(cut -d' ' -f1 /proc/loadavg)"
      done
      a=$work/$name.$level.t$threads.old
      b=$work/$name.$level.t$threads.new
      same=different
      cmp -s "$a/model.onnx" "$b/model.onnx" && cmp -s "$a/model.onnx.data" "$b/model.onnx.data" &&
        same=identical
      figures=$(/usr/bin/python3 - "$a/report.json" "$b/report.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
worst = 0.0
for x, y in zip(a["tensors"], b["tensors"]):
    for k, v in x.items():
        if isinstance(v, float) and k != "seconds":
            w = y.get(k)
            worst = max(worst, abs(v - w) / abs(v) if v else abs(w or 0.0))
print(f"{worst:.1e}")
EOF
)
      rm -f "$a"/model.onnx* "$b"/model.onnx*  # up to 1.4 GB each: keep only the figures
      awk -v n="$name" -v l="$level" -v t="$threads" -v o="${cpu[old]}" -v w="${cpu[new]}" \
        -v s="$same" -v f="$figures" 'BEGIN {
          printf "%-8s %-7s t%s new/old CPU %.2f (%.2f / %.2f s)  outputs %s  report figures max rel diff %s\n",
            n, l, t, w / o, w, o, s, f }'
    done
  done
done
