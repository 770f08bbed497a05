#!/usr/bin/env bash
# The GPU machine's check, run from the checkout's root on the device tool's nvidia-h200 (x86-64,
# CUDA 13.0, PyTorch 2.11 as python3, no network) with the bundle of scripts/make_device_bundle.sh
# carried beside the tree. Each step is timed, logged and recorded:
#   (a) setup: the bundle's Debian prefix for CMake (CMAKE_PREFIX_PATH, its protoc, pkg-config and
#       ninja), its libraries this machine lacks on LD_LIBRARY_PATH, the mujoco and
#       gymnasium-robotics wheels pip-installed offline into a --target folder in /tmp, and
#       EBM_PYTHON = a wrapper running python3 with that folder first on sys.path (a venv would
#       hide torch: python3 there is itself a venv); checks glibc, libstdc++, compiler, nvcc
#   (b) configure (-DEBM_WERROR=OFF: another compiler's new warnings must not end a one-shot run)
#       and build with ninja, -j$(nproc), TORCH_CUDA_ARCH_LIST=9.0, into build-device/, only:
#       bench_cd_step, bench_langevin and core_performance_test (the home of the Cuda* tests)
#   (c) the CUDA tests: ctest --test-dir build-device -R '^Cuda' --output-on-failure
#   (d) benchmarks: bench/cd_step_compare.py with the paper's CIFAR-10 step (resnet32_large,
#       3x32x32, batch 128, 60 Langevin steps, 3 rounds) and bench_langevin --device cuda
#   (e) ONE JSON file, device_figures.json: GPU (nvidia-smi), torch, versions, each step's wall
#       time and exit status, each CUDA test's result, each benchmark's JSON; rewritten after
#       every step, so a run stopped at its time limit still returns what it measured
#   scripts/device_check.sh [--dry-run] [--out DIR] [--bundle DIR] [--configure-only]
# --dry-run: the same steps on this machine's CPU (--device cpu, batch 4, 2 Langevin steps,
#   1 round) with the bundle's libraries, into build-devdry/ (the CUDA tests skip there); GPU-only
#   steps print "skipped: no GPU".
# --out DIR: where device_figures.json and device_check.log go (default: $OUT when set, as on the
#   device machine, else the build folder). --bundle DIR: default .device_bundle.
# --configure-only: stop after the configure step (a cheap check of the bundle).
# With the device tool: run(command="scripts/device_check.sh", carry=[".device_bundle"],
#   timeout_s=480); the JSON and the log come back from $OUT.
# Environment: EBM_BASE_PYTHON (the Python with torch; default python3, or the bootstrap's venv
#   with --dry-run), EBM_DEVICE_JOBS (default nproc), EBM_DEVICE_CD_ITERS (timed iterations per
#   cd_step run on the GPU, default 10), EBM_DEVICE_TARGETS (what to build, space-separated;
#   default the ones above).
# shellcheck disable=SC2317  # the step functions run through run_step "$@", finish by the trap
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
dry=0 out="" bundle="$root/.device_bundle" configure_only=0
while (($#)); do
  case $1 in
    --dry-run) dry=1 ;;
    --out) out=${2:?--out needs a folder}; shift ;;
    --bundle) bundle=${2:?--bundle needs a folder}; shift ;;
    --configure-only) configure_only=1 ;;
    -h | --help) sed -n '2,/^# shellcheck/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "device_check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
export LC_NUMERIC=C
if ((dry)); then
  mode=dry-run build=build-devdry tmp=/tmp/ebm-devdry-$(id -u)
  cd_args=(--device cpu --rounds 1 --iters 2 --warmup 1 --batch 4 --steps 2
           --net resnet32_large --channels 3 --size 32)
  lv_args=(--device cpu --batch 4 --steps 2 --rounds 1 --mfu-batch 2)
else
  mode=device build=build-device tmp=/tmp/ebm-device-$(id -u)
  cd_args=(--device cuda --rounds 3 --iters "${EBM_DEVICE_CD_ITERS:-10}" --warmup 3 --batch 128
           --steps 60 --net resnet32_large --channels 3 --size 32)
  lv_args=(--device cuda)
fi
out=${out:-${OUT:-$root/$build}}
mkdir -p "$out" "$root/$build/device-check"
out=$(cd "$out" && pwd)
bundle=$(cd "$bundle" 2>/dev/null && pwd || echo "$bundle")
work="$root/$build/device-check"        # step records, benchmark outputs, test report
rm -f "$work"/*
log="$out/device_check.log"
: >"$log"
exec > >(tee -a "$log") 2>&1
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t_start=$EPOCHREALTIME
json_python=$(command -v python3 || true)

# ---- step records and the JSON file -----------------------------------------------------------
# The JSON writer: steps.tsv, info.json, the test report and the benchmarks' outputs of WORK
# into OUT/device_figures.json (written whole, then renamed).
read -r -d '' writer <<'PY' || true
import json, os, sys, time
import xml.etree.ElementTree as ET

work, out, mode, started, total, bundle_env = sys.argv[1:7]
def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
def last_json_line(path):
    try:
        lines = [l for l in open(path).read().splitlines() if l.strip().startswith("{")]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None
steps = []
if os.path.exists(os.path.join(work, "steps.tsv")):
    for line in open(os.path.join(work, "steps.tsv")).read().splitlines():
        name, rc, wall, note = (line.split("\t") + [""] * 4)[:4]
        steps.append({"name": name, "rc": int(rc), "wall_s": float(wall), "note": note})
tests = None
junit = os.path.join(work, "cuda_tests.xml")
if os.path.exists(junit):
    try:
        cases = []
        for c in ET.parse(junit).getroot().iter("testcase"):
            status = {"run": "passed", "fail": "failed", "notrun": "skipped",
                      "disabled": "skipped"}.get(c.get("status"), c.get("status"))
            if c.find("skipped") is not None:
                status = "skipped"
            elif c.find("failure") is not None:
                status = "failed"
            cases.append({"name": c.get("name"), "status": status,
                          "time_s": float(c.get("time") or 0)})
        tests = {"cases": cases}
        for s in sorted({c["status"] for c in cases}):
            tests[s] = sum(1 for c in cases if c["status"] == s)
    except ET.ParseError as e:
        tests = {"error": f"{junit}: {e}"}
bundle = {}
if os.path.exists(bundle_env):
    for line in open(bundle_env).read().splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            bundle[k] = v.strip('"')
bundle.pop("EBM_BUNDLE_DEBS", None)
benchmarks = {}
for name in ("cd_step", "langevin"):
    rec = load_json(os.path.join(work, name + ".json")) or last_json_line(
        os.path.join(work, name + ".out"))
    benchmarks[name] = rec
doc = {"schema": "ebm-device-check/1", "mode": mode, "started": started,
       "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
       "total_wall_s": round(float(total), 3),
       "ok": bool(steps) and all(s["rc"] == 0 for s in steps),
       "machine": load_json(os.path.join(work, "info.json")), "bundle": bundle,
       "steps": steps, "cuda_tests": tests, "benchmarks": benchmarks}
tmp = os.path.join(out, ".device_figures.json.tmp")
with open(tmp, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
os.replace(tmp, os.path.join(out, "device_figures.json"))
PY
write_json() {
  [[ -n "$json_python" ]] || return 0
  "$json_python" -c "$writer" "$work" "$out" "$mode" "$started" \
    "$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f", b - a}')" \
    "$bundle/bundle.env" || echo "device_check: could not write $out/device_figures.json"
}
finish() {
  local rc=$?
  write_json
  echo "=== device_check ($mode): $(awk -F'\t' '{printf "%s %s (%.1f s)  ", $1, ($2 == 0 ? "ok" : "FAILED rc=" $2), $3}' \
    "$work/steps.tsv" 2>/dev/null)"
  echo "=== figures: $out/device_figures.json, log: $log"
  exit "$rc"
}
trap finish EXIT

note=""
failed=0
# run_step NAME COMMAND...: runs one step, timed, logged and recorded (with $note, which the step
# may set); returns its exit status.
run_step() {
  local name=$1 rc=0 t0 wall
  shift
  note=""
  echo "=== [$name] $(date -u +%H:%M:%S) $*"
  t0=$EPOCHREALTIME
  "$@" || rc=$?
  wall=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.3f", b - a}')
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$wall" "${note//$'\t'/ }" >>"$work/steps.tsv"
  echo "=== [$name] exit $rc after $wall s${note:+ ($note)}"
  ((rc == 0)) || failed=1
  write_json
  return "$rc"
}
missing=()
miss() { echo "device_check: MISSING: $*"; missing+=("$*"); note+="MISSING: $*; "; }
version_ge() { [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" == "$2" ]]; }

# ---- (a) setup --------------------------------------------------------------------------------
# Written without relying on set -e (it runs as a condition): every check says what is missing.
setup() {
  missing=()
  setup_prefix || return 1
  setup_python || return 1
  ((${#missing[@]} == 0))
}
# The bundle's Debian prefix, its libraries the machine lacks, the tools and versions needed.
setup_prefix() {
  if [[ ! -f "$bundle/bundle.env" ]]; then
    miss "the device bundle $bundle/bundle.env: make it with scripts/make_device_bundle.sh on" \
         "the Debian machine and carry .device_bundle"
    return 1
  fi
  # shellcheck source=/dev/null
  source "$bundle/bundle.env"
  prefix="$bundle/$EBM_BUNDLE_PREFIX"
  libdir="$prefix/lib/$EBM_BUNDLE_ARCH"
  [[ -x "$prefix/bin/protoc" && -d "$libdir" ]] || miss "$prefix/bin/protoc and $libdir (a partial bundle?)"
  command -v cmake >/dev/null || miss "cmake"
  cxx=$(command -v "${CXX:-c++}" || command -v g++ || true)
  [[ -n "$cxx" ]] || miss "a C++ compiler (c++ / g++)"
  ninja=$(command -v ninja || echo "$prefix/bin/ninja")
  local glibc newest lib
  glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  if [[ -n "$glibc" && -n "$EBM_BUNDLE_GLIBC" ]] && ! version_ge "$glibc" "$EBM_BUNDLE_GLIBC"; then
    miss "glibc >= $EBM_BUNDLE_GLIBC for the bundle's Debian binaries (this machine has $glibc)"
  fi
  if [[ -n "$cxx" && -n "$EBM_BUNDLE_GLIBCXX" ]]; then
    lib=$("$cxx" -print-file-name=libstdc++.so.6)
    newest=$(grep -ao 'GLIBCXX_3\.4\.[0-9]*' "$(readlink -f "$lib")" 2>/dev/null | sort -uV |
             tail -n 1 | sed 's/GLIBCXX_//')
    if [[ -n "$newest" ]] && ! version_ge "$newest" "$EBM_BUNDLE_GLIBCXX"; then
      miss "libstdc++ with GLIBCXX_$EBM_BUNDLE_GLIBCXX for the bundle's libraries ($lib has $newest)"
    fi
  fi
  if ((!dry)); then
    command -v nvcc >/dev/null || [[ -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]] ||
      miss "nvcc (the CUDA toolkit: LibTorch's CMake config needs it; set CUDA_HOME)"
  fi
  # The bundle's shared libraries that this machine lacks (by soname) go on LD_LIBRARY_PATH, in a
  # folder of links: the machine's own stay first for every process (python3, nvcc, cmake).
  if ! { rm -rf "$tmp" && mkdir -p "$tmp/lib" "$tmp/bin" "$tmp/site"; }; then
    miss "a writable $tmp"
    return 1
  fi
  local system_libs n linked=0
  system_libs=$(ldconfig -p 2>/dev/null | awk 'NR > 1 {print $1}' | sort -u || true)
  for n in $EBM_BUNDLE_SYSTEM_LIBS; do
    [[ -z "$system_libs" || "$n" == ld-linux* ]] || grep -qxF "$n" <<<"$system_libs" ||
      miss "$n (the bundle's libraries expect it from the system)"
  done
  for n in $EBM_BUNDLE_SONAMES; do
    if [[ -z "$system_libs" ]] || ! grep -qxF "$n" <<<"$system_libs"; then
      ln -s "$libdir/$n" "$tmp/lib/$n" && linked=$((linked + 1))
    fi
  done
  export LD_LIBRARY_PATH="$tmp/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PATH="$PATH:$prefix/bin"
  export PKG_CONFIG_PATH="$libdir/pkgconfig:$prefix/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  export TORCH_CUDA_ARCH_LIST=9.0 CMAKE_POLICY_VERSION_MINIMUM=3.5
  export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
  "$prefix/bin/protoc" --version >/dev/null 2>&1 ||
    miss "a protoc that runs ($prefix/bin/protoc; its libraries: LD_LIBRARY_PATH=$LD_LIBRARY_PATH)"
  for n in $EBM_BUNDLE_SONAMES; do
    [[ -e "$tmp/lib/$n" ]] || ! [[ -L "$tmp/lib/$n" ]] || miss "$libdir/$n (a partial bundle?)"
  done
  note+="$linked of the bundle's libraries on LD_LIBRARY_PATH; "
  echo "prefix $prefix; $linked of the bundle's libraries are not on this machine"
}
# Python: the one with torch, the bundle's wheels in $tmp/site before its own packages, as
# EBM_PYTHON; Fashion-MNIST where the configs look for it.
setup_python() {
  local base=${EBM_BASE_PYTHON:-} key tag whl name ver wheels=()
  if [[ -z "$base" ]] && ((dry)); then
    key=$(sha256sum scripts/requirements.lock | cut -c1-16)
    base="${EBM_CACHE_DIR:-$HOME/.cache/ebm}/venv-$key/bin/python"
    [[ -x "$base" ]] || base=python3
  fi
  base=$(command -v "${base:-python3}" || true)
  if [[ -z "$base" ]] || ! "$base" -c 'import torch' 2>/dev/null; then
    miss "a Python with torch (python3, or EBM_BASE_PYTHON=...; got '${base:-none}')"
    return 1
  fi
  tag=$("$base" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
  for whl in "$bundle"/wheels/*.whl; do
    [[ -f "$whl" ]] || { miss "wheels in $bundle/wheels"; continue; }
    name=${whl##*/} && ver=${name#*-} && ver=${ver%%-*} && name=${name%%-*}
    if [[ "$whl" == *-py3-none-any.whl || "$whl" == *-"$tag"-"$tag"-* ]]; then
      wheels+=("$whl")
    elif "$base" -c "import sys, $name; sys.exit($name.__version__ != '$ver')" 2>/dev/null; then
      echo "the bundle's ${whl##*/} is not for $tag: using $base's own $name $ver"
      note+="$name $ver of $base (the wheel is not for $tag); "
    else
      miss "$name $ver for $tag: the bundle's ${whl##*/} does not fit $base, which has none"
    fi
  done
  if ((${#wheels[@]})); then
    "$base" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target \
      "$tmp/site" "${wheels[@]}" || miss "pip install --no-index of ${wheels[*]}"
  fi
  cat >"$tmp/bin/python" <<EOF
#!/bin/sh
# EBM_PYTHON of scripts/device_check.sh: $base with the bundle's wheels first on sys.path.
PYTHONPATH="$tmp/site\${PYTHONPATH:+:\$PYTHONPATH}" exec "$base" "\$@"
EOF
  chmod +x "$tmp/bin/python"
  export EBM_PYTHON="$tmp/bin/python"
  "$EBM_PYTHON" -c '
import importlib.util, os, mujoco, torch
s = importlib.util.find_spec("gymnasium_robotics")
hand = os.path.join(os.path.dirname(s.origin), "envs", "assets", "hand", "manipulate_block.xml")
assert os.path.exists(hand), hand
print(f"torch {torch.__version__}, mujoco {mujoco.__version__} ({mujoco.__file__}), hand: {hand}")
' || miss "torch, mujoco and gymnasium_robotics' hand assets through $EBM_PYTHON"
  # Fashion-MNIST where the configs look for it, when the machine has none.
  local fm=/usr/share/datasets/fashion-mnist
  if ((!dry)) && [[ -d "$bundle/datasets/fashion-mnist" && ! -e "$fm" ]]; then
    if mkdir -p "${fm%/*}" 2>/dev/null && ln -s "$bundle/datasets/fashion-mnist" "$fm"; then
      echo "Fashion-MNIST ($EBM_BUNDLE_FASHION_MNIST_SPLITS) at $fm"
    else
      echo "Fashion-MNIST: use --set data.path=$bundle/datasets/fashion-mnist"
    fi
  fi
}

# ---- machine facts (GPU-only parts skipped on --dry-run) ----------------------------------------
machine() {
  if ((dry)); then
    echo "nvidia-smi: skipped: no GPU"
  else
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader \
      >"$work/gpu.csv" || miss "nvidia-smi"
    cat "$work/gpu.csv" 2>/dev/null || true
  fi
  DRY=$dry WORK="$work" CXX_PATH="$cxx" NINJA="$ninja" "$EBM_PYTHON" - <<'PY' || { note+="no GPU"; return 1; }
import json, os, platform, subprocess, torch

def first_line(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return None
def last_line(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    except (OSError, IndexError):
        return None
dry, work = os.environ["DRY"] == "1", os.environ["WORK"]
gpu = "skipped: no GPU"
if not dry:
    try:
        name, driver, memory, sm_clock = [x.strip() for x in
                                          open(os.path.join(work, "gpu.csv")).readline().split(",")]
        gpu = {"name": name, "driver": driver, "memory_total": memory, "max_sm_clock": sm_clock}
    except (OSError, ValueError):
        gpu = None
cuda = torch.cuda.is_available()
info = {
    "gpu": gpu,
    "torch": {"version": torch.__version__, "cuda": torch.version.cuda,
              "cudnn": torch.backends.cudnn.version() if cuda else None,
              "cuda_available": cuda,
              "device": torch.cuda.get_device_name(0) if cuda else None},
    "python": platform.python_version(), "cpus": os.cpu_count(),
    "glibc": " ".join(platform.libc_ver()),
    "cxx": first_line([os.environ["CXX_PATH"], "--version"]),
    "cmake": first_line(["cmake", "--version"]), "ninja": first_line([os.environ["NINJA"], "--version"]),
    "nvcc": last_line(["nvcc", "--version"]) if not dry else None,
    "commit": first_line(["git", "rev-parse", "HEAD"]),
}
json.dump(info, open(os.path.join(work, "info.json"), "w"), indent=1)
print(json.dumps(info))
if not dry and not cuda:
    raise SystemExit("torch sees no GPU")
PY
}

# ---- (b) configure and build --------------------------------------------------------------------
configure() {
  cmake -S "$root" -B "$root/$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_MAKE_PROGRAM="$ninja" -DEBM_PYTHON="$EBM_PYTHON" -DCMAKE_PREFIX_PATH="$prefix" \
    -DProtobuf_PROTOC_EXECUTABLE="$prefix/bin/protoc" -DPKG_CONFIG_EXECUTABLE="$prefix/bin/pkg-config" \
    -DTORCH_CUDA_ARCH_LIST=9.0 -DEBM_WERROR=OFF -DEBM_BUILD_TESTS=ON -DEBM_BUILD_BENCH=ON
}
read -r -a targets <<<"${EBM_DEVICE_TARGETS:-bench_cd_step bench_langevin core_performance_test}"
build_targets() {
  local all t kept=()
  all=$("$ninja" -C "$root/$build" -t targets all) || return
  for t in "${targets[@]}"; do
    if grep -q "^$t: " <<<"$all"; then
      kept+=("$t")
    else
      note+="no target $t in this tree: not built; "
    fi
  done
  ((${#kept[@]})) || { note+="nothing to build"; return 1; }
  targets=("${kept[@]}")
  cmake --build "$root/$build" -j "${EBM_DEVICE_JOBS:-$(nproc)}" --target "${targets[@]}" -- -k 0
}

# ---- (c) CUDA tests, (d) benchmarks -------------------------------------------------------------
cuda_tests() {
  local n
  n=$(ctest --test-dir "$root/$build" -N -R '^Cuda' | awk '/Total Tests:/ {print $3}')
  note="${n:-0} tests"
  ((!dry)) || note+=" (they skip without a GPU)"
  ctest --test-dir "$root/$build" -R '^Cuda' --output-on-failure --no-tests=error --timeout 600 \
    --output-junit "$work/cuda_tests.xml"
}
bench_cd_step() {
  [[ -x "$root/$build/bin/bench_cd_step" ]] || { note="not built"; return 127; }
  "$EBM_PYTHON" bench/cd_step_compare.py "$root/$build/bin/bench_cd_step" "${cd_args[@]}" |
    tee "$work/cd_step.out"
}
bench_langevin() {
  [[ -x "$root/$build/bin/bench_langevin" ]] || { note="not built"; return 127; }
  "$root/$build/bin/bench_langevin" "${lv_args[@]}" --json "$work/langevin.json" |
    tee "$work/langevin.out"
}

echo "=== device_check ($mode): $root -> $build, figures in $out"
run_step setup setup || exit 1
run_step machine machine || true
run_step configure configure || exit 1
((configure_only)) && exit "$failed"
run_step build build_targets || true
run_step cuda_tests cuda_tests || true
run_step bench_cd_step bench_cd_step || true
run_step bench_langevin bench_langevin || true
exit "$failed"
