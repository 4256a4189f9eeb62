#!/usr/bin/env bash
# Builds Quantd and runs every test (CTest: GoogleTest suites and the
# end-to-end scripts). Installs what it needs first (scripts/setup.sh).
#   scripts/test.sh [extra ctest args, e.g. -L e2e or -R Float]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DQUANTD_BUILD_TESTS=ON -DQUANTD_BUILD_BENCH=ON
cmake --build build -j"$(nproc)"
cd build
exec ctest --output-on-failure -j"$(nproc)" --timeout 1200 "$@"
