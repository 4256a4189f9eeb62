#!/usr/bin/env bash
# The chaos test (tests/integration/chaos_test.cc) at a larger size: ROUNDS
# kill -9 at random moments (default 50) while two clients upload, submit and
# download, with every invariant checked after each restart. Prints the
# tallies line ("chaos: N kills, ...").
#   bench/chaos.sh [ROUNDS]   (after a build in build/)
set -euo pipefail
cd "$(dirname "$0")/.."
export QUANTD_CHAOS_ROUNDS=${1:-50}
exec build/tests/integration/quantd_integration_test \
  --gtest_filter='ChaosTest.*' 2>&1 | grep -E '^\[|chaos:|Failure|lost|stuck'
