#!/usr/bin/env bash
# Runs one libFuzzer target (fuzz/README.md): first every input of its regression corpus once
# (fuzz/regressions/<target>/, the crashes found so far), then a timed run over its generated
# seeds, with its dictionary, under ASan and UBSan. A crash, a leak, a sanitizer report, a slow
# input (over 10 s) or an allocation over the limit fails it and leaves the input in
# <fuzz dir>/artifacts/<target>/.
#   scripts/fuzz/run.sh TARGET SECONDS [FUZZ_DIR]     (FUZZ_DIR default: build/fuzz-targets)
# Environment: EBM_FUZZ_JOBS (parallel fuzzing processes, default 1), EBM_FUZZ_MALLOC_MB (the
# largest single allocation allowed, default 512).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target=$1
seconds=$2
fuzz_dir=${3:-$root/build/fuzz-targets}
binary=$fuzz_dir/$target
seeds=$fuzz_dir/seeds/$target
work=$fuzz_dir/work/$target
artifacts=$fuzz_dir/artifacts/$target
regressions=$root/fuzz/regressions/$target
[[ -x "$binary" ]] || { echo "run.sh: $binary not built (clang missing?)" >&2; exit 1; }
[[ -d "$seeds" ]] || { echo "run.sh: no seeds in $seeds (scripts/fuzz/make_seeds.py)" >&2; exit 1; }
mkdir -p "$work" "$artifacts"
options=(-rss_limit_mb=2048 "-malloc_limit_mb=${EBM_FUZZ_MALLOC_MB:-512}" -timeout=10
         "-artifact_prefix=$artifacts/")
dict=$root/fuzz/dict/${target#fuzz_}.dict
[[ -f "$dict" ]] && options+=("-dict=$dict")
if [[ -d "$regressions" ]] && compgen -G "$regressions/*" > /dev/null; then
  echo "== $target: the regression corpus, each input once"
  "$binary" "${options[@]}" "$regressions"/*
fi
echo "== $target: ${seconds} s of fuzzing from $(ls "$seeds" | wc -l) seeds"
jobs=${EBM_FUZZ_JOBS:-1}
# -jobs writes each worker's log to fuzz-<n>.log in the current folder: only for campaigns.
((jobs > 1)) && { options+=("-jobs=$jobs" "-workers=$jobs"); cd "$fuzz_dir"; }
exec "$binary" "${options[@]}" -max_total_time="$seconds" -print_final_stats=1 "$work" "$seeds"
