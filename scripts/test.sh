#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test through CTest.
#   scripts/test.sh [CTEST ARGS...]     e.g. scripts/test.sh -R Langevin
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/build.sh
build=${EBM_BUILD_DIR:-build}
ctest --test-dir "$build" --output-on-failure --timeout 900 -j "$(nproc)" "$@"
