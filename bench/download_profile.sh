#!/usr/bin/env bash
# Where the time of a download goes: starts a local `quantd serve`, uploads
# MODEL.onnx (with its external data), runs an FP32 job on it (the artifact
# is the model again, about its size), then downloads the artifact REPEAT
# times with `quantctl download` (page cache warm on the server's side) and
# prints each run's wall time, MB/s and the CPU seconds (user + system) of
# the client and of the server. With PERF=1 the last run is profiled
# (`perf record -g` of both processes, self time by library and symbol).
# With COLD=1 the page cache is dropped before each download (needs root):
# the server reads the artifact from the disk, as right after a job that
# wrote it with O_DIRECT.
# With QUANTD2=OTHER_BUILD, each run also downloads with OTHER_BUILD's
# quantd and quantctl (a second server on the same data), alternating.
#
#   bench/download_profile.sh BUILD_DIR MODEL.onnx [REPEAT]
set -euo pipefail
build=$1
model=$2
repeat=${3:-3}
work=$(mktemp -d /tmp/quantd-download-profile.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; [ "${KEEP:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"' EXIT
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

setup() {  # BUILD NAME: starts quantd serve on $work/NAME-data and makes the artifact there
  local b=$1 name=$2 port ctl job
  "$b/server/quantd" serve --listen 127.0.0.1:0 --data-dir "$work/$name-data" --port-file "$work/$name.port" \
    --workers 1 --min-free-bytes 1G > "$work/$name.log" 2>&1 &
  pids+=($!)
  echo $! > "$work/$name.pid"
  for _ in $(seq 1 100); do [ -s "$work/$name.port" ] && break; sleep 0.1; done
  port=$(cat "$work/$name.port")
  ctl="$b/client/quantctl/quantctl --server 127.0.0.1:$port"
  job=$($ctl submit "$model" --precision fp32 2> /dev/null)
  $ctl watch "$job" > /dev/null 2>&1
  echo "$job" > "$work/$name.job"
}

builds=("$build")
names=(a)
if [ -n "${QUANTD2:-}" ]; then
  builds+=("$QUANTD2")
  names+=(b)
fi
for i in "${!builds[@]}"; do setup "${builds[$i]}" "${names[$i]}"; done
bytes=$(( $(stat -c %s "$model") + $(stat -c %s "$model.data") ))
echo "artifact: about $bytes bytes (the model's size); load $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"

one() {  # BUILD NAME RUN
  local b=$1 name=$2 run=$3 spid port job t0 t1 s0 s1 client wrap=()
  spid=$(cat "$work/$name.pid")
  job=$(cat "$work/$name.job")
  port=$(cat "$work/$name.port")
  rm -rf "$work/out"
  if [ "${PERF:-0}" = 1 ] && [ "$run" = "$repeat" ]; then
    perf record -g -o "$work/$name-server.perf" -p "$spid" 2> /dev/null &
    perf_pid=$!
    sleep 0.5
    wrap=(perf record -q -g -o "$work/$name-client.perf")
  fi
  if [ "${COLD:-0}" = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
  s0=$(cpu "$spid")
  t0=$(date +%s.%N)
  client=$( { /usr/bin/time -f "%e %U %S %R" "${wrap[@]}" "$b/client/quantctl/quantctl" --server "127.0.0.1:$port" \
    download "$job" -o "$work/out/model.onnx" > /dev/null; } 2>&1 | tail -1)
  t1=$(date +%s.%N)
  s1=$(cpu "$spid")
  awk -v n="$name" -v b="$bytes" -v t="$(echo "$t1 - $t0" | bc -l)" -v c="$client" -v s="$(( s1 - s0 ))" -v hz="$hz" \
    'BEGIN { split(c, f, " "); printf "%s  %.3f s  %5.0f MB/s  client CPU %.2f s (user %.2f sys %.2f, %d page faults)  server CPU %.2f s\n",
      n, t, b / t / 1e6, f[2] + f[3], f[2], f[3], f[4], s / hz }'
  if [ "${PERF:-0}" = 1 ] && [ "$run" = "$repeat" ]; then
    kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
    echo "$name client profile (self, top 20):"
    perf report -i "$work/$name-client.perf" --no-children --sort tid --stdio -g none 2> /dev/null | grep -E "^ +[0-9]" | head -6
    perf report -i "$work/$name-client.perf" --no-children --sort dso --stdio -g none 2> /dev/null | grep -E "^ +[0-9]" | head -8
    perf report -i "$work/$name-client.perf" --no-children --sort dso,sym --stdio -g none 2> /dev/null | grep -E "^ +[0-9]" | grep -v libcrypto | head -20
    echo "$name server profile (self, top 15):"
    perf report -i "$work/$name-server.perf" --no-children --sort dso,sym --stdio -g none 2> /dev/null | grep -E '^ +[0-9]' | head -15
  fi
}

for run in $(seq 1 "$repeat"); do
  for i in "${!builds[@]}"; do one "${builds[$i]}" "${names[$i]}" "$run"; done
done
