"""Renders rows of MuJoCo states into one PNG grid with MuJoCo's own Python renderer (OSMesa,
off-screen). Called by `ebm traj eval` with a folder holding model.mjb (the compiled scene) and
frames.json: {"lookat": [x, y, z], "distance": d, "azimuth": a, "elevation": e,
"columns": ["T=0", ...], "rows": [{"name": "...", "qpos": [[...], ...]}, ...]}, and optionally
"animation": [{"name": "...", "qpos": [[...] per frame]}, ...] with "frame_ms": then --gif OUT.gif
also writes an animated GIF, the animation's sequences side by side, one frame per qpos frame (at
most 100, evenly spaced) shown frame_ms milliseconds each.

usage: render_frames.py FOLDER OUT.png [--gif OUT.gif] [--width 320 --height 240]
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
    ap.add_argument("--gif", help="also write the animation of frames.json here")
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
    if a.gif and spec.get("animation"):
        write_gif(spec, model, data, renderer, cam, a)
        print(a.gif)


def write_gif(spec, model, data, renderer, cam, a):
    """The animation's sequences side by side, frame by frame, as a looping GIF."""
    panels = spec["animation"]
    frames = min(len(p["qpos"]) for p in panels)
    stride = max(1, -(-frames // 100))
    label = 18
    images = []
    for t in range(0, frames, stride):
        strip = Image.new("RGB", (len(panels) * a.width, label + a.height), "white")
        draw = ImageDraw.Draw(strip)
        for i, panel in enumerate(panels):
            data.qpos[:] = np.asarray(panel["qpos"][t], dtype=np.float64)
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, cam)
            strip.paste(Image.fromarray(renderer.render()), (i * a.width, label))
            draw.text((i * a.width + 4, 2), f"{panel['name']}  t={t}", fill="black")
        images.append(strip.quantize(colors=128))
    duration = max(20, int(round(spec.get("frame_ms", 40) * stride)))
    images[0].save(a.gif, save_all=True, append_images=images[1:], duration=duration, loop=0)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # the caller reports it and goes on without the picture
        print(f"render_frames: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
