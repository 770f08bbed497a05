#!/usr/bin/env python3
"""Missing standard includes: every project source that names a standard-library facility includes
its header itself (a .cc may rely on the includes of its own header, foo.cc on foo.h), instead of
receiving it through another header that may drop it. clang-tidy 14 has no include-cleaner, so
this check covers the standard library by a table of names and their headers; it reads code with
comments and string literals removed.

    scripts/check/includes.py [--fix] [FILE ...]      (default: every project source)

Prints each file with the headers it misses and exits 1 when there is one; with --fix, adds them
to the file's block of standard includes instead (run clang-format afterwards to sort it).
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
FOLDERS = ("bench", "datasets", "ebm", "examples", "fuzz", "plugin", "tests")

# Header -> the std:: names (after "std::") that need it. Names several headers declare (size_t,
# std::swap, std::begin) are left out.
HEADERS = {
    "algorithm": "all_of any_of none_of count_if find_if find_if_not for_each sort stable_sort "
                 "min_element max_element minmax_element clamp transform remove_if reverse "
                 "fill_n copy_if unique lower_bound upper_bound equal_range binary_search "
                 "nth_element partial_sort shuffle max min",
    "array": "array",
    "atomic": "atomic",
    "chrono": "chrono",
    "condition_variable": "condition_variable",
    "cstring": "memcpy memset memcmp strcmp strncmp strlen memmove strerror",
    "deque": "deque",
    "filesystem": "filesystem",
    "fstream": "ifstream ofstream fstream",
    "functional": "function",
    "future": "future async promise",
    "iomanip": "setw setprecision setfill",
    "limits": "numeric_limits",
    "map": "map multimap",
    "memory": "unique_ptr shared_ptr make_unique make_shared weak_ptr enable_shared_from_this",
    "mutex": "mutex lock_guard unique_lock scoped_lock",
    "numeric": "accumulate iota inner_product partial_sum",
    "optional": "optional nullopt make_optional",
    "random": "mt19937 mt19937_64 uniform_int_distribution uniform_real_distribution "
              "normal_distribution random_device",
    "regex": "regex smatch regex_match regex_search",
    "set": "set multiset",
    "sstream": "ostringstream istringstream stringstream",
    "stdexcept": "runtime_error invalid_argument out_of_range logic_error",
    "string": "string to_string stoi stol stoll stod stoul stoull getline",
    "string_view": "string_view",
    "thread": "thread this_thread",
    "tuple": "tuple make_tuple tie",
    "unordered_map": "unordered_map",
    "unordered_set": "unordered_set",
    "utility": "pair make_pair move forward exchange",
    "variant": "variant visit holds_alternative",
    "vector": "vector",
}
NAME_TO_HEADER = {name: header for header, names in HEADERS.items() for name in names.split()}
# Headers that provide others by the standard's own promise.
IMPLIED = {"sstream": {"string"}, "fstream": {"string"}, "iostream": {"string"}}
USE = re.compile(r"\bstd::(\w+)")
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)
COMMENT_OR_STRING = re.compile(r'//[^\n]*|/\*.*?\*/|R"(\w*)\(.*?\)\1"|"(?:\\.|[^"\\\n])*"|'
                               r"'(?:\\.|[^'\\\n])*'", re.S)


def includes_of(path):
    return set(INCLUDE.findall(path.read_text(errors="replace")))


def missing(path):
    text = path.read_text(errors="replace")
    have = set(INCLUDE.findall(text))
    own_header = path.with_suffix(".h")
    if path.suffix == ".cc" and own_header.exists():
        have |= includes_of(own_header)
    for header in list(have):
        have |= IMPLIED.get(header, set())
    code = COMMENT_OR_STRING.sub(" ", text)
    needed = {NAME_TO_HEADER[name] for name in USE.findall(code) if name in NAME_TO_HEADER}
    return sorted(needed - have)


def add_includes(path, headers):
    lines = path.read_text().split("\n")
    standard = [i for i, line in enumerate(lines)
                if re.match(r"#include <[a-z_]+>$", line.strip())]
    new = ["#include <%s>" % h for h in headers]
    if standard:
        at = standard[-1] + 1
    else:  # a new block after the first one
        first = next(i for i, line in enumerate(lines) if line.startswith("#include"))
        at = first
        while at < len(lines) and lines[at].startswith("#include"):
            at += 1
        new = [""] + new
    lines[at:at] = new
    path.write_text("\n".join(lines))


def project_sources():
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".cc", ".h") and path.is_file():
                yield path


def main():
    args = sys.argv[1:]
    fix = "--fix" in args
    files = [pathlib.Path(f).resolve() for f in args if f != "--fix"] or list(project_sources())
    offenders = 0
    for path in files:
        lacking = missing(path)
        if lacking and fix:
            add_includes(path, lacking)
        elif lacking:
            offenders += 1
            print("%s: include %s" % (path.relative_to(ROOT),
                                      " ".join("<%s>" % h for h in lacking)))
    if offenders:
        print("includes: %d of %d files name standard facilities whose headers they do not "
              "include" % (offenders, len(files)))
        return 1
    print("includes: every file includes the standard headers of what it names (%d files)"
          % len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
