"""See a trained trajectory EBM move: `python -m ebm.view RUN_DIR` opens MuJoCo's passive viewer
on the scene the run trained on (RUN_DIR/models/scene.xml, written by `ebm traj train`) with an
`ebm.generator` instance of RUN_DIR/models/generator.pt, which samples K futures every `every`
physics steps and draws them as ghost paths of the tracked sites (its `visualize` callback). The
simulation is driven by smooth random controls; the terminal shows each sampling's latency.

    python -m ebm.view runs/hand_traj --plugins build/plugins
    python -m ebm.view runs/hand_traj --offscreen frame.png --steps 600     # no window (OSMesa)

Options: --plugins DIR (default $EBM_PLUGIN_DIR), --samples K (8), --every N (physics steps, 0:
one window), --langevin-steps S (0: as trained), --sites "a b" (default: the run's eval.sites),
--seed, --offscreen PNG with --steps N and --width/--height.
"""
import argparse
import os
import re
import sys
import time

import numpy as np

__all__ = ["Driver", "load", "render", "scene_xml", "main"]


def _config_sites(run_dir):
    """eval.sites of the run's config.yaml (flow or block list), or None."""
    path = os.path.join(run_dir, "config.yaml")
    if not os.path.isfile(path):
        return None
    text = open(path).read()
    section = re.search(r"^eval:\n((?:[ \t]+.*\n?|\n)*)", text, re.M)
    if not section:
        return None
    flow = re.search(r"^\s+sites:\s*\[([^\]]*)\]", section.group(1), re.M)
    if flow:
        return [s.strip().strip("'\"") for s in flow.group(1).split(",") if s.strip()]
    block = re.search(r"^(\s+)sites:\s*\n((?:\1\s*-\s*.*\n?)+)", section.group(1), re.M)
    if block:
        return [line.split("-", 1)[1].strip().strip("'\"")
                for line in block.group(2).splitlines() if line.strip()]
    return None


def scene_xml(run_dir, generator=True, samples=8, every=0, steps=0, sites=None):
    """The run's scene as MJCF, with an ebm.generator instance of its generator.pt unless
    generator=False."""
    path = os.path.join(run_dir, "models", "scene.xml")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing; train the run first (ebm traj train)")
    xml = open(path).read()
    if not generator:
        return xml
    checkpoint = os.path.abspath(os.path.join(run_dir, "models", "generator.pt"))
    if sites is None:
        sites = _config_sites(run_dir) or []
    config = {"checkpoint": checkpoint, "samples": samples, "every": every, "steps": steps,
              "sites": " ".join(sites)}
    attrs = "".join(f'<config key="{k}" value="{v}"/>' for k, v in config.items()
                    if v not in (0, ""))
    ext = ('<extension><plugin plugin="ebm.generator"><instance name="ebm_view">'
           f"{attrs}</instance></plugin></extension>")
    start = re.search(r"<mujoco\b[^>]*>", xml)
    if not start:
        raise ValueError(f"{path}: no <mujoco> element")
    return xml[:start.end()] + ext + xml[start.end():]


def load(run_dir, plugin_dir=None, generator=True, **options):
    """(model, data) of the run's scene, the plugins loaded first."""
    import mujoco

    from . import plugins

    plugins.load_plugins(plugin_dir)
    model = mujoco.MjModel.from_xml_string(scene_xml(run_dir, generator, **options))
    return model, mujoco.MjData(model)


class Driver:
    """Smooth random controls within the actuators' ranges: a new target every `hold` steps,
    approached exponentially."""

    def __init__(self, model, seed=0, hold=100, rate=0.05):
        self.rng = np.random.default_rng(seed)
        self.low, self.high = model.actuator_ctrlrange.T.copy()
        unlimited = self.low >= self.high
        self.low[unlimited], self.high[unlimited] = -1.0, 1.0
        self.hold, self.rate, self.k = hold, rate, 0
        self.target = self.rng.uniform(self.low, self.high)

    def __call__(self, data):
        if self.k % self.hold == 0:
            self.target = self.rng.uniform(self.low, self.high)
        self.k += 1
        data.ctrl[:] += self.rate * (self.target - data.ctrl)


def _camera(model, data, sites):
    import mujoco

    cam = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, cam)
    ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, s) for s in sites or []]
    ids = [i for i in ids if i >= 0]
    if ids:
        points = data.site_xpos[ids]
        cam.lookat[:] = points.mean(0)
        cam.distance = max(0.3, 3.0 * float(np.abs(points - points.mean(0)).max()))
    return cam


def render(model, data, path, width=640, height=480, sites=None):
    """One off-screen frame (plugins' visualize callbacks included) as a PNG; returns the
    pixels [height, width, 3]."""
    import mujoco
    from PIL import Image

    with mujoco.Renderer(model, height, width) as renderer:
        renderer.update_scene(data, _camera(model, data, sites))
        pixels = renderer.render()
    if path:
        Image.fromarray(pixels).save(path)
    return pixels


def _interactive(model, data, drive):
    """The passive viewer in real time; every two simulated seconds, the futures' latency."""
    import mujoco
    import mujoco.viewer

    from . import generator

    report_every = max(1, int(round(2.0 / model.opt.timestep)))
    with mujoco.viewer.launch_passive(model, data) as viewer:
        step = 0
        while viewer.is_running():
            start = time.time()
            drive(data)
            mujoco.mj_step(model, data)
            viewer.sync()
            step += 1
            if step % report_every == 0:
                futures, latency = generator.futures(model, data)
                if futures.size:
                    print(f"t={data.time:.1f}s: {futures.shape[0]} futures of {futures.shape[1]}"
                          f" frames, last sampling {latency:.1f} ms", flush=True)
            left = model.opt.timestep - (time.time() - start)
            if left > 0:
                time.sleep(left)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m ebm.view", description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--plugins", help="plugin folder (default: $EBM_PLUGIN_DIR)")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--every", type=int, default=0)
    ap.add_argument("--langevin-steps", type=int, default=0)
    ap.add_argument("--sites", help="space-separated site names (default: the run's eval.sites)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--offscreen", metavar="PNG", help="render one frame here instead of a window")
    ap.add_argument("--steps", type=int, default=600, help="physics steps before --offscreen")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    a = ap.parse_args(argv)
    if a.offscreen:
        os.environ.setdefault("MUJOCO_GL", "osmesa")
        os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    import mujoco

    sites = a.sites.split() if a.sites else _config_sites(a.run_dir)
    model, data = load(a.run_dir, a.plugins, samples=a.samples, every=a.every,
                       steps=a.langevin_steps, sites=sites)
    drive = Driver(model, a.seed)
    if not a.offscreen:
        _interactive(model, data, drive)
        return 0
    for _ in range(a.steps):
        drive(data)
        mujoco.mj_step(model, data)
    render(model, data, a.offscreen, a.width, a.height, sites)
    print(a.offscreen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
