#!/usr/bin/env bash
# The main job: installs what is missing, builds the `ebm` command and runs it on the built-in
# default data. Until the trajectory pipeline lands this is the smoke run (Shadow Hand in MuJoCo,
# then Langevin on a tiny energy model). Extra arguments go to `ebm smoke`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/build.sh ebm
exec "${EBM_BUILD_DIR:-build}/bin/ebm" smoke "$@"
