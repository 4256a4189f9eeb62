#!/usr/bin/env bash
# GGUF conversion speed against llama-quantize (not part of CTest: slow).
#
# Generates (once) a synthetic llama-shaped F32 model of 247.5 M weights, the
# size llama-quantize was timed on, then runs `quantd quantize` per type with
# --threads 1 and 2 and prints wall time, CPU time (user+sys), the speed-up
# against llama-quantize's single-thread figures (per core: ref / (wall x
# threads)) and per CPU second (the anchor's user + sys CPU / quantd's, the
# fairer figure on a loaded machine), and peak RSS from /usr/bin/time -v.
#
# After each type's 2-thread line it prints the 2-thread speed-up (wall at 1
# thread / wall at 2; 2.00 is perfect) and the CPU overhead of the second
# thread (CPU at 2 / CPU at 1; 1.00 is none). The speed-up only means
# something on an otherwise idle machine; the CPU figures hold under load.
# Then (GGUF_BENCH_FLOOR=0 skips it) the process start-up measured in the
# same run, and the best 2-thread speed-up it leaves.
#
#   bench/gguf_speed.sh [BUILD_DIR] [WORK_DIR]
#   defaults: BUILD_DIR=build, WORK_DIR=/tmp/quantd-gguf-bench
#   QUANTD=/path/to/quantd times another binary (e.g. a build from before a
#   change) with the same model and anchor.
# Needs targets quantd and gguf_gen_model built (Release).
# Environment: GGUF_BENCH_TYPES (types to run), GGUF_BENCH_REPEAT (runs per
# figure, best wall kept), GGUF_BENCH_THREADS (default "1 2"),
# LLAMA_QUANTIZE (measure the anchor in this run), GGUF_BENCH_IMATRIX (an
# importance matrix for both tools; "synthetic" writes one for the model
# with bench/gguf_gen_imatrix.py). With LLAMA_QUANTIZE, the `same` column
# says whether quantd's 1-thread output and llama-quantize's are
# byte-identical (cmp of the whole files).
set -euo pipefail
build="${1:-build}"
work="${2:-/tmp/quantd-gguf-bench}"
quantd="${QUANTD:-$build/server/quantd}"
gen="$build/bench/gguf_gen_model"
for b in "$quantd" "$gen"; do
  [ -x "$b" ] || { echo "missing $b: make -C $build quantd gguf_gen_model" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package 'time')" >&2; exit 1; }
mkdir -p "$work"
work=$(realpath "$work")
model="$work/model-f32.gguf"
[ -f "$model" ] || "$gen" "$model"
cat "$model" > /dev/null  # warm the page cache, as for llama-quantize's runs

# The anchor: llama-quantize (b4747) on the same model, 1 thread. With
# LLAMA_QUANTIZE=/path/to/llama-quantize it runs in this run, right before
# quantd for each type (same load, warm cache; best wall of the repeats);
# without it the figures below are used: written down 2026-11-26 on the same
# machine class (2 vCPU x86-64, AVX2), not re-measured.
declare -A ref=([Q8_0]=1.89 [Q4_0]=2.05 [Q6_K]=7.6 [Q5_K_M]=12.7 [Q4_K_M]=15.1)
declare -A ref_cpu  # measured: llama-quantize's user + sys CPU seconds
declare -A wall_at cpu_at  # this type's best wall / its CPU, per thread count
types=(${GGUF_BENCH_TYPES:-Q8_0 Q4_0 Q6_K Q5_K_M Q4_K_M})
threads=(${GGUF_BENCH_THREADS:-1 2})
llama=${LLAMA_QUANTIZE:-}
imatrix=${GGUF_BENCH_IMATRIX:-}
if [ "$imatrix" = synthetic ]; then
  imatrix="$work/imatrix.dat"
  [ -f "$imatrix" ] || python3 "$(dirname "$0")/gguf_gen_imatrix.py" "$imatrix" > /dev/null
fi
llama_args=() quantd_args=()
if [ -n "$imatrix" ]; then
  # Both tools record the matrix's file name in quantize.imatrix.file:
  # llama-quantize as given, quantd its base name. Run llama-quantize from
  # the work directory on a link named like quantd's base name, so the
  # files can be compared whole.
  imatrix=$(realpath "$imatrix")
  [ "$imatrix" = "$(realpath -m "$work/imatrix.dat")" ] || ln -sf "$imatrix" "$work/imatrix.dat"
  llama_args=(--imatrix imatrix.dat)
  quantd_args=(--imatrix "$work/imatrix.dat")
  echo "importance matrix: $imatrix"
fi
[ -z "$llama" ] || llama=$(realpath "$llama")
model=$(realpath "$model")
wall_of() {  # /usr/bin/time -v log -> seconds
  awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"
}
if [ -n "$llama" ]; then
  echo "anchor: $llama, measured in this run"
else
  echo "anchor: llama-quantize b4747 figures written down 2026-11-26 (set LLAMA_QUANTIZE to measure)"
fi

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %4s %9s %9s %11s %9s %13s %11s %10s %5s\n' type thr wall_s cpu_s llama_s llama_cpu wall_x/core cpu_x peak_RSS_MB same
for t in "${types[@]}"; do
  if [ -n "$llama" ]; then
    lbest=""
    for rep in $(seq "${GGUF_BENCH_REPEAT:-2}"); do
      llog="$work/time-llama-$t-$rep.txt"
      rm -f "$work/llama-$t.gguf"  # freeing an old output is not part of the run
      (cd "$work" && /usr/bin/time -v "$llama" "${llama_args[@]}" "$model" "llama-$t.gguf" "$t" 1 \
        > /dev/null 2> "$llog")
      lw=$(wall_of "$llog")
      if [ -z "$lbest" ] || awk -v a="$lw" -v b="$lbest" 'BEGIN{exit !(a<b)}'; then
        lbest=$lw
        lcpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u+s}' "$llog")
      fi
    done
    ref[$t]=$lbest
    ref_cpu[$t]=$lcpu
  fi
  for thr in "${threads[@]}"; do
    out="$work/out-$t.gguf"
    best=""
    for rep in $(seq "${GGUF_BENCH_REPEAT:-2}"); do
      log="$work/time-$t-$thr-$rep.txt"
      rm -f "$out"
      /usr/bin/time -v "$quantd" quantize "$model" -o "$out" --gguf-type "$t" --threads "$thr" \
        "${quantd_args[@]}" > /dev/null 2> "$log"
      wall=$(wall_of "$log")
      if [ -z "$best" ] || awk -v a="$wall" -v b="$bestwall" 'BEGIN{exit !(a<b)}'; then
        best="$log"
        bestwall="$wall"
      fi
    done
    log="$best"
    wall="$bestwall"
    usr=$(awk -F': ' '/User time/ {print $2}' "$log")
    sys=$(awk -F': ' '/System time/ {print $2}' "$log")
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$log")
    # Without a measured anchor: its recorded wall (idle machine); a type
    # with neither gets "-" in the anchor columns.
    r=${ref[$t]:-}
    rc=${ref_cpu[$t]:-$r}
    same=-
    if [ -n "$llama" ] && [ "$thr" = 1 ]; then
      same=no
      cmp -s "$out" "$work/llama-$t.gguf" && same=yes
    fi
    awk -v t="$t" -v thr="$thr" -v w="$wall" -v u="$usr" -v s="$sys" -v r="$r" -v rc="$rc" -v m="$rss" -v same="$same" \
      'BEGIN { if (r == "") printf "%-8s %4d %9.2f %9.2f %11s %9s %13s %11s %10d %5s\n", t, thr, w, u+s, "-", "-", "-", "-", m, same;
               else printf "%-8s %4d %9.2f %9.2f %11.2f %9.2f %12.1fx %10.1fx %10d %5s\n", t, thr, w, u+s, r, rc, r/(w*thr), rc/(u+s), m, same }'
    wall_at[$thr]=$wall
    cpu_at[$thr]=$(awk -v u="$usr" -v s="$sys" 'BEGIN { print u + s }')
  done
  if [ -n "${wall_at[1]:-}" ] && [ -n "${wall_at[2]:-}" ]; then
    awk -v t="$t" -v w1="${wall_at[1]}" -v w2="${wall_at[2]}" -v c1="${cpu_at[1]}" -v c2="${cpu_at[2]}" \
      'BEGIN { printf "%-8s 2-thread speed-up %.2fx (wall 1 thr / 2 thr), CPU 2 thr / 1 thr %.2f\n", t, w1/w2, c2/c1 }'
    if [ "${GGUF_BENCH_FLOOR:-1}" = 1 ]; then
      # What two threads cannot halve, measured now: the process start-up
      # (best wall of five `quantd --version`). The bound assumes all the
      # rest of the 1-thread wall halves.
      start=""
      for _ in 1 2 3 4 5; do
        s0=$(date +%s.%N)
        "$quantd" --version > /dev/null
        s1=$(date +%s.%N)
        start=$(awk -v a="$s0" -v b="$s1" -v m="$start" 'BEGIN { d = b - a; print (m == "" || d < m) ? d : m }')
      done
      awk -v t="$t" -v w1="${wall_at[1]}" -v s="$start" \
        'BEGIN { printf "%-8s start-up %.3f s; 2-thread bound with everything else halved %.2fx\n", t, s, w1 / (s + (w1 - s) / 2) }'
    fi
  fi
  unset wall_at cpu_at
  declare -A wall_at cpu_at
  rm -f "$work/out-$t.gguf" "$work/llama-$t.gguf"
done
