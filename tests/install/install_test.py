"""The installable C++ package: `cmake --install` into a fresh prefix, then the out-of-tree
example (examples/find_package) configured with only that prefix, built (with every installed
public header compiled) and run; the installed `ebm` command runs, and MuJoCo's Python bindings
load the installed plugins by scanning their folder.

usage: install_test.py BUILD_DIR SOURCE_DIR
"""
import os
import shutil
import subprocess
import sys
import tempfile

import mujoco


def run(*args, **kw):
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    assert out.returncode == 0, f"{' '.join(map(str, args))}:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out.stdout


def main():
    build, source = (os.path.abspath(p) for p in sys.argv[1:3])
    with tempfile.TemporaryDirectory() as tmp:
        prefix, example = os.path.join(tmp, "prefix"), os.path.join(tmp, "example")
        run("cmake", "--install", build, "--prefix", prefix)
        assert "ebm " in run(os.path.join(prefix, "bin", "ebm"), "--version")
        plugins = os.path.join(prefix, "lib", "ebm", "plugins")
        assert sorted(os.listdir(plugins)) == ["libebm_generator.so", "libebm_recorder.so"], \
            os.listdir(plugins)
        mujoco.mj_loadAllPluginLibraries(plugins)
        xml = ('<mujoco><extension><plugin plugin="ebm.recorder"><instance name="r">'
               f'<config key="path" value="{tmp}/rec"/></instance></plugin></extension>'
               '<worldbody><body><freejoint/><geom size="0.1"/></body></worldbody></mujoco>')
        mujoco.MjModel.from_xml_string(xml)  # "unknown plugin" unless the folder was scanned
        # Only the prefix (and the toolchain): neither the source nor the build tree.
        launcher = ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"] if shutil.which("ccache") else []
        run("cmake", "-S", os.path.join(source, "examples", "find_package"), "-B", example,
            "-G", "Ninja", f"-DCMAKE_PREFIX_PATH={prefix}", "-DEBM_EXAMPLE_CHECK_HEADERS=ON",
            "-DCMAKE_BUILD_TYPE=Release", *launcher)
        run("cmake", "--build", example, "-j", "1")
        for name in ("build.ninja", "CMakeCache.txt"):
            text = open(os.path.join(example, name)).read()
            for tree in (build, os.path.join(source, "ebm"), os.path.join(source, "datasets")):
                assert tree not in text, f"the example's {name} refers to {tree}"
        out = run(os.path.join(example, "gaussian_langevin"))
        assert out.strip().endswith("OK"), out
        print(out.strip().splitlines()[0])
    print("ok: installed, found with find_package(ebm), every public header compiled, example ran")


if __name__ == "__main__":
    main()
