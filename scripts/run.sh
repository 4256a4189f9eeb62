#!/usr/bin/env bash
# Builds quantd and starts the service with embedded defaults: gRPC on
# 127.0.0.1:7443, data (blob store + SQLite journal) in ./quantd-data.
# Extra arguments go to `quantd serve` (see `quantd serve --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DQUANTD_BUILD_TESTS=OFF -DQUANTD_BUILD_BENCH=OFF
cmake --build build -j"$(nproc)" --target quantd
exec build/server/quantd serve "$@"
