"""Real client: MuJoCo's Python bindings load `ebm.generator` with a goal (a site and a target
point) on a trajectory EBM trained here on the particles scene, step the simulation, and read the
sampled futures through the plugin's C API (ctypes). The futures' final positions of the goal
site must lie closer to the target than those of the same generator without a goal, sampled
from the same history; and a bad goal attribute is a Python exception naming it.

usage: python_generator_goal_test.py EBM PLUGIN_DIR PARTICLES_XML CONFIG
"""
import ctypes
import os
import subprocess
import sys
import tempfile

import mujoco
import numpy as np

STEPS = 160  # physics steps: 40 frames at decimation 4, two samplings (every 80 steps)


def scene(base_xml, checkpoint, goal):
    ext = ('<extension><plugin plugin="ebm.generator"><instance name="gen">'
           f'<config key="checkpoint" value="{checkpoint}"/>'
           '<config key="every" value="80"/><config key="samples" value="6"/>'
           '<config key="steps" value="30"/><config key="sites" value="p0"/>'
           f'{goal}</instance></plugin></extension>')
    first_newline = base_xml.index("\n") + 1
    return base_xml[:first_newline] + ext + base_xml[first_newline:]


def with_mocap_target(xml):
    """The scene with a mocap body (a target a user would drag in the viewer) at its end."""
    body = '<body name="target" mocap="true"><site name="target" size="0.02"/></body>'
    return xml.replace("</worldbody>", body + "</worldbody>")


def run(lib, model, target=None):
    """Steps the model with fixed pushes (the mocap target placed first, if any); returns the
    last futures [K, frames, D] and the data."""
    data = mujoco.MjData(model)
    if target is not None:
        data.mocap_pos[0] = target
    data.ctrl[:] = 0.3
    for _ in range(STEPS):
        mujoco.mj_step(model, data)
    k, frames, dim = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    out = (ctypes.c_float * 100000)()
    n = lib.ebm_generator_futures(ctypes.c_void_p(model._address), ctypes.c_void_p(data._address),
                                  out, 100000, ctypes.byref(k), ctypes.byref(frames),
                                  ctypes.byref(dim))
    assert n > 0, f"no futures sampled (returned {n})"
    futures = np.frombuffer(out, dtype=np.float32, count=n).reshape(k.value, frames.value,
                                                                    dim.value)
    return futures, data


def main():
    ebm, plugin_dir, particles_xml, config = sys.argv[1:5]
    mujoco.mj_loadAllPluginLibraries(plugin_dir)
    lib = ctypes.CDLL(os.path.join(plugin_dir, "libebm_generator.so"))
    lib.ebm_generator_futures.restype = ctypes.c_int
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = os.path.join(tmp, "run")
        subprocess.run([ebm, "traj", "run", "-q", "--config", config, "--out", run_dir,
                        "--set", "device=cpu", "--set", "rollout.start_states=8",
                        "--set", "rollout.branches=2", "--set", "trainer.iterations=40",
                        "--set", "baselines.fc_iterations=5", "--set", "baselines.mdn_iterations=5",
                        "--set", "eval.max_states=1", "--set", "eval.render=false"],
                       check=True, capture_output=True)
        checkpoint = os.path.join(run_dir, "models", "generator.pt")
        base = subprocess.run([particles_xml], check=True, capture_output=True, text=True).stdout

        # Bad goals are refused by name.
        for goal, key in [('<config key="goal_site" value="nope"/>'
                           '<config key="goal_target" value="0 0 0"/>', "goal_site"),
                          ('<config key="goal_site" value="p0"/>'
                           '<config key="goal_target" value="0 zero 0"/>', "goal_target"),
                          ('<config key="goal_target" value="0 0 0"/>', "goal_site"),
                          ('<config key="goal_site" value="p0"/>'
                           '<config key="goal_mocap" value="p1"/>', "goal_mocap")]:
            try:
                mujoco.MjModel.from_xml_string(scene(base, checkpoint, goal))
                raise AssertionError(f"goal {goal} was accepted")
            except ValueError as e:
                assert f"attribute '{key}'" in str(e), e

        free, data = run(lib, mujoco.MjModel.from_xml_string(scene(base, checkpoint, "")))
        # The target: 0.25 m from p0's position now, along +y (inside the box).
        p0 = data.site("p0").xpos.copy()
        target = p0 + np.array([0.0, 0.25, 0.0])
        goal = ('<config key="goal_site" value="p0"/>'
                f'<config key="goal_target" value="{target[0]} {target[1]} {target[2]}"/>'
                '<config key="goal_weight" value="1.5"/>')
        steered, _ = run(lib, mujoco.MjModel.from_xml_string(scene(base, checkpoint, goal)))
        # Features qpos then qvel: p0's slide joints are qpos[0:2], which move the site one for
        # one in x and y; where the target puts them:
        target_qpos = data.qpos[0:2] + (target - p0)[0:2]

        def final_distance(futures):
            return np.linalg.norm(futures[:, -1, 0:2] - target_qpos, axis=1)
        d_free, d_goal = final_distance(free), final_distance(steered)
        assert np.isfinite(steered).all()
        assert d_goal.mean() < 0.5 * d_free.mean(), (d_goal, d_free)
        assert (d_goal < d_free.min()).mean() >= 0.5, (d_goal, d_free)

        # The same goal as a mocap body: the checkpoint still fits the scene (mocap bodies are
        # not part of the model hash), and the futures follow the body to where it was put.
        mocap_xml = with_mocap_target(scene(
            base, checkpoint, '<config key="goal_site" value="p0"/>'
            '<config key="goal_mocap" value="target"/><config key="goal_weight" value="1.5"/>'))
        followed, _ = run(lib, mujoco.MjModel.from_xml_string(mocap_xml), target)
        d_mocap = final_distance(followed)
        assert d_mocap.mean() < 0.5 * d_free.mean(), (d_mocap, d_free)
    print(f"ok: final distance to the goal {d_goal.mean():.3f} m with the goal (target or "
          f"mocap body), {d_free.mean():.3f} m without")


if __name__ == "__main__":
    main()
