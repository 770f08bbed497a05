#!/usr/bin/env bash
# The main job: installs what is missing, builds the `ebm` command and runs the trajectory
# pipeline on the Shadow Hand (configs/trajectories/hand_traj.yaml): record branched rollouts with
# the ebm.recorder plugin, train the trajectory EBM and the FC / MDN baselines on this machine,
# evaluate futures against the true branches, and write runs/hand_traj/report.html. Extra
# arguments go to `ebm traj run` (e.g. --set trainer.iterations=500, --out runs/other).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/build.sh ebm ebm_generator
exec "${EBM_BUILD_DIR:-build}/bin/ebm" traj run --config configs/trajectories/hand_traj.yaml "$@"
