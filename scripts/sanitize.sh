#!/usr/bin/env bash
# The sanitizer suites: an AddressSanitizer + UndefinedBehaviorSanitizer build (-DEBM_SANITIZE=ON,
# in build-asan/) of the suites that do not take minutes: the parsers (npz, pickle, IDX, CIFAR,
# PNG/JPEG, SVHN, dSprites, the trajectory record format), the config reader, the recorder and
# rollout driver, JSON, sizes and the pickle scan, and the core (Langevin, replay buffer, spectral
# norm, Adam, checkpoints and archive files). Run by scripts/test.sh after the main suite; any
# sanitizer report fails its test. The trainer's mixture test (minutes under ASan) and the tests
# of real clients (Python loading an instrumented plugin) are left to the main suite.
#   scripts/sanitize.sh [CTEST ARGS...]
# Environment: EBM_ASAN_BUILD_DIR (default: build-asan).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
build=${EBM_ASAN_BUILD_DIR:-build-asan}
targets=(util_json_test util_sizes_test util_pickle_scan_test datasets_trajectory_test
         datasets_image_formats_test datasets_image_test plugin_recorder_test plugin_rollout_test
         core_config_test core_checkpoint_test core_langevin_test core_components_test)
EBM_BUILD_DIR=$build EBM_CMAKE_ARGS="-DEBM_SANITIZE=ON -DEBM_BUILD_BENCH=OFF" \
  scripts/build.sh "${targets[@]}"
# LibTorch's static allocations read as leaks, so leak checking stays off here (the fuzz targets,
# which do not link LibTorch, check leaks).
ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$build" --output-on-failure --timeout 900 -j "$(nproc)" \
  -R '^(Json|Sizes|PickleScan|Files|TrajectoryRecord|ImageFormats|Idx|Cifar10|Cifar100|Png|ImageDataset|Recorder|Rollout|Config|Checkpoint|Langevin|ReplayBuffer|SpectralNorm|Adam|Energy)\.' \
  -E '(Python|^Trainer\.)' "$@"
