#!/usr/bin/env bash
# Installs what is missing (scripts/bootstrap.sh), configures once and builds.
#   scripts/build.sh [TARGET...]      build everything, or just the named targets
# Environment: EBM_BUILD_DIR (default: build), EBM_CMAKE_ARGS (extra configure arguments, e.g.
# "-DEBM_SANITIZE=ON"), plus those of scripts/bootstrap.sh (EBM_PYTHON, EBM_CACHE_DIR, ...).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
python=$(scripts/bootstrap.sh | tail -n 1)
build=${EBM_BUILD_DIR:-build}
if [[ ! -f "$build/build.ninja" ]] || ! grep -qs "EBM_PYTHON:FILEPATH=$python\$" "$build/CMakeCache.txt"; then
  # shellcheck disable=SC2086
  cmake -S . -B "$build" -G Ninja -DEBM_PYTHON="$python" ${EBM_CMAKE_ARGS:-} >&2
fi
if (($#)); then
  cmake --build "$build" --target "$@" >&2
else
  cmake --build "$build" >&2
fi
