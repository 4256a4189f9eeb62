#!/usr/bin/env bash
# Regression mode for one libFuzzer target: every seed once, then RUNS
# mutations from the seeds (fixed seed, so the run is repeatable), in a
# scratch copy of the corpus (the seeds are not modified).
#   run_fuzzer.sh FUZZER SEED_DIR RUNS
set -euo pipefail
fuzzer=$1 seeds=$2 runs=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$seeds" "$work/corpus"
cd "$work"
# ASan: report leaks too; UBSan: stop at the first report (built with
# -fno-sanitize-recover), print stacks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
exec "$fuzzer" -runs="$runs" -seed=1 -max_len=4194304 -rss_limit_mb=4096 -timeout=60 \
  -print_final_stats=1 "$work/corpus"
