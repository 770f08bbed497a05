#!/usr/bin/env bash
# Prepares, on this Debian bookworm machine, what an offline GPU machine (the device tool's
# nvidia-h200: x86-64, CUDA 13.0, PyTorch 2.11 as its python3, CMake, ninja; no Debian libraries,
# no network) needs beside the working tree to build and test the project with
# scripts/device_check.sh:
#   DIR/root/usr        Debian's libraries, headers and tools that our CMake build finds:
#                       protobuf 3.21 + protoc, yaml-cpp, GoogleTest, Eigen, Gloo's headers, fmt,
#                       CLI11, libpng, zlib, libjpeg, matio (+ the shared libraries it loads),
#                       pkg-config, ninja. The .debs (apt-get download, kept under
#                       $EBM_CACHE_DIR/device-debs) unpacked with dpkg -x, then pruned: docs, man
#                       pages, static libraries beside shared ones, libraries nothing loads, tools
#                       nothing runs; .pc files and symbolic links made relative to the bundle.
#                       Use it as CMAKE_PREFIX_PATH / PATH / LD_LIBRARY_PATH.
#   DIR/wheels          the pinned mujoco wheel for CPython $EBM_DEVICE_PYTHON_VERSION (default
#                       3.12, the device's) and gymnasium-robotics cut down to its Shadow Hand
#                       assets (envs/assets/hand, stls/hand, textures; RECORD rewritten)
#   DIR/datasets/fashion-mnist   Debian's Fashion-MNIST (dataset-fashion-mnist): both splits when
#                       they fit in the size limit, else the test split alone
#   DIR/bundle.env      what device_check.sh reads: the glibc / libstdc++ versions the binaries
#                       need, the system libraries they expect, versions, the splits bundled
#   DIR/MANIFEST        every file: size, sha256, path (links: target); then the sizes
# A device call carries the working tree and the bundle, 64 MiB in all: the script fails, naming
# the sizes, when the bundle exceeds 64 MiB minus the tree (git ls-files, tracked and untracked).
#   scripts/make_device_bundle.sh [DIR]        (default: .device_bundle in the checkout, ignored)
# Environment: EBM_PYTHON (the Python whose pip downloads the wheels; default: the bootstrap's
# cached venv), EBM_CACHE_DIR (default ~/.cache/ebm), EBM_DEVICE_PYTHON_VERSION (default 3.12).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
dir=${1:-$root/.device_bundle}
cache=${EBM_CACHE_DIR:-$HOME/.cache/ebm}
pyver=${EBM_DEVICE_PYTHON_VERSION:-3.12}
arch=x86_64-linux-gnu
limit=$((64 * 1024 * 1024))
log() { echo "[device-bundle] $*" >&2; }
die() { echo "[device-bundle] error: $*" >&2; exit 1; }

for tool in apt-get apt-cache dpkg dpkg-deb dpkg-query readelf sha256sum python3 git; do
  command -v "$tool" >/dev/null || die "$tool is missing (this script runs on Debian bookworm, amd64)"
done
[[ $(dpkg --print-architecture) == amd64 ]] || die "the GPU machine is x86-64: run this on amd64"
mkdir -p "$dir" "$cache/device-debs" "$cache/device-wheels"
dir=$(cd "$dir" && pwd)
[[ "$dir" != "$root" && "$dir" != / ]] || die "DIR must be a folder of its own, not $dir"

# ---- 1. Debian packages ----------------------------------------------------------------------
# Headers and link-time files; the runtime packages below bring the shared libraries.
dev_pkgs=(libprotobuf-dev libyaml-cpp-dev libgtest-dev libeigen3-dev libgloo-dev libfmt-dev
          libcli11-dev libpng-dev zlib1g-dev libjpeg62-turbo-dev libmatio-dev)
# Shared libraries and tools, with everything they depend on (apt-cache depends --recurse), but
# the C and C++ runtimes every machine with a compiler has.
run_pkgs=(libprotobuf32 libprotobuf-lite32 libprotoc32 protobuf-compiler libyaml-cpp0.7 libfmt9
          libpng16-16 zlib1g libjpeg62-turbo libmatio11 pkgconf pkgconf-bin ninja-build)
system_pkgs='^(libc6|libgcc-s1|libstdc\+\+6|gcc-12-base)$'
mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances "${run_pkgs[@]}" | grep -v '^[ <]' | sort -u |
  grep -Ev "$system_pkgs")
((${#closure[@]} >= ${#run_pkgs[@]})) || die "apt-cache depends found too few packages: ${closure[*]}"
pkgs=("${dev_pkgs[@]}" "${closure[@]}")

# deb_of PKG: the path of PKG's .deb at apt's candidate version (the newest the mirrors have, so
# that a library and its -dev package always match), from apt's archive cache or our cache,
# downloaded when neither has it.
deb_of() {
  local p=$1 v f
  v=$(apt-cache policy "$p" | awk '/Candidate:/ {print $2}')
  [[ -n "$v" && "$v" != "(none)" ]] || die "Debian package $p is unknown here (apt-get update?)"
  local vf=${v//:/%3a}
  for f in "$cache/device-debs/${p}_${vf}_"*.deb /var/cache/apt/archives/"${p}_${vf}_"*.deb; do
    [[ -f "$f" ]] && { echo "$f"; return; }
  done
  (cd "$cache/device-debs" && apt-get download -q=2 -o APT::Sandbox::User=root "$p=$v" >&2) ||
    die "apt-get download $p=$v failed (no network, or the version left the mirrors: apt-get update)"
  for f in "$cache/device-debs/${p}_${vf}_"*.deb; do
    [[ -f "$f" ]] && { echo "$f"; return; }
  done
  die "apt-get download $p=$v left no .deb in $cache/device-debs"
}

rm -rf "$dir/root" "$dir/wheels" "$dir/datasets" "$dir/MANIFEST" "$dir/bundle.env"
mkdir -p "$dir/root" "$dir/wheels"
debs_used=()
for p in "${pkgs[@]}"; do
  deb=$(deb_of "$p")
  dpkg-deb -x "$deb" "$dir/root"
  debs_used+=("$(basename "$deb" .deb)")
done
log "unpacked ${#pkgs[@]} Debian packages"

# ---- 2. Prune, relocate, and read what the binaries need of the system -----------------------
# Writes the EBM_BUNDLE_* lines about the binaries on stdout (into bundle.env).
elf_env=$(python3 - "$dir/root" "$arch" <<'PY'
import os, re, shutil, subprocess, sys

root, arch = sys.argv[1:3]
usr = os.path.join(root, "usr")
libdir = os.path.join(usr, "lib", arch)

def rm(path):
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)

def walk_files():
    for d, _, files in os.walk(root):
        for f in files:
            yield os.path.join(d, f)

# Debian bookworm still ships some libraries in /lib: merge them into /usr/lib (as on a
# usr-merged system), then make every absolute link relative to the bundle.
for top in ("lib", "lib64", "bin", "sbin"):
    src = os.path.join(root, top)
    if os.path.isdir(src) and not os.path.islink(src):
        for d, _, files in os.walk(src):
            dst = os.path.join(usr, os.path.relpath(d, root))
            os.makedirs(dst, exist_ok=True)
            for f in files:
                os.replace(os.path.join(d, f), os.path.join(dst, f))
        shutil.rmtree(src)
for path in list(walk_files()):
    if os.path.islink(path):
        target = os.readlink(path)
        if target.startswith("/"):
            if re.match(r"^/(lib|lib64|bin|sbin)/", target):
                target = "/usr" + target
            os.unlink(path)
            os.symlink(os.path.relpath(root + target, os.path.dirname(path)), path)

# Whole folders nobody needs: of usr/share only CMake and pkg-config files stay (Gloo's CMake
# package goes: we use its headers alone, and it names a library we omit).
for rel in ("etc", "var", "usr/src", "usr/sbin", "usr/libexec", "usr/include/eigen3/unsupported",
            "usr/share/cmake/Gloo"):
    rm(os.path.join(root, rel))
for f in os.listdir(os.path.join(usr, "share")):
    if f not in ("cmake", "eigen3", "pkgconfig"):
        rm(os.path.join(usr, "share", f))
for f in os.listdir(os.path.join(usr, "lib")):
    if f.startswith("libgloo"):
        rm(os.path.join(usr, "lib", f))
keep_bin = re.compile(r"^(protoc(-[0-9.]+)?|pkg-config|pkgconf|ninja)$")
for f in os.listdir(os.path.join(usr, "bin")):
    if not keep_bin.match(f):
        rm(os.path.join(usr, "bin", f))
# Static libraries beside shared ones (GoogleTest's are static only, and stay).
for path in list(walk_files()):
    if path.endswith(".a") and os.path.exists(path[:-2] + ".so"):
        rm(path)
    elif path.endswith(".la"):
        rm(path)

def is_elf(path):
    if os.path.islink(path) or not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"

def dynamic(path):
    out = subprocess.run(["readelf", "-dW", path], capture_output=True, text=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out)
    soname = re.findall(r"\(SONAME\)\s+Library soname: \[(.+?)\]", out)
    return needed, soname[0] if soname else os.path.basename(path)

# Shared libraries nothing loads (plugins of SASL, OpenSSL engines, libraries only those need):
# keep what the executables and the libraries we link (the targets of the lib*.so development
# links) reach through NEEDED, delete the rest.
elves = {p: dynamic(p) for p in walk_files() if is_elf(p)}
by_soname = {}
for p, (_, soname) in elves.items():
    by_soname.setdefault(soname, p)
roots = [p for p in elves if os.path.dirname(p) == os.path.join(usr, "bin")]
for f in os.listdir(libdir):
    link = os.path.join(libdir, f)
    if re.match(r"^lib.*\.so$", f) and os.path.islink(link) and os.path.exists(link):
        roots.append(os.path.realpath(link))
keep, todo, from_system = set(), list(roots), set()
while todo:
    p = todo.pop()
    if p in keep:
        continue
    keep.add(p)
    for n in elves[p][0]:
        if n in by_soname:
            todo.append(by_soname[n])
        else:
            from_system.add(n)
for p in elves:
    if p not in keep:
        rm(p)
for path in list(walk_files()):                 # links left dangling by the pruning
    if os.path.islink(path) and not os.path.exists(path):
        rm(path)
for d, dirs, files in os.walk(root, topdown=False):
    if d != root and not os.listdir(d):
        os.rmdir(d)

# pkg-config files: a prefix relative to the .pc file; flags for folders that are not in the
# bundle (matio.pc names Debian's HDF5 development folders; libmatio.so finds libhdf5 itself) go.
for path in walk_files():
    if not path.endswith(".pc") or os.path.islink(path):
        continue
    up = os.path.relpath(usr, os.path.dirname(path))
    lines = []
    for line in open(path).read().splitlines():
        if line.startswith("prefix="):
            line = "prefix=${pcfiledir}/" + up
        elif re.match(r"^\w+=/usr(/|$)", line):
            key, _, value = line.partition("=")
            line = key + "=${prefix}" + value[4:]
        elif line.startswith(("Libs", "Cflags")):
            key, _, flags = line.partition(":")
            kept = []
            for flag in flags.split():
                if re.match(r"^-[IL]/usr/", flag) or "hdf5" in flag:
                    if not os.path.isdir(root + flag[2:]) or "hdf5" in flag:
                        continue
                    flag = flag[:2] + "${prefix}" + flag[6:]
                kept.append(flag)
            line = key + ": " + " ".join(kept)
        lines.append(line)
    open(path, "w").write("\n".join(lines) + "\n")

# What the kept binaries ask of the machine's glibc and libstdc++.
def newest(prefix):
    versions = set()
    for p in keep:
        out = subprocess.run(["readelf", "-VW", p], capture_output=True, text=True).stdout
        versions.update(re.findall(r"Name: %s_([0-9.]+)" % prefix, out))
    key = lambda v: tuple(int(x) for x in v.split("."))
    return max(versions, key=key) if versions else ""

print(f'EBM_BUNDLE_GLIBC={newest("GLIBC")}')
print(f'EBM_BUNDLE_GLIBCXX={newest("GLIBCXX")}')
print(f'EBM_BUNDLE_CXXABI={newest("CXXABI")}')
print(f'EBM_BUNDLE_SYSTEM_LIBS="{" ".join(sorted(from_system))}"')
sonames = sorted(elves[p][1] for p in keep if os.path.dirname(p) == libdir)
print(f'EBM_BUNDLE_SONAMES="{" ".join(sonames)}"')
PY
)

# ---- 3. Wheels --------------------------------------------------------------------------------
pin() { sed -n "s/^$1==\([^ ;#]*\).*/\1/p" "$root/scripts/requirements.lock"; }
mujoco_v=$(pin mujoco)
robotics_v=$(pin gymnasium-robotics)
[[ -n "$mujoco_v" && -n "$robotics_v" ]] ||
  die "scripts/requirements.lock pins no mujoco== or gymnasium-robotics== version"
python=${EBM_PYTHON:-}
if [[ -z "$python" ]]; then
  key=$(sha256sum "$root/scripts/requirements.lock" | cut -c1-16)
  python="$cache/venv-$key/bin/python"
  [[ -x "$python" ]] || python=$("$here/bootstrap.sh" | tail -n 1)
fi
"$python" -m pip --version >/dev/null 2>&1 || die "$python has no pip (set EBM_PYTHON)"
wheel_cache="$cache/device-wheels"
tag="cp${pyver/./}"
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$wheel_cache" \
  "mujoco==$mujoco_v" "gymnasium-robotics==$robotics_v" >&2 ||
  die "pip download of mujoco==$mujoco_v / gymnasium-robotics==$robotics_v failed (network?)"
mj_wheel=$(find "$wheel_cache" -name "mujoco-$mujoco_v-$tag-$tag-*x86_64*.whl" | sort | tail -n 1)
gr_wheel="$wheel_cache/gymnasium_robotics-$robotics_v-py3-none-any.whl"
[[ -f "$mj_wheel" && -f "$gr_wheel" ]] || die "no wheel mujoco-$mujoco_v-$tag or $gr_wheel in $wheel_cache"
cp "$mj_wheel" "$dir/wheels/"
# gymnasium-robotics is 26 MB, nearly all other robots' meshes: keep what our build uses, the
# Shadow Hand scenes (envs/assets/hand), their meshes (stls/hand) and textures.
python3 - "$gr_wheel" "$dir/wheels/$(basename "$gr_wheel")" <<'PY'
import base64, hashlib, sys, zipfile

src, dst = sys.argv[1:3]
assets = "gymnasium_robotics/envs/assets/"
keep = ("hand/", "stls/hand/", "textures/", "LICENSE.md")
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
    record = next(n for n in zin.namelist() if n.endswith(".dist-info/RECORD"))
    rows = []
    for info in zin.infolist():
        name = info.filename
        if name == record or (name.startswith(assets) and not name[len(assets):].startswith(keep)):
            continue
        data = zin.read(name)
        zout.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{name},sha256={digest},{len(data)}")
    rows.append(f"{record},,")
    zout.writestr(record, "\n".join(rows) + "\n")
PY

# ---- 4. Sizes, Fashion-MNIST if it fits, bundle.env, MANIFEST ---------------------------------
tree_bytes() {  # what a device call sends besides the bundle: git's tracked and untracked files
  (cd "$root" && git ls-files -z --cached --others --exclude-standard) | python3 -c '
import os, sys
root, skip = sys.argv[1], sys.argv[2]
total = 0
for rel in sys.stdin.buffer.read().decode().split("\0"):
    path = os.path.join(root, rel)
    if rel and not os.path.abspath(path).startswith(skip + os.sep) and os.path.isfile(path) \
            and not os.path.islink(path):
        total += os.path.getsize(path)
print(total)' "$root" "$dir"
}
bundle_bytes() { du -sb --apparent-size "$dir" | cut -f1; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
tree=$(tree_bytes)
budget=$((limit - tree))

fm_deb=$(deb_of dataset-fashion-mnist)
fm_tmp=$(mktemp -d)
trap 'rm -rf "$fm_tmp"' EXIT
dpkg-deb -x "$fm_deb" "$fm_tmp"
fm_src="$fm_tmp/usr/share/datasets/fashion-mnist"
fm_all=$(du -cb "$fm_src"/*-ubyte.gz | tail -n 1 | cut -f1)
mkdir -p "$dir/datasets/fashion-mnist"
# 256 KiB for bundle.env and the MANIFEST.
if (($(bundle_bytes) + fm_all + 262144 <= budget)); then
  cp "$fm_src"/*-ubyte.gz "$dir/datasets/fashion-mnist/"
  splits="train test"
else
  cp "$fm_src"/t10k-*-ubyte.gz "$dir/datasets/fashion-mnist/"
  splits="test"
  log "Fashion-MNIST: the test split only (both would exceed the budget by" \
      "$(mib $(($(bundle_bytes) + fm_all + 262144 - budget))))"
fi

cat >"$dir/bundle.env" <<EOF
# Written by scripts/make_device_bundle.sh; read by scripts/device_check.sh.
EBM_BUNDLE_ARCH=$arch
EBM_BUNDLE_PREFIX=root/usr
$elf_env
EBM_BUNDLE_PYTHON_TAG=$tag
EBM_BUNDLE_MUJOCO=$mujoco_v
EBM_BUNDLE_GYMNASIUM_ROBOTICS=$robotics_v
EBM_BUNDLE_FASHION_MNIST_SPLITS="$splits"
EBM_BUNDLE_DEBS="${debs_used[*]}"
EOF

python3 - "$dir" >"$dir/MANIFEST.tmp" <<'PY'
import hashlib, os, sys

top = sys.argv[1]
groups = {}
print("# size sha256 path (links: -> target), relative to the bundle folder")
for d, dirs, files in sorted(os.walk(top)):
    dirs.sort()
    for f in sorted(files):
        path = os.path.join(d, f)
        rel = os.path.relpath(path, top)
        if rel in ("MANIFEST", "MANIFEST.tmp"):
            continue
        if os.path.islink(path):
            print(f"0 - {rel} -> {os.readlink(path)}")
            continue
        size = os.path.getsize(path)
        digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
        print(f"{size} {digest} {rel}")
        parts = rel.split(os.sep)
        group = "/".join(parts[:3]) if parts[0] == "root" else rel if parts[0] == "wheels" \
            else "/".join(parts[:2])
        groups[group] = groups.get(group, 0) + size
print("# sizes by folder")
for g, s in sorted(groups.items(), key=lambda kv: -kv[1]):
    print(f"# {s / 1048576:8.2f} MiB  {g}")
PY
mv "$dir/MANIFEST.tmp" "$dir/MANIFEST"
total=$(bundle_bytes)
{
  echo "# bundle total: $total bytes ($(mib "$total"))"
  echo "# working tree: $tree bytes ($(mib "$tree")); limit for both: $limit bytes (64 MiB)"
} >>"$dir/MANIFEST"
grep '^# ' "$dir/MANIFEST" | sed -n '2,$p' >&2
if ((total > budget)); then
  die "the bundle is $(mib "$total"), over the $(mib "$budget") the $(mib "$tree") working tree" \
      "leaves of a device call's 64 MiB: prune it (see MANIFEST's sizes)"
fi
log "ready: $dir ($(mib "$total"); with the tree $(mib $((total + tree))) of 64 MiB)"
