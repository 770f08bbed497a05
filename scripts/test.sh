#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test through CTest (the
# style and size checks, the fuzz targets and the kill tests among them), lists the ten slowest
# tests, then runs the sanitizer suites (scripts/sanitize.sh, an ASan + UBSan build of their own).
#   scripts/test.sh [CTEST ARGS...]     e.g. scripts/test.sh -R Langevin
# With CTest arguments (a focused run), the sanitizer suites are skipped.
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
if ((!$#)); then
  echo "== sanitizer suites (ASan + UBSan, scripts/sanitize.sh)"
  scripts/sanitize.sh || status=$?
fi
exit "$status"
