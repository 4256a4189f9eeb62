#!/usr/bin/env bash
# The steps of a GGUF job that do not divide by the thread count, measured
# with `perf trace` (system call durations), which a busy machine distorts
# far less than wall time: the commit's fsync (the write-back tail), time in
# sync_file_range (started write-back), in futex (threads waking each
# other: ring and loop waits) and in madvise(MADV_DONTNEED) (input pages
# released). One line per run.
#
#   bench/gguf_serial_parts.sh [BUILD_DIR] [WORK_DIR]
#   defaults: BUILD_DIR=build, WORK_DIR=/tmp/quantd-gguf-bench
# Environment: QUANTD (binary to time, default BUILD_DIR/server/quantd; a
# space-separated list runs them interleaved), GGUF_BENCH_TYPES (default
# Q8_0), GGUF_BENCH_THREADS (default 2), GGUF_BENCH_REPEAT (default 3).
# Needs perf (Debian package linux-perf) with permission to trace system
# calls, and the model of bench/gguf_speed.sh (generated if missing).
set -euo pipefail
build="${1:-build}"
work="${2:-/tmp/quantd-gguf-bench}"
binaries=(${QUANTD:-$build/server/quantd})
gen="$build/bench/gguf_gen_model"
command -v perf > /dev/null || { echo "needs perf (Debian package linux-perf)" >&2; exit 1; }
mkdir -p "$work"
work=$(realpath "$work")
model="$work/model-f32.gguf"
[ -f "$model" ] || "$gen" "$model"
cat "$model" > /dev/null
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for t in ${GGUF_BENCH_TYPES:-Q8_0}; do
  for thr in ${GGUF_BENCH_THREADS:-2}; do
    for rep in $(seq "${GGUF_BENCH_REPEAT:-3}"); do
      for b in "${binaries[@]}"; do
        out="$work/serial-$t.gguf"
        rm -f "$out"
        perf trace -e fsync,sync_file_range,futex,madvise -o "$work/serial-trace.txt" \
          "$b" quantize "$model" -o "$out" --gguf-type "$t" --threads "$thr" > /dev/null 2>&1
        # Lines: "<time> (<duration> ms): <comm/tid> <syscall>(...". The first
        # fsync is the output file's (the second the directory's).
        perl -ne '
          next unless /\(\s*([\d.]+) ms\): \S+ (\w+)\((.*)/;
          my ($ms, $call, $args) = ($1, $2, $3);
          if ($call eq "fsync") { $fsync = $ms unless defined $fsync; }
          elsif ($call eq "madvise") { $dontneed += $ms if $args =~ /DONTNEED/; }
          else { $sum{$call} += $ms; }
          END { printf "%-8s %3d thr  fsync %6.1f ms  sync_file_range %6.1f ms  futex %6.1f ms  release %5.1f ms  %s\n",
                  "'"$t"'", '"$thr"', $fsync // 0, $sum{sync_file_range} // 0, $sum{futex} // 0,
                  $dontneed // 0, "'"$b"'" }' "$work/serial-trace.txt"
        rm -f "$out"
      done
    done
  done
done
