"""Renders rows of MuJoCo states into one PNG grid with MuJoCo's own Python renderer (OSMesa,
off-screen). Called by `ebm traj eval` with a folder holding model.mjb (the compiled scene) and
frames.json: {"lookat": [x, y, z], "distance": d, "azimuth": a, "elevation": e,
"columns": ["T=0", ...], "rows": [{"name": "...", "qpos": [[...], ...]}, ...]}.

usage: render_frames.py FOLDER OUT.png [--width 320 --height 240]
"""
import argparse
import json
import os
import sys

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("out")
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--height", type=int, default=240)
    a = ap.parse_args()
    spec = json.load(open(os.path.join(a.folder, "frames.json")))
    model = mujoco.MjModel.from_binary_path(os.path.join(a.folder, "model.mjb"))
    data = mujoco.MjData(model)
    renderer = mujoco.Renderer(model, a.height, a.width)
    cam = mujoco.MjvCamera()
    mujoco.mjv_defaultFreeCamera(model, cam)
    cam.lookat[:] = spec["lookat"]
    cam.distance = spec["distance"]
    cam.azimuth = spec.get("azimuth", 90.0)
    cam.elevation = spec.get("elevation", -45.0)
    label = 18
    rows, cols = len(spec["rows"]), len(spec["columns"])
    grid = Image.new("RGB", (label * 8 + cols * a.width, label + rows * a.height), "white")
    draw = ImageDraw.Draw(grid)
    for j, title in enumerate(spec["columns"]):
        draw.text((label * 8 + j * a.width + 4, 2), title, fill="black")
    for i, row in enumerate(spec["rows"]):
        draw.text((4, label + i * a.height + a.height // 2), row["name"], fill="black")
        for j, qpos in enumerate(row["qpos"]):
            data.qpos[:] = np.asarray(qpos, dtype=np.float64)
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, cam)
            grid.paste(Image.fromarray(renderer.render()), (label * 8 + j * a.width, label + i * a.height))
    grid.save(a.out)
    print(a.out)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the caller reports it and goes on without the picture
        print(f"render_frames: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
