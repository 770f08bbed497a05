#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test through CTest (the
# style and size checks among them), then lists the ten slowest tests.
#   scripts/test.sh [CTEST ARGS...]     e.g. scripts/test.sh -R Langevin
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/build.sh
build=${EBM_BUILD_DIR:-build}
[[ "$build" == /* ]] || build="$root/$build"
report="$build/ctest-junit.xml"
rm -f "$report"
status=0
ctest --test-dir "$build" --output-on-failure --timeout 900 -j "$(nproc)" \
  --output-junit "$report" "$@" || status=$?
python3 scripts/check/slowest_tests.py "$report" 10
exit "$status"
