#!/usr/bin/env python3
"""clang-tidy (the repository's .clang-tidy: naming, function size) over every project source.

    scripts/check/tidy.py BUILD_DIR [FILE ...]

Reads BUILD_DIR/compile_commands.json. Parsing LibTorch's headers dominates the cost, so the
shared LibTorch header is precompiled once with clang (BUILD_DIR/tidy/torch.pch, remade when its
inputs change) and every translation unit reuses it. A unit whose own text, project headers,
command and clang-tidy profile are unchanged since it last passed is not checked again: a change
can only bring new findings where it changed something. Those passes are remembered under
$EBM_CACHE_DIR/tidy (default ~/.cache/ebm/tidy), keyed on paths relative to the checkout
and the build folder, so that every clone on the machine shares them. Prints every finding and
exits 1 when there is one.
"""
import concurrent.futures
import hashlib
import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
FOLDERS = ("bench", "datasets", "ebm", "examples", "plugin", "tests")
CLANG = os.environ.get("EBM_CLANG", "clang++-14")
CLANG_TIDY = os.environ.get("EBM_CLANG_TIDY", "clang-tidy-14")


def sha(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def compile_entries(build):
    return json.loads((build / "compile_commands.json").read_text())


def pch_stub_flags(build):
    """The flags of CMake's LibTorch PCH target (ebm_torch_pch), which every unit's PCH shares."""
    for entry in compile_entries(build):
        if entry["file"].endswith("ebm_pch_stub.cc"):
            return clang_flags(entry.get("arguments") or shlex.split(entry["command"]))
    return None


def project_units(build):
    """(source path, argument list, object path) of each project translation unit."""
    units = []
    for entry in compile_entries(build):
        src = pathlib.Path(entry["directory"], entry["file"]).resolve()
        rel = src.relative_to(ROOT) if ROOT in src.parents else None
        if rel is None or rel.parts[0] not in FOLDERS:
            continue
        args = entry.get("arguments") or shlex.split(entry["command"])
        obj = args[args.index("-o") + 1] if "-o" in args else ""
        units.append((src, args, obj))
    return units


def pch_header(args):
    """The CMake precompiled header a unit includes (-include .../cmake_pch.hxx), if any."""
    for i, a in enumerate(args[:-1]):
        if a == "-include" and args[i + 1].endswith("cmake_pch.hxx"):
            return args[i + 1]
    return None


def clang_flags(args):
    """The unit's preprocessor and language flags, without output, input, warnings or the PCH."""
    out, skip = [], False
    for i, a in enumerate(args[1:], 1):
        if skip:
            skip = False
            continue
        if a in ("-o", "-include", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a == "-c" or a.startswith("-W") or a.startswith("-M") or a == args[-1]:
            continue
        out.append(a)
    return out


def build_pch(build, header, flags):
    """A clang PCH of the LibTorch header for these flags (remade when header or flags change)."""
    folder = build / "tidy"
    folder.mkdir(exist_ok=True)
    pch = folder / "torch.pch"
    stamp = folder / "torch.pch.key"
    key = sha(CLANG, "-fpch-instantiate-templates", " ".join(flags),
              pathlib.Path(header).read_bytes())
    if pch.exists() and stamp.exists() and stamp.read_text() == key:
        return pch
    print(f"tidy: precompiling LibTorch's header for clang ({pch})", flush=True)
    # Instantiating the header's templates once, in the PCH, halves each unit's parse.
    subprocess.run([CLANG, "-x", "c++-header", *flags, "-Wno-everything",
                    "-fpch-instantiate-templates", header, "-o", str(pch)], check=True)
    stamp.write_text(key)
    return pch


def header_deps(build):
    """object path -> the project headers it includes, from ninja's dependency log."""
    try:
        text = subprocess.run(["ninja", "-C", str(build), "-t", "deps"], check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    deps, current = {}, None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            current = line.split(":")[0]
            deps[current] = []
        elif current and line.strip():
            p = pathlib.Path(build, line.strip()).resolve()
            if ROOT in p.parents and p.suffix == ".h" and p.relative_to(ROOT).parts[0] in FOLDERS:
                deps[current].append(p)
    return deps


def portable(text, build):
    """text with the build folder and the checkout's root spelled relatively, so that a pass
    remembered in one clone counts in another (a fresh clone checks only what differs)."""
    return text.replace(str(build), "<build>").replace(str(ROOT), "<root>")


def tidy_profiles(src):
    """The .clang-tidy files that apply to src (its folders up to the root)."""
    out, folder = [], src.parent
    while True:
        f = folder / ".clang-tidy"
        if f.exists():
            out.append(f.read_bytes())
        if folder == ROOT:
            return out
        folder = folder.parent


def main():
    build = pathlib.Path(sys.argv[1]).resolve()
    only = {pathlib.Path(f).resolve() for f in sys.argv[2:]}
    cache = pathlib.Path(os.environ.get("EBM_CACHE_DIR", pathlib.Path.home() / ".cache/ebm")) / "tidy"
    cache.mkdir(parents=True, exist_ok=True)
    units = [u for u in project_units(build) if not only or u[0] in only]
    deps = header_deps(build)
    version = subprocess.run([CLANG_TIDY, "--version"], capture_output=True, text=True).stdout
    jobs, cached, pch = [], 0, None
    for src, args, obj in units:
        header = pch_header(args)
        flags = clang_flags(args)
        if header:
            pch = pch or build_pch(build, header, pch_stub_flags(build) or flags)
            flags += ["-include-pch", str(pch)]
        headers = sorted(deps.get(obj, []))
        key = sha(version, *tidy_profiles(src), portable(" ".join(flags), build),
                  src.read_bytes(),
                  *[h.read_bytes() for h in headers], *[str(h.relative_to(ROOT)) for h in headers],
                  str(src.relative_to(ROOT)))
        if (cache / key).exists():
            cached += 1
        else:
            jobs.append((src, flags, key))

    def run(job):
        src, flags, key = job
        header_filter = f"^{re.escape(str(ROOT))}/({'|'.join(FOLDERS)})/"
        p = subprocess.run([CLANG_TIDY, "--quiet", f"--header-filter={header_filter}", str(src),
                            "--", *flags],
                           capture_output=True, text=True, cwd=build)
        findings = [l for l in p.stdout.splitlines() if re.search(r": (warning|error):", l)]
        if p.returncode == 0 and not findings:
            (cache / key).touch()
        return src, p.returncode, p.stdout + p.stderr, findings

    failed = 0
    workers = max(1, int(os.environ.get("EBM_TIDY_JOBS", os.cpu_count() or 1)))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for src, code, output, findings in pool.map(run, jobs):
            if code != 0 or findings:
                failed += 1
                print(output.strip())
    print(f"tidy: {len(units)} units, {cached} unchanged since they passed, {len(jobs)} checked, "
          f"{failed} with findings")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
