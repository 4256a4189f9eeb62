#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang, ASan and UBSan in
# build-fuzz/ (separate from the gcc build in build/) and runs each over its
# seed corpus plus a fixed number of mutations (CTest label `fuzz`).
#   scripts/fuzz_regression.sh [runs per target, default 300]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-300}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DQUANTD_BUILD_TESTS=OFF -DQUANTD_BUILD_BENCH=OFF -DQUANTD_BUILD_FUZZERS=ON \
  -DQUANTD_FUZZ_RUNS="$runs" >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target onnx_fuzzer gguf_fuzzer checkpoint_fuzzer \
  recipe_fuzzer upload_fuzzer
cd build-fuzz
exec ctest --output-on-failure -L fuzz
