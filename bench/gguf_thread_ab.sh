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
# WORK_DIR; a tmpfs path takes the disk out of the figures). Uses
# WORK_DIR/model-f32.gguf, generated if missing by bench/gguf_gen_model:
# the 247.5 M-weight model of bench/gguf_speed.sh, or the shape
# GGUF_BENCH_SHAPE gives ("layers embd ff vocab"; "16 2048 5632 32768" is
# 855.7 M weights, 3.4 GB). Also prints the job's own time, which the
# `quantd quantize` line reports (core::Run as a server's worker runs it,
# without the process start-up, ~18 ms of dynamic linking here), and the
# speed-up of that. Not meant for `chrt -f`:
# with the output on disk, real-time threads that do not sleep appear to
# starve the kernel's write-back threads, which penalises the builds whose
# threads wait less (docs/benchmarks.md, "GGUF: one loop per output part").
#
# The anchor, in the same rounds: after each type's runs, the same number of
# bytes as its output written to the same directory by dd from /dev/zero,
# with O_DIRECT in 4 MiB requests one at a time ("direct qd1") and four at a
# time ("direct qd4", four dd processes on disjoint ranges), and buffered
# with fsync ("buffered+fsync", the route a job's output takes). A job
# puts as many bytes on the disk before it ends, so a 2-thread job whose
# time is near the fastest anchor waits for the disk, not for its threads,
# and the 1-thread median over that anchor is about the largest 1 -> 2
# thread speed-up the disk leaves room for (printed; GGUF_BENCH_ANCHOR=0
# leaves the anchor out, e.g. with the output on tmpfs).
set -euo pipefail
# shellcheck source=bench/disk_anchor.sh
source "$(dirname "$0")/disk_anchor.sh"
build="${1:-build}"
work="${2:-/tmp/quantd-gguf-bench}"
binaries=(${QUANTD:-$build/server/quantd})
gen="$build/bench/gguf_gen_model"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package 'time')" >&2; exit 1; }
mkdir -p "$work"
work=$(realpath "$work")
model="$work/model-f32.gguf"
[ -f "$model" ] || "$gen" "$model" ${GGUF_BENCH_SHAPE:-}
cat "$model" > /dev/null
out="${GGUF_BENCH_OUT:-$work/thread-ab.gguf}"
results=$(mktemp)
times=$(mktemp)
log=$(mktemp)
anchors=$(mktemp)
anchor="$(dirname "$out")/thread-ab-anchor.bin"
trap 'rm -f "$results" "$times" "$log" "$anchors" "$out" "$anchor"' EXIT
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
          > /dev/null 2> "$log"
        end=$(date +%s%N)
        # The job's own seconds (core::Run, as a server's worker runs it:
        # without the process start-up), from the "wrote ... in S s" line.
        job=$(sed -n 's/^wrote .* in \([0-9.]*\) s$/\1/p' "$log")
        echo "$t $thr $i $(((end - start) / 1000)) $(cat "$times") ${job:-0}" >> "$results"
      done
    done
    if [ "${GGUF_BENCH_ANCHOR:-1}" = 1 ] && [ -f "$out" ]; then
      size=$(stat -c %s "$out")
      echo "$t size $size" >> "$anchors"
      for mode in direct1 direct4 buffered; do
        rm -f "$anchor"
        sleep "${GGUF_BENCH_SLEEP:-0.2}"
        echo "$t $mode $(disk_anchor_us "$mode" "$anchor" "$size")" >> "$anchors"
      done
    fi
  done
done
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)"
for i in "${!binaries[@]}"; do echo "binary $i: ${binaries[$i]}"; done
perl -ane '
  my ($t, $thr, $i, $us, $u, $s, $w, $job) = @F;
  push @{$wall{$t}{$i}{$thr}}, $us / 1000;
  push @{$cpu{$t}{$i}{$thr}}, $u + $s;
  push @{$vcs{$t}{$i}{$thr}}, $w;
  push @{$jobms{$t}{$i}{$thr}}, $job * 1000;
  sub med { my @a = sort { $a <=> $b } @_; $a[$#a / 2] }
  sub best { my @a = sort { $a <=> $b } @_; $a[0] }
  END {
    for my $t (sort keys %wall) {
      for my $i (sort keys %{$wall{$t}}) {
        for my $thr (sort keys %{$wall{$t}{$i}}) {
          printf "%-8s binary %d %d thr  wall ms best %5.0f median %5.0f  job ms median %5.0f  CPU s %.3f  vol. switches %4d\n",
            $t, $i, $thr, best(@{$wall{$t}{$i}{$thr}}), med(@{$wall{$t}{$i}{$thr}}),
            med(@{$jobms{$t}{$i}{$thr}}), med(@{$cpu{$t}{$i}{$thr}}), med(@{$vcs{$t}{$i}{$thr}});
        }
        if ($wall{$t}{$i}{1} && $wall{$t}{$i}{2}) {
          printf "%-8s binary %d 1 -> 2 thread speed-up: best %.2fx, median %.2fx\n", $t, $i,
            best(@{$wall{$t}{$i}{1}}) / best(@{$wall{$t}{$i}{2}}),
            med(@{$wall{$t}{$i}{1}}) / med(@{$wall{$t}{$i}{2}});
          printf "%-8s binary %d 1 -> 2 thread speed-up of the job alone (no process start-up): median %.2fx\n",
            $t, $i, med(@{$jobms{$t}{$i}{1}}) / med(@{$jobms{$t}{$i}{2}})
            if med(@{$jobms{$t}{$i}{2}}) > 0;
        }
      }
    }
  }' "$results"
[ -s "$anchors" ] || exit 0
perl -ane '
  sub med { my @a = sort { $a <=> $b } @_; $a[$#a / 2] }
  if (@F == 3 && $F[1] eq "size") { $size{$F[0]} = $F[2]; next }
  if (@F == 3) { push @{$anc{$F[0]}{$F[1]}}, $F[2] / 1000; next }
  my ($t, $thr, $i, $us) = @F;
  push @{$wall{$t}{$i}{$thr}}, $us / 1000;
  END {
    for my $t (sort keys %anc) {
      my %m = map { $_ => med(@{$anc{$t}{$_}}) } keys %{$anc{$t}};
      my ($floor) = sort { $a <=> $b } values %m;
      printf "%-8s anchor: %.0f MB to the same disk, median ms: direct qd1 %.0f, direct qd4 %.0f, buffered+fsync %.0f\n",
        $t, $size{$t} / 1e6, $m{direct1}, $m{direct4}, $m{buffered};
      for my $i (sort keys %{$wall{$t}}) {
        next unless $wall{$t}{$i}{1} && $wall{$t}{$i}{2};
        printf "%-8s binary %d 2-thread median / fastest anchor %.2f; room the disk leaves (1-thread median / fastest anchor) %.2fx\n",
          $t, $i, med(@{$wall{$t}{$i}{2}}) / $floor, med(@{$wall{$t}{$i}{1}}) / $floor;
      }
    }
  }' "$anchors" "$results"
