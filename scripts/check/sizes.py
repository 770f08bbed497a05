#!/usr/bin/env python3
"""Size limits of the C++ sources: no file over 600 lines, no function over 100 lines.

    scripts/check/sizes.py [ROOT]

Lists every offender (file:line, name, lines) and exits 1 when there is one. Functions come from
universal-ctags (their start and end lines). A function that is one long opcode switch may stay
long: mark its first line with `NOLINT(readability-function-size)`, the marker clang-tidy's
function-size check honours too.
"""
import json
import pathlib
import subprocess
import sys

MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 100
FOLDERS = ("bench", "datasets", "ebm", "examples", "fuzz", "plugin", "tests")
SUFFIXES = (".cc", ".h")
MARKER = "NOLINT(readability-function-size)"


def sources(root):
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix in SUFFIXES and path.is_file():
                yield path


def functions(path):
    """(name, first line, last line) of each function defined in `path`, from ctags."""
    out = subprocess.run(
        ["ctags", "--languages=C++", "--language-force=C++", "--c++-kinds=f", "--fields=+ne",
         "--output-format=json", "-o", "-", str(path)],
        check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        tag = json.loads(line)
        if tag.get("_type") == "tag" and "end" in tag:
            scope = "::".join(p for p in tag.get("scope", "").split("::") if not p.startswith("__anon"))
            yield (f"{scope}::{tag['name']}" if scope else tag["name"]), tag["line"], tag["end"]


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
    offenders = []
    for path in sources(root):
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
        rel = path.relative_to(root)
        if len(text) > MAX_FILE_LINES:
            offenders.append(f"{rel}: {len(text)} lines (at most {MAX_FILE_LINES}): split it by concern")
        for name, first, last in functions(path):
            n = last - first + 1
            if n > MAX_FUNCTION_LINES and MARKER not in text[first - 1]:
                offenders.append(f"{rel}:{first}: {name} is {n} lines (at most {MAX_FUNCTION_LINES}): "
                                 "split it into named steps")
    for o in offenders:
        print(o)
    print(f"sizes: {len(offenders)} offenders" if offenders else "sizes: every file and function within limits")
    return 1 if offenders else 0


if __name__ == "__main__":
    sys.exit(main())
