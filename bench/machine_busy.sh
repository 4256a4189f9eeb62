#!/usr/bin/env bash
# Runs a command and prints its wall time and how busy the whole machine was
# meanwhile (from /proc/stat, every CPU, every process and kernel thread:
# the kernel's write-back and I/O completion count too, which a process's
# own CPU time leaves out). "busy cores" is busy CPU time over wall time;
# a job that keeps every core busy cannot get faster with more threads, and
# a 1-thread job above 1.00 has the kernel working for it on another core.
#
#   bench/machine_busy.sh COMMAND [ARGS...]
#   e.g. for t in 1 2; do bench/machine_busy.sh build/server/quantd quantize \
#          model.gguf -o /tmp/q.gguf --gguf-type Q4_0 --threads $t; done
set -euo pipefail
read -r _ u0 n0 s0 i0 w0 q0 sq0 st0 _ < /proc/stat
t0=$(date +%s%N)
"$@" > /dev/null 2>&1
t1=$(date +%s%N)
read -r _ u1 n1 s1 i1 w1 q1 sq1 st1 _ < /proc/stat
hz=$(getconf CLK_TCK)
busy=$(((u1 + n1 + s1 + q1 + sq1) - (u0 + n0 + s0 + q0 + sq0)))
idle=$(((i1 + w1) - (i0 + w0)))
awk -v ns=$((t1 - t0)) -v busy="$busy" -v idle="$idle" -v user=$((u1 - u0)) -v sys=$((s1 - s0)) \
  -v steal=$((st1 - st0)) -v hz="$hz" -v cpus="$(nproc)" 'BEGIN {
    wall = ns / 1e9
    printf "wall %.3f s; machine busy %.2f CPU s (user %.2f, system %.2f), idle %.2f, steal %.2f: %.2f of %d cores busy\n",
      wall, busy / hz, user / hz, sys / hz, idle / hz, steal / hz, busy / hz / wall, cpus }'
