#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: installs every build and test
# dependency from Debian's packages and the pinned npm test tools. Safe to re-run;
# does nothing that is already done. Used by the README, .ci/run and the Dockerfile.
#
#   scripts/setup.sh            build + test dependencies (default)
#   scripts/setup.sh --build    build dependencies only (Dockerfile build stage)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=all
[ "${1:-}" = "--build" ] && mode=build

build_pkgs=(build-essential cmake pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libonnx-dev libeigen3-dev libabsl-dev prometheus-cpp-dev libgtest-dev
  libgmock-dev libbenchmark-dev libsqlite3-dev libssl-dev zlib1g-dev
  nlohmann-json3-dev libicu-dev libre2-dev libpq-dev)
test_pkgs=(python3-onnx python3-numpy python3-grpcio python3-grpc-tools prometheus time
  xxd bsdextrautils procps python3-yaml postgresql clang libfuzzer-14-dev
  linux-perf)  # linux-perf: bench/gguf_serial_parts.sh

want=("${build_pkgs[@]}")
[ "$mode" = all ] && want+=("${test_pkgs[@]}")
# Node.js/npm: use what is on the machine; otherwise take Debian's.
if [ "$mode" = all ] && ! command -v npm >/dev/null 2>&1; then
  want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ "$mode" = all ]; then
  # Pinned npm test tools (tests/e2e/package-lock.json); no install scripts run.
  if [ ! -d tests/e2e/node_modules/onnxruntime-node ] || \
     [ ! -d tests/e2e/node_modules/node-llama-cpp ] || \
     [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
    (cd tests/e2e && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
fi
echo "setup: dependencies present"
