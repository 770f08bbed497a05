#!/usr/bin/env bash
# Installs everything the project needs, idempotently:
#   1. Debian packages (compilers' companions, libraries, datasets) that are missing;
#   2. the pinned Python environment (scripts/requirements.lock: torch = LibTorch, mujoco,
#      gymnasium-robotics, tensorboard, ...) as a virtual environment cached outside the checkout
#      under $EBM_CACHE_DIR (default ~/.cache/ebm), keyed by the hash of the lock file, so every
#      clone and CI reuse it.
# Prints nothing on stdout but, as its last line, the path of the Python interpreter to build with.
#
# Environment:
#   EBM_PYTHON     a Python that already has torch, mujoco (and gymnasium_robotics): skip the venv
#                  (e.g. a GPU machine with PyTorch preinstalled).
#   EBM_CACHE_DIR  where cached environments live (default: $HOME/.cache/ebm).
#   EBM_SKIP_APT=1 do not touch Debian packages (e.g. no root).
#   EBM_BASE_PYTHON the interpreter used to create the venv (default: python3).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { echo "[bootstrap] $*" >&2; }

# ---- 1. Debian packages ---------------------------------------------------------------------
debs=(
  build-essential cmake ninja-build ccache pkg-config
  libeigen3-dev libyaml-cpp-dev libprotobuf-dev protobuf-compiler
  libgtest-dev
  libcli11-dev libfmt-dev libpng-dev zlib1g-dev libjpeg62-turbo-dev libmatio-dev
  libgloo-dev
  clang-14 libclang-rt-14-dev clang-format-14 clang-tidy-14 universal-ctags
  libosmesa6
  dataset-fashion-mnist
)
if [[ "${EBM_SKIP_APT:-0}" != 1 ]] && command -v dpkg-query >/dev/null; then
  missing=()
  for p in "${debs[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [[ "$st" == installed ]] || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing Debian packages: ${missing[*]}"
    sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >&2
  fi
fi

# ---- 2. Python environment ------------------------------------------------------------------
if [[ -n "${EBM_PYTHON:-}" ]]; then
  if ! "$EBM_PYTHON" -c 'import torch' 2>/dev/null; then
    log "EBM_PYTHON=$EBM_PYTHON cannot import torch"; exit 1
  fi
  echo "$EBM_PYTHON"; exit 0
fi
lock="$here/requirements.lock"
key=$(sha256sum "$lock" | cut -c1-16)
cache="${EBM_CACHE_DIR:-$HOME/.cache/ebm}"
venv="$cache/venv-$key"
if [[ ! -f "$venv/.complete" ]]; then
  log "creating Python environment $venv (first time only; torch + CUDA runtime wheels are several GB)"
  rm -rf "$venv"
  mkdir -p "$cache"
  "${EBM_BASE_PYTHON:-python3}" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install --progress-bar off -r "$lock" >&2
  "$venv/bin/python" -c 'import torch, mujoco, gymnasium_robotics' >&2
  touch "$venv/.complete"
  log "Python environment ready: $(du -sh "$venv" | cut -f1)"
fi

# ---- 3. The project's Python package (python/: `import ebm`), reinstalled when it changes ----
# A plain (not editable) install: every clone sharing this environment installs its own version
# when its sources differ from the installed ones.
pkg="$here/../python"
stamp=$(cd "$pkg" && find install.py ebm -name '*.py' | LC_ALL=C sort |
        xargs sha256sum | sha256sum | cut -c1-16)
if [[ "$(cat "$venv/.ebm-package" 2>/dev/null)" != "$stamp" ]]; then
  log "installing the ebm Python package into $venv"
  "$venv/bin/python" "$pkg/install.py" >&2
  echo "$stamp" > "$venv/.ebm-package"
fi
echo "$venv/bin/python"
