#!/usr/bin/env bash
# Builds Quantd and runs every test (CTest: GoogleTest suites and the
# end-to-end scripts). Installs what it needs first (scripts/setup.sh).
#   scripts/test.sh [extra ctest args, e.g. -L e2e or -R Float]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
gbench=()  # Google Benchmark built here as Release from sources the user provides
[ -n "${QUANTD_BENCHMARK_SOURCE_DIR:-}" ] && gbench=(-DQUANTD_BENCHMARK_SOURCE_DIR="$QUANTD_BENCHMARK_SOURCE_DIR")
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DQUANTD_BUILD_TESTS=ON -DQUANTD_BUILD_BENCH=ON "${gbench[@]}"
cmake --build build -j"$(nproc)"
status=0
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 1200 "$@") || status=$?
# The fuzz targets in regression mode, in their own clang build directory
# (build-fuzz/; the gcc build above is untouched). Skipped when ctest was
# asked for a subset (arguments given) or clang is missing.
if [ $# -eq 0 ] && command -v clang++ >/dev/null 2>&1; then
  bash scripts/fuzz_regression.sh || status=$?
fi
exit $status
