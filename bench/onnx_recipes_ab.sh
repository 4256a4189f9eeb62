#!/usr/bin/env bash
# Whole ONNX jobs per recipe, this build against an older binary, back to
# back: the ~1.35 GB FP32 decoder of large_decoder.sh converted with each
# recipe below (FP16, INT8, INT4 with its variants, the presets), warm page
# cache, one thread (THREADS to change). Each (recipe, binary) runs REPEAT
# times (default 3), the two binaries interleaved; printed per recipe: best
# wall and the CPU seconds (user + sys) of that run for each binary, the
# wall ratio old / new, and whether the outputs are identical (cmp of every
# output file).
#
#   bench/onnx_recipes_ab.sh BUILD_DIR WORK_DIR OLD_QUANTD
# Environment: REPEAT, THREADS, RECIPES (a |-separated list of flag sets
# replacing the default list), INPUT (another model: a Hugging Face
# checkpoint folder, say, with RECIPES such as "--format onnx --precision
# int4|--format mlx"; its output is a folder, compared file by file).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1
work=$2
old=$3
new=$build/server/quantd
repeat=${REPEAT:-3}
threads=${THREADS:-1}
source "$here/large_decoder.sh"
model="$work/model.onnx"
if [ -n "${INPUT:-}" ]; then
  model=$INPUT
  in_bytes=$(du -cb "$model" | tail -1 | cut -f1)
  find "$model" -type f -exec cat {} + > /dev/null
  out_name=result
else
  ensure_large_decoder "$model"
  in_bytes=$(model_bytes "$model")
  cat "$model" "$model.data" > /dev/null
  out_name=model.onnx
fi
default_recipes="--precision fp16|--precision int8|--precision int8 --per-channel|--precision int4|\
--precision int4 --int4-format qdq|--precision int4 --quantize-embeddings|\
--precision int4 --lm-head int4|--preset mobile-int4|--preset openvino-int4|--preset aipc-int8"
IFS='|' read -r -a recipes <<< "${RECIPES:-$default_recipes}"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)," \
  "input $(awk -v b="$in_bytes" 'BEGIN { printf "%.2f", b / 1e9 }') GB," \
  "best of $repeat, --threads $threads"
printf '%-58s %14s %14s %7s %5s\n' recipe "old wall/cpu" "new wall/cpu" "old/new" same
for r in "${recipes[@]}"; do
  read -r -a flags <<< "$r"
  declare -A best=() cpu=()
  for rep in $(seq "$repeat"); do
    for b in old new; do
      bin=$old
      [ "$b" = new ] && bin=$new
      out="$work/ab-$b"
      rm -rf "$out"
      mkdir -p "$out"
      /usr/bin/time -f "%e %U %S" -o "$work/ab-$b.time" "$bin" quantize "$model" \
        -o "$out/$out_name" --threads "$threads" "${flags[@]}" > /dev/null 2> "$work/ab-$b.log"
      t=$(tail -1 "$work/ab-$b.time")
      w=$(echo "$t" | cut -d' ' -f1)
      if [ -z "${best[$b]:-}" ] || awk -v a="$w" -v m="${best[$b]}" 'BEGIN { exit !(a < m) }'; then
        best[$b]=$w
        cpu[$b]=$(echo "$t" | awk '{ printf "%.2f", $2 + $3 }')
      fi
    done
  done
  same=yes
  diff -rq "$work/ab-old" "$work/ab-new" > /dev/null || same=no
  printf '%-58s %14s %14s %6.2fx %5s\n' "$r" "${best[old]} / ${cpu[old]}" \
    "${best[new]} / ${cpu[new]}" "$(awk -v a="${best[old]}" -v b="${best[new]}" 'BEGIN { print a / b }')" "$same"
  unset best cpu
done
rm -rf "$work/ab-old" "$work/ab-new"
echo "load now $(cut -d' ' -f1-3 /proc/loadavg)"
