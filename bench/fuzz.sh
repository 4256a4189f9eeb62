#!/usr/bin/env bash
# Long fuzzing runs of every libFuzzer target (tests/fuzz/), ASan + UBSan,
# each for SECONDS (default 600) from its seed corpus; prints execs and
# crashes per target. Crash inputs are kept in build-fuzz/crashes/<target>/.
#   bench/fuzz.sh [SECONDS] [target ...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(onnx_fuzzer gguf_fuzzer checkpoint_fuzzer recipe_fuzzer upload_fuzzer)
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DQUANTD_BUILD_TESTS=OFF -DQUANTD_BUILD_BENCH=OFF -DQUANTD_BUILD_FUZZERS=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]}"
(cd build-fuzz && ctest -R '^fuzz\.seeds$' >/dev/null)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$t
  crashes=build-fuzz/crashes/$t
  mkdir -p "$corpus" "$crashes"
  cp -n build-fuzz/tests/fuzz/seeds/$t/* "$corpus"/ 2>/dev/null || true
  log=build-fuzz/fuzz-$t.log
  status=0
  build-fuzz/tests/fuzz/$t -max_total_time="$seconds" -max_len=4194304 -rss_limit_mb=4096 \
    -timeout=60 -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "$t: ${execs:-?} execs in ${seconds}s, exit $status, crash files: $(ls "$crashes" | wc -l)"
done
