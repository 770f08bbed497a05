"""The Gloo shim (ebm/dist/gloo_backend.cc) parses LibTorch's ProcessGroupGloo.hpp with Debian's
Gloo headers, which are older than the Gloo inside libtorch_cpu.so. That is sound only while no
code compiled from those headers ends up in our binaries: every Gloo function and vtable must come
from libtorch_cpu.so. This checks the library and the `ebm` command: no defined symbol of
namespace gloo, and (so that the check is not vacuous) a call into ProcessGroupGloo's constructor.

    gloo_shim_test.py LIBEBM_DIST.a EBM_BINARY
"""
import re
import subprocess
import sys

GLOO = re.compile(r"(^|[^A-Za-z_:])gloo::")


def symbols(path, which):
    out = subprocess.run(["nm", "-C", which, path], check=True, capture_output=True,
                         text=True).stdout
    return [line for line in out.splitlines() if line.strip() and not line.endswith(":")]


def main():
    failed = False
    for path in sys.argv[1:]:
        defined = [s for s in symbols(path, "--defined-only") if GLOO.search(s)]
        for s in defined[:20]:
            print(f"{path}: defines {s}")
        failed |= bool(defined)
    lib_undefined = symbols(sys.argv[1], "--undefined-only")
    if not any("ProcessGroupGloo::ProcessGroupGloo(" in s for s in lib_undefined):
        print(f"{sys.argv[1]}: no call of ProcessGroupGloo's constructor (is the shim built?)")
        failed = True
    print("FAILED" if failed else "ok: no Gloo code of our own; ProcessGroupGloo from LibTorch")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
