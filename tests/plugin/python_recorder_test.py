"""Real client: MuJoCo's own Python bindings load our plugin through MuJoCo's plugin-directory
mechanism, compile an MJCF that uses `ebm.recorder`, step it, and the file they produce is read
by our C++ reader (tests/fixtures/trajectory_dump) with exactly the states Python saw.

usage: python_recorder_test.py PLUGIN_DIR TRAJECTORY_DUMP
"""
import gc
import json
import os
import subprocess
import sys
import tempfile

import mujoco
import numpy as np

SCENE = """
<mujoco model="pytoy">
  <extension><plugin plugin="ebm.recorder"><instance name="rec">
    <config key="path" value="{path}"/>
    <config key="fields" value="time qpos qvel ctrl"/>
    <config key="decimation" value="{decimation}"/>
    <config key="episode_steps" value="100"/>
  </instance></plugin></extension>
  <option timestep="0.002"/>
  <worldbody>
    <geom type="plane" size="2 2 0.1"/>
    <body pos="0 0 0.3">
      <joint name="hinge" type="hinge" axis="0 1 0" range="-1 1" limited="true"/>
      <geom type="capsule" fromto="0 0 0 0.2 0 0" size="0.02"/>
    </body>
    <body pos="0.3 0 0.5"><freejoint name="ball"/><geom type="sphere" size="0.05"/></body>
  </worldbody>
  <actuator><motor name="m" joint="hinge" ctrllimited="true" ctrlrange="-1 1"/></actuator>
</mujoco>
"""


def main():
    plugin_dir, dump = sys.argv[1], sys.argv[2]
    mujoco.mj_loadAllPluginLibraries(plugin_dir)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "py.ebmtraj")
        # A bad attribute is a Python exception naming it, not a crash.
        try:
            mujoco.MjModel.from_xml_string(SCENE.format(path=path, decimation="two"))
            raise AssertionError("a bad decimation was accepted")
        except ValueError as e:
            assert "attribute 'decimation'" in str(e), e

        model = mujoco.MjModel.from_xml_string(SCENE.format(path=path, decimation=2))
        data = mujoco.MjData(model)
        rng = np.random.default_rng(0)
        seen = []  # (time, qpos, qvel, ctrl) at the start of each step
        for k in range(250):
            data.ctrl[:] = rng.uniform(-1, 1, size=model.nu)
            seen.append(np.concatenate([[data.time], data.qpos, data.qvel, data.ctrl]))
            mujoco.mj_step(model, data)
        del data  # frees the mjData: the recorder writes the open episode
        gc.collect()

        out = subprocess.run([dump, path], check=True, capture_output=True, text=True)
        assert out.stderr == "", out.stderr
        episodes = [json.loads(line) for line in out.stdout.splitlines()]
        # 250 steps: episodes of 100 steps (50 frames at decimation 2), then 50 steps (25 frames).
        assert [e["frames"] for e in episodes] == [50, 50, 25], [e["frames"] for e in episodes]
        frames = np.concatenate([
            np.concatenate([np.asarray(e["fields"][f], dtype=np.float32)
                            for f in ("time", "qpos", "qvel", "ctrl")], axis=1)
            for e in episodes])
        expected = np.asarray(seen[::2], dtype=np.float32)
        assert frames.shape == expected.shape, (frames.shape, expected.shape)
        mismatch = np.argwhere(frames != expected)
        assert mismatch.size == 0, f"first mismatch at frame/column {mismatch[0]}"
        # The ball fell and the hinge moved: the states were not constant.
        assert np.ptp(expected[:, 1 + 1 + 2]) > 0.05
    print(f"ok: {len(expected)} frames recorded in Python equal the C++ reader's")


if __name__ == "__main__":
    main()
