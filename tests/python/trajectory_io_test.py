"""`ebm.trajectory` (the project's Python package, as the bootstrap installed it) against
independent parties:
  - MuJoCo's Python bindings record a scene through the `ebm.recorder` plugin; our Python reader
    returns exactly the states stepped in Python, with the episodes' metadata;
  - the C++ reader (tests/fixtures/trajectory_dump) and `ebm data stats` read the files the Python
    writer writes, value for value, and the Python reader reads what the C++ side wrote;
  - a truncated file yields every complete episode, then raises naming the file and the offset;
    a flipped byte raises at its record; errors='warn' skips it as the C++ reader does;
  - CRC32C against its published check value and a byte-at-a-time loop.

usage: trajectory_io_test.py EBM PLUGIN_DIR TRAJECTORY_DUMP SOURCE_DIR
"""
import filecmp
import gc
import json
import os
import subprocess
import sys
import tempfile
import warnings

import mujoco
import numpy as np

import ebm
from ebm import trajectory as tj
from ebm._crc32c import _update_loop, crc32c

SCENE = """
<mujoco model="pyarm">
  <extension><plugin plugin="ebm.recorder"><instance name="rec">
    <config key="path" value="{path}"/>
    <config key="fields" value="time qpos qvel ctrl"/>
    <config key="decimation" value="3"/>
    <config key="episode_steps" value="90"/>
  </instance></plugin></extension>
  <option timestep="0.005"/>
  <worldbody>
    <body pos="0 0 0.5">
      <joint name="shoulder" type="hinge" axis="0 1 0"/>
      <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.03"/>
      <body pos="0.3 0 0">
        <joint name="elbow" type="hinge" axis="0 1 0"/>
        <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02"/>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="shoulder" ctrlrange="-1 1"/><motor joint="elbow" ctrlrange="-1 1"/>
  </actuator>
</mujoco>
"""


def dump(tool, path):
    out = subprocess.run([tool, path], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()], out.stderr


def check_installed_package(source_dir):
    """The package Python imports is the bootstrap's install of this checkout's python/ebm."""
    installed = os.path.dirname(ebm.__file__)
    source = os.path.join(source_dir, "python", "ebm")
    assert "site-packages" in installed, f"ebm imported from {installed}, not an installed copy"
    names = sorted(n for n in os.listdir(source) if n.endswith(".py"))
    _, differ, missing = filecmp.cmpfiles(source, installed, names, shallow=False)
    assert not differ and not missing, (
        f"the installed ebm package is stale ({differ + missing}): run scripts/bootstrap.sh")


def check_crc():
    assert crc32c(b"123456789") == 0xE3069283
    rng = np.random.default_rng(1)
    for n in (0, 7, 4095, 4096, 70001):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc32c(data) == _update_loop(0xFFFFFFFF, data) ^ 0xFFFFFFFF, n


def check_recorded_in_python(plugin_dir, tmp):
    mujoco.mj_loadAllPluginLibraries(plugin_dir)
    folder = os.path.join(tmp, "recorded")
    model = mujoco.MjModel.from_xml_string(SCENE.format(path=folder))
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    seen = []
    for _ in range(200):
        data.ctrl[:] = rng.uniform(-1, 1, size=model.nu)
        seen.append(np.concatenate([[data.time], data.qpos, data.qvel, data.ctrl]))
        mujoco.mj_step(model, data)
    del data  # the recorder writes the open episode
    gc.collect()
    episodes = list(tj.read(folder))
    # 200 steps: episodes of 90 steps (30 frames at decimation 3), 90, then 20 steps (7 frames).
    assert [e.num_frames for e in episodes] == [30, 30, 7], [e.num_frames for e in episodes]
    got = np.concatenate([np.concatenate([e[f] for f in ("time", "qpos", "qvel", "ctrl")], 1)
                          for e in episodes])
    expected = np.asarray(seen[::3], dtype=np.float32)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    bad = np.argwhere(got != expected)
    assert bad.size == 0, f"first mismatch at frame/column {bad[0]}"
    assert np.ptp(expected[:, 1]) > 0.1, "the arm did not move"
    first = episodes[0]
    assert first.timestep == 0.005 and first.decimation == 3, (first.timestep, first.decimation)
    assert first.model_hash != 0 and first.header.model_name == "pyarm"
    assert [e.episode_id for e in episodes] == sorted({e.episode_id for e in episodes})
    header = tj.read_header(tj.shards(folder)[0])
    assert header.fields == [("time", 1), ("qpos", 2), ("qvel", 2), ("ctrl", 2)], header.fields
    return folder, expected


def check_cpp_reads_python(tool, ebm_bin, tmp):
    rng = np.random.default_rng(2)
    episodes = [tj.Episode(fields={"qpos": rng.normal(size=(n, 3)), "qvel": rng.normal(size=(n, 2))},
                           episode_id=100 + i, seed=7 * i, start_state=i // 2, branch=i % 2,
                           start_time=0.5 * i)
                for i, n in enumerate((12, 5, 40))]
    path = os.path.join(tmp, "written", "mine.ebmtraj")
    assert tj.write(path, episodes, timestep=0.01, decimation=2, model_name="elsewhere",
                    model_hash=0x1234ABCD) == 3
    cpp, err = dump(tool, path)
    assert err == "", err
    assert [(e["id"], e["start_state"], e["branch"], e["frames"]) for e in cpp] == [
        (100, 0, 0, 12), (101, 0, 1, 5), (102, 1, 0, 40)], cpp
    for mine, theirs in zip(episodes, cpp):
        for f in ("qpos", "qvel"):
            assert np.array_equal(np.asarray(theirs["fields"][f], np.float32),
                                  mine.fields[f].astype(np.float32)), f
    stats = json.loads(subprocess.run([ebm_bin, "data", "stats", "--format", "trajectory",
                                       "--path", os.path.dirname(path)], check=True,
                                      capture_output=True, text=True).stdout)
    assert stats["episodes"] == 3 and stats["frames"] == 57, stats
    assert stats["fields"] == [{"name": "qpos", "size": 3}, {"name": "qvel", "size": 2}], stats
    assert stats["model_hash"] == "1234abcd" and stats["decimation"] == 2, stats
    # Never overwrites; appending checks the layout and adds.
    try:
        tj.write(path, episodes[:1], timestep=0.01, decimation=2, model_hash=0x1234ABCD)
        raise AssertionError("an existing file was overwritten")
    except tj.TrajectoryError as e:
        assert "refusing to overwrite" in str(e)
    try:
        tj.write(path, episodes[:1], timestep=0.01, decimation=3, model_hash=0x1234ABCD,
                 append=True)
        raise AssertionError("an incompatible append was accepted")
    except tj.TrajectoryError as e:
        assert "decimation 3 vs 2" in str(e), e
    tj.write(path, [{"qpos": np.ones((2, 3)), "qvel": np.zeros((2, 2))}], timestep=0.01,
             decimation=2, model_hash=0x1234ABCD, append=True)
    assert [e["frames"] for e in dump(tool, path)[0]] == [12, 5, 40, 2]
    for bad, why in (({"qpos": np.ones((2, 3))}, "lacks field 'qvel'"),
                     ({"qpos": np.ones((2, 4)), "qvel": np.ones((2, 2))}, "shape"),
                     ({"qpos": np.full((2, 3), np.nan), "qvel": np.ones((2, 2))}, "NaN")):
        with tj.Writer(path, tj.read_header(path), append=True) as w:
            try:
                w.append(bad)
                raise AssertionError(f"accepted an episode with {why}")
            except ValueError as e:
                assert why in str(e), e
    return path


def read_until_error(path, what):
    """The ids of the episodes read before the TrajectoryError that `path` must raise, and it."""
    got = []
    try:
        for e in tj.read(path):
            got.append(e.episode_id)
    except tj.TrajectoryError as e:
        return got, e
    raise AssertionError(f"a {what} raised nothing")


def check_damaged_files(tool, path, tmp):
    data = open(path, "rb").read()
    offsets = [e.offset for e in tj.read(path)]
    assert len(offsets) == 4
    # Truncated inside the third episode: the first two, then an error naming file and offset.
    cut = os.path.join(tmp, "cut.ebmtraj")
    open(cut, "wb").write(data[:offsets[2] + 30])
    got, e = read_until_error(cut, "truncated file")
    assert e.file == cut and e.offset == offsets[2], (e.file, e.offset)
    assert cut in str(e) and f"offset {offsets[2]}" in str(e) and "torn tail" in str(e), e
    assert got == [100, 101], got
    # One flipped byte in the second episode's payload.
    flip = os.path.join(tmp, "flip.ebmtraj")
    damaged = bytearray(data)
    damaged[offsets[1] + 20] ^= 0x40
    open(flip, "wb").write(bytes(damaged))
    got, e = read_until_error(flip, "corrupt record")
    assert e.offset == offsets[1] and "checksum" in str(e), e
    assert got == [100], got
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = [e.episode_id for e in tj.read(flip, errors="warn")]
    assert kept == [100, 102, 0], kept
    assert any("checksum" in str(w.message) for w in caught), caught
    cpp, _ = dump(tool, flip)
    assert [e["id"] for e in cpp] == kept, "the C++ reader skips the same record"
    try:
        list(tj.read(os.path.join(tmp, "none.ebmtraj")))
        raise AssertionError("a missing file raised nothing")
    except tj.TrajectoryError as e:
        assert "no such file" in str(e)


def main():
    ebm_bin, plugin_dir, tool, source_dir = sys.argv[1:5]
    check_installed_package(source_dir)
    check_crc()
    with tempfile.TemporaryDirectory() as tmp:
        folder, expected = check_recorded_in_python(plugin_dir, tmp)
        cpp, _ = dump(tool, folder)
        py = list(tj.read(folder))
        assert [e["id"] for e in cpp] == [e.episode_id for e in py]
        assert all(np.array_equal(np.asarray(c["fields"]["qvel"], np.float32), p["qvel"])
                   for c, p in zip(cpp, py)), "the C++ and Python readers disagree"
        path = check_cpp_reads_python(tool, ebm_bin, tmp)
        check_damaged_files(tool, path, tmp)
    print(f"ok: {len(expected)} frames recorded from Python read back exactly; Python-written "
          "files read by the C++ reader and `ebm data stats`; damaged files raise at their offset")


if __name__ == "__main__":
    main()
