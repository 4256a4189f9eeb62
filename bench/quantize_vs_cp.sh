#!/usr/bin/env bash
# A cold `quantctl quantize` of a ~1.35 GB FP32 ONNX decoder (external data)
# to INT4 through a local `quantd serve` (upload -> INT4 job -> download),
# side by side with `cp + sync` of the same files, REPEATS times each; prints
# every run (with its phases: upload, job and the job's store phase, download;
# and the server's CPU time) and the medians, and the machine's load average.
#
# Cold: when the script may write /proc/sys/vm/drop_caches (root), the page
# cache is dropped before every timed run; otherwise the runs are warm-cache
# and the script says so. Each quantize run gets a fresh server data
# directory, so nothing is deduplicated across runs.
#
#   bench/quantize_vs_cp.sh [BUILD_DIR] [WORK_DIR] [REPEATS] [QUANTCTL_FLAGS...]
#
# QUANTCTL_FLAGS go to quantctl before the command (e.g. --hash-first, to time
# the hash-then-upload path).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
work=${2:-$(mktemp -d /tmp/quantd-vs-cp.XXXXXX)}
repeats=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
extra_flags=("$@")
quantd=$build/server/quantd
quantctl=$build/client/quantctl/quantctl
mkdir -p "$work"
# shellcheck source=bench/large_decoder.sh
source "$here/large_decoder.sh"
ensure_large_decoder "$work/model.onnx"
in_bytes=$(model_bytes "$work/model.onnx")

cold=0
drop_caches() {
  sync
  if [ "$cold" = 1 ]; then echo 3 > /proc/sys/vm/drop_caches; fi
}
if (sync && echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then cold=1; fi

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap stop_server EXIT

cp_times=()
q_times=()
for i in $(seq 1 "$repeats"); do
  # cp + sync of the same files.
  rm -rf "$work/cp"
  mkdir -p "$work/cp"
  drop_caches
  t0=$(now)
  cp "$work/model.onnx" "$work/model.onnx.data" "$work/cp/"
  sync -f "$work/cp/model.onnx.data"
  t1=$(now)
  cp_times+=("$(echo "$t1 - $t0" | bc -l)")
  rm -rf "$work/cp"

  # A fresh server, then upload -> INT4 -> download.
  rm -rf "$work/data" "$work/out"
  mkdir -p "$work/out"
  "$quantd" serve --listen 127.0.0.1:0 --data-dir "$work/data" --port-file "$work/port" \
    --workers 1 --min-free-bytes 1G > "$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do [ -s "$work/port" ] && break; sleep 0.1; done
  port=$(cat "$work/port")
  drop_caches
  t0=$(now)
  "$quantctl" --server "127.0.0.1:$port" "${extra_flags[@]}" quantize "$work/model.onnx" \
    -o "$work/out/model.onnx" --precision int4 --block-size 32 --lm-head int8 \
    2> >(while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done \
           > "$work/quantctl.$i.log") > /dev/null
  t1=$(now)
  q_times+=("$(echo "$t1 - $t0" | bc -l)")
  # The server's CPU time (user + system, all threads) over its whole life.
  server_cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' \
    "/proc/$server_pid/stat")
  stop_server
  rm -f "$work/port"
  sleep 0.2  # the time-stamping loop's last lines
  # Phases from the time-stamped progress lines: upload, job (of which the
  # store phase: the artifact's manifest and commit), download.
  phases=$(awk -v t0="$t0" -v t1="$t1" '
    / upload: done/ { up = $1 } / RUNNING \(store\)/ { store = $1 } / SUCCEEDED/ { job = $1 }
    END { if (up && job) printf "(upload %.2f, job %.2f [store %.2f], download %.2f)", up - t0,
          job - up, store ? job - store : 0, t1 - job }' \
    "$work/quantctl.$i.log")
  printf 'run %d: cp+sync %6.2f s   quantctl quantize %6.2f s %s server CPU %s s\n' "$i" \
    "${cp_times[-1]}" "${q_times[-1]}" "$phases" "$server_cpu"
done
out_bytes=$(( $(stat -c %s "$work/out/model.onnx") + $(stat -c %s "$work/out/model.onnx.data") ))
cp_med=$(printf '%s\n' "${cp_times[@]}" | median)
q_med=$(printf '%s\n' "${q_times[@]}" | median)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
echo "input     $(mib "$in_bytes") MiB FP32 ONNX (+ external data); output $(mib "$out_bytes") MiB INT4"
echo "cache     $([ "$cold" = 1 ] && echo "cold (drop_caches before every run)" || echo "warm (cannot drop caches: not root)")"
echo "flags     ${extra_flags[*]:-(none)}"
echo "load      $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
printf 'median    cp+sync %.2f s, quantctl quantize %.2f s = %.2fx cp+sync (%d runs)\n' \
  "$cp_med" "$q_med" "$(echo "$q_med / $cp_med" | bc -l)" "$repeats"
echo "last run's quantctl output:"
sed 's/^/  /' "$work/quantctl.$repeats.log"
