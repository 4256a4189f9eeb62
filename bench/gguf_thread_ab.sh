#!/usr/bin/env bash
# Interleaved A/B of quantd binaries on one GGUF job: for each round, type,
# thread count and binary, one `quantd quantize` run. Prints per binary the
# best and median wall time in ms (clock around the process), the median
# CPU seconds (user + sys) and the median number of voluntary context
# switches (/usr/bin/time %w: mostly threads sleeping on each other, i.e.
# futex waits that blocked; counting them costs nothing, unlike
# `perf trace`, whose overhead slows every traced write), then the 1 -> 2
# thread speed-up from the best and the median walls.
#
#   bench/gguf_thread_ab.sh [BUILD_DIR] [WORK_DIR]
#   defaults: BUILD_DIR=build, WORK_DIR=/tmp/quantd-gguf-bench
# Environment: QUANTD (space-separated binaries, default
# BUILD_DIR/server/quantd), GGUF_BENCH_TYPES (default "Q8_0 Q4_0"),
# GGUF_BENCH_THREADS (default "1 2"), GGUF_BENCH_REPEAT (rounds, default 9),
# GGUF_BENCH_SLEEP (seconds between runs, default 0.2: lets write-back of
# the last output finish), GGUF_BENCH_OUT (output file, default in
# WORK_DIR; a tmpfs path takes the disk out of the figures). Uses the model
# of bench/gguf_speed.sh (generated if missing). Not meant for `chrt -f`:
# with the output on disk, real-time threads that do not sleep appear to
# starve the kernel's write-back threads, which penalises the builds whose
# threads wait less (docs/benchmarks.md, "GGUF: one loop per output part").
set -euo pipefail
build="${1:-build}"
work="${2:-/tmp/quantd-gguf-bench}"
binaries=(${QUANTD:-$build/server/quantd})
gen="$build/bench/gguf_gen_model"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package 'time')" >&2; exit 1; }
mkdir -p "$work"
work=$(realpath "$work")
model="$work/model-f32.gguf"
[ -f "$model" ] || "$gen" "$model"
cat "$model" > /dev/null
out="${GGUF_BENCH_OUT:-$work/thread-ab.gguf}"
results=$(mktemp)
times=$(mktemp)
trap 'rm -f "$results" "$times" "$out"' EXIT
echo "machine: $(nproc) cores, load before $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "${GGUF_BENCH_REPEAT:-9}"); do
  for t in ${GGUF_BENCH_TYPES:-Q8_0 Q4_0}; do
    for thr in ${GGUF_BENCH_THREADS:-1 2}; do
      for i in "${!binaries[@]}"; do
        rm -f "$out"
        sleep "${GGUF_BENCH_SLEEP:-0.2}"
        start=$(date +%s%N)
        /usr/bin/time -f "%U %S %w" -o "$times" \
          "${binaries[$i]}" quantize "$model" -o "$out" --gguf-type "$t" --threads "$thr" \
          > /dev/null 2>&1
        end=$(date +%s%N)
        echo "$t $thr $i $(((end - start) / 1000)) $(cat "$times")" >> "$results"
      done
    done
  done
done
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)"
for i in "${!binaries[@]}"; do echo "binary $i: ${binaries[$i]}"; done
perl -ane '
  my ($t, $thr, $i, $us, $u, $s, $w) = @F;
  push @{$wall{$t}{$i}{$thr}}, $us / 1000;
  push @{$cpu{$t}{$i}{$thr}}, $u + $s;
  push @{$vcs{$t}{$i}{$thr}}, $w;
  sub med { my @a = sort { $a <=> $b } @_; $a[$#a / 2] }
  sub best { my @a = sort { $a <=> $b } @_; $a[0] }
  END {
    for my $t (sort keys %wall) {
      for my $i (sort keys %{$wall{$t}}) {
        for my $thr (sort keys %{$wall{$t}{$i}}) {
          printf "%-8s binary %d %d thr  wall ms best %5.0f median %5.0f  CPU s %.3f  vol. switches %4d\n",
            $t, $i, $thr, best(@{$wall{$t}{$i}{$thr}}), med(@{$wall{$t}{$i}{$thr}}),
            med(@{$cpu{$t}{$i}{$thr}}), med(@{$vcs{$t}{$i}{$thr}});
        }
        if ($wall{$t}{$i}{1} && $wall{$t}{$i}{2}) {
          printf "%-8s binary %d 1 -> 2 thread speed-up: best %.2fx, median %.2fx\n", $t, $i,
            best(@{$wall{$t}{$i}{1}}) / best(@{$wall{$t}{$i}{2}}),
            med(@{$wall{$t}{$i}{1}}) / med(@{$wall{$t}{$i}{2}});
        }
      }
    }
  }' "$results"
