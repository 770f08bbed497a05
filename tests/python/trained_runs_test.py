"""`ebm export` read by PyTorch itself, and the Python package's model and generator parts:
  - image EBMs trained here for a few steps (unconditional with spectral norm, conditional with
    label-modulated blocks, the JEM class head): `torch.load(F, weights_only=True)` returns a
    state dict, `torch.jit.load` runs the exported energy, `ebm.load_model` builds the module from
    the state dict; all three give the C++ net's energies of fixed inputs (tests/fixtures/
    energy_dump) to float tolerance, and changing one weight of the state dict changes them;
  - trajectories stepped in MuJoCo's Python bindings and written with `ebm.trajectory.write` are
    accepted by `ebm traj train`; its generator.pt exports the same way; and the trained
    generator runs as the `ebm.generator` plugin in MuJoCo's Python, where
    `ebm.generator.futures` returns its futures [K, frames, D].

  - TensorBoard's own reader finds in those runs what EBM practitioners watch: histograms of the
    batch's data and sample energies (as many values as the batch, summing to the logged mean
    energies), the energy gap (E+ - E-, equal to the logged means' difference) and the Langevin
    gradient norm per logged step, and `ebm traj eval`'s metrics as scalars equal to metrics.json.

usage: trained_runs_test.py EBM ENERGY_DUMP PLUGIN_DIR PARTICLES_XML SOURCE_DIR
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from tensorboard.backend.event_processing import event_accumulator  # noqa: E402

import ebm  # noqa: E402

torch.set_num_threads(1)


def tensorboard(run_dir):
    acc = event_accumulator.EventAccumulator(os.path.join(run_dir, "tensorboard"), size_guidance={
        "scalars": 0, "histograms": 0, "images": 1})
    acc.Reload()
    return acc


def check_training_curves(run_dir, prefix, batch):
    """Histograms and the gap and gradient-norm scalars of every logged step."""
    acc = tensorboard(run_dir)
    scalars = {t: {e.step: e.value for e in acc.Scalars(t)} for t in acc.Tags()["scalars"]}
    gap, e_pos, e_neg = (scalars[f"train/{prefix}{n}"] for n in ("energy_gap", "e_pos", "e_neg"))
    grad = scalars[f"train/{prefix}langevin_grad_norm"]
    assert gap and gap.keys() == e_pos.keys() == grad.keys(), (gap, grad)
    for step in gap:
        assert abs(gap[step] - (e_pos[step] - e_neg[step])) < 1e-4 * max(1, abs(e_pos[step]))
        assert grad[step] > 0, f"step {step}: Langevin gradient norm {grad[step]}"
    for kind, means in (("pos", e_pos), ("neg", e_neg)):
        events = acc.Histograms(f"energies/{kind}")
        assert [e.step for e in events] == sorted(means), ([e.step for e in events], means)
        for e in events:
            h = e.histogram_value
            assert h.num == batch and sum(h.bucket) == batch, (h.num, sum(h.bucket))
            assert abs(h.sum / h.num - means[e.step]) < 1e-3 * max(1, abs(means[e.step])), h
    return len(gap)


def run(*args, **kw):
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    assert out.returncode == 0, f"{args}: {out.stderr[-3000:]}"
    return out.stdout


def cpp_energies(energy_dump, checkpoint, x, cond, tmp):
    xs, cs, es = (os.path.join(tmp, n) for n in ("x.f32", "c.f32", "e.f32"))
    x.numpy().astype("<f4").tofile(xs)
    if cond is not None:
        cond.numpy().astype("<f4").tofile(cs)
    run(energy_dump, checkpoint, xs, cs if cond is not None else "-", es)
    return torch.from_numpy(np.fromfile(es, dtype="<f4"))


def close(a, b, what):
    err = (a - b).abs().max().item()
    scale = max(1.0, b.abs().max().item())
    assert err <= 1e-4 * scale, f"{what}: max |difference| {err} (energies up to {scale})"
    return err


def check_export(ebm_bin, energy_dump, checkpoint, make_inputs, tmp, name):
    """Exports `checkpoint` and compares PyTorch's energies with the C++ net's for each
    (args, C++ condition) of make_inputs(the exported TorchScript module)."""
    out = os.path.join(tmp, "export-" + name, "energy.pt")
    os.makedirs(os.path.dirname(out))
    run(ebm_bin, "export", "--checkpoint", checkpoint, "--out", out)
    state = torch.load(out, weights_only=True)
    assert isinstance(state, dict) and state and all(
        isinstance(v, torch.Tensor) for v in state.values()), type(state)
    scripted = torch.jit.load(ebm.models.script_path(out))
    assert sorted(scripted.state_dict()) == sorted(state), "keys of the state dict != module's"
    module = ebm.load_model(out)
    inputs = make_inputs(scripted)
    worst = 0.0
    for args, cond in inputs:
        expected = cpp_energies(energy_dump, checkpoint, args[0], cond, tmp)
        with torch.no_grad():
            worst = max(worst, close(scripted(*args), expected, f"{name} torch.jit.load"),
                        close(module(*args), expected, f"{name} ebm.load_model"))
    # The module really computes from the state dict: one changed weight changes the energies.
    key = next(k for k in state if k.endswith("weight"))
    state[key] = state[key] * 1.5
    module.load_state_dict(state)
    with torch.no_grad():
        changed = (module(*inputs[0][0]) - scripted(*inputs[0][0])).abs().max().item()
    assert changed > 1e-4, f"{name}: changing {key} left the energies unchanged"
    try:
        ebm.load_model(checkpoint)
        raise AssertionError("a raw checkpoint loaded as an energy")
    except ValueError as e:
        assert "ebm export" in str(e), e
    return worst


def train_image(ebm_bin, config, tmp, name, *overrides):
    out = os.path.join(tmp, name)
    run(ebm_bin, "train", "--config", config, "--out", out, "--quiet", "--set",
        "trainer.iterations=4", "trainer.batch_size=8", "langevin.steps=3",
        "replay_buffer.capacity=64", "logging.checkpoint_every=4", "logging.sample_every=100",
        "logging.log_every=4",
        *overrides)
    assert check_training_curves(out, "", 8) == 1  # logged at step 4 only
    return sorted(glob.glob(os.path.join(out, "checkpoints", "ckpt-*.pt")))[-1]


def check_images(ebm_bin, energy_dump, source, tmp):
    torch.manual_seed(0)
    x = torch.rand(6, 1, 28, 28)
    labels = torch.tensor([0, 3, 9, 1, 1, 5])
    onehot = torch.nn.functional.one_hot(labels, 10).float()
    configs = os.path.join(source, "configs", "images")
    uncond = train_image(ebm_bin, os.path.join(configs, "fashion_mnist.yaml"), tmp, "uncond",
                         "model.spectral_norm=true")
    cond = train_image(ebm_bin, os.path.join(configs, "fashion_mnist.yaml"), tmp, "cond",
                       "model.conditional=true", "model.num_classes=10",
                       "model.activation=swish")
    head = train_image(ebm_bin, os.path.join(configs, "fashion_mnist_hybrid.yaml"), tmp, "head")
    errs = [
        check_export(ebm_bin, energy_dump, uncond, lambda _: [((x,), None)], tmp, "uncond"),
        check_export(ebm_bin, energy_dump, cond,
                     lambda _: [((x, labels), labels), ((x, onehot), labels)], tmp, "cond"),
        check_export(ebm_bin, energy_dump, head,
                     lambda _: [((x, labels), labels), ((x,), None)], tmp, "head"),
    ]
    return max(errs)


def particle_episodes(xml, starts=16, branches=2, steps=400):
    """Branches of random pushes from shared start states, stepped in MuJoCo's Python."""
    model = mujoco.MjModel.from_xml_string(xml)
    rng = np.random.default_rng(0)
    episodes = []
    for s in range(starts):
        start = mujoco.MjData(model)
        start.ctrl[:] = rng.uniform(-1, 1, model.nu)
        for _ in range(100 + 10 * s):
            mujoco.mj_step(model, start)
        for b in range(branches):
            d = mujoco.MjData(model)
            d.qpos[:], d.qvel[:], d.time = start.qpos, start.qvel, start.time
            rows = {"time": [], "qpos": [], "qvel": [], "ctrl": []}
            for k in range(steps):
                if k % 40 == 0:
                    d.ctrl[:] = rng.uniform(-1, 1, model.nu)
                if k % 4 == 0:
                    for f in rows:
                        rows[f].append(np.atleast_1d(getattr(d, f)).copy())
                mujoco.mj_step(model, d)
            episodes.append(ebm.trajectory.Episode(
                fields={f: np.asarray(v) for f, v in rows.items()}, episode_id=len(episodes),
                seed=b, start_state=s, branch=b))
    return model, episodes


def check_trajectories(ebm_bin, energy_dump, plugin_dir, particles_xml, source, tmp):
    xml = run(particles_xml)
    model, episodes = particle_episodes(xml)
    run_dir = os.path.join(tmp, "traj")
    ebm.trajectory.write(os.path.join(run_dir, "trajectories", "python.ebmtraj"), episodes,
                         timestep=model.opt.timestep, decimation=4, model_name="particles")
    run(ebm_bin, "traj", "train", "--config",
        os.path.join(source, "configs", "trajectories", "particles_traj.yaml"), "--out", run_dir,
        "--quiet", "--set", "trainer.iterations=20", "baselines.fc_iterations=5",
        "baselines.mdn_iterations=5", "trainer.log_every=10")
    assert check_training_curves(run_dir, "ebm_", 64) == 2  # steps 10 and 20
    check_eval_scalars(ebm_bin, source, run_dir)
    generator = os.path.join(run_dir, "models", "generator.pt")
    def windows(exported):  # futures (or basis coefficients) and histories of its shapes
        torch.manual_seed(1)
        x = torch.randn(5, exported.basis_size or exported.future, exported.dim)
        history = torch.randn(5, exported.history, exported.dim)
        return [((x, history), history)]

    err = check_export(ebm_bin, energy_dump, generator, windows, tmp, "traj")
    drawn = check_view(run_dir, plugin_dir, tmp)
    # The same generator inside MuJoCo, from Python.
    ebm.load_plugins(plugin_dir)
    ext = ('<extension><plugin plugin="ebm.generator"><instance name="gen">'
           f'<config key="checkpoint" value="{generator}"/><config key="every" value="80"/>'
           '<config key="samples" value="5"/><config key="steps" value="10"/>'
           '</instance></plugin></extension>')
    at = xml.index("\n") + 1
    scene = mujoco.MjModel.from_xml_string(xml[:at] + ext + xml[at:])
    data = mujoco.MjData(scene)
    empty, _ = ebm.generator.futures(scene, data)
    assert empty.shape == (0, 0, 0), empty.shape
    data.ctrl[:] = 0.5
    for _ in range(120):
        mujoco.mj_step(scene, data)
    futures, latency = ebm.generator.futures(scene, data)
    assert futures.shape == (5, 20, scene.nq + scene.nv), futures.shape
    assert np.isfinite(futures).all() and latency > 0, latency
    # The futures start near the state they continue from (positions are the first nq features).
    gap = np.abs(futures[:, 0, :scene.nq] - data.qpos[None, :]).max()
    assert gap < 0.5, f"first future frame {gap} away from the current positions"
    plain = mujoco.MjModel.from_xml_string(xml)
    try:
        ebm.generator.futures(plain, mujoco.MjData(plain))
        raise AssertionError("futures of a scene without a generator")
    except ValueError as e:
        assert "no ebm.generator" in str(e)
    return err, latency, drawn


def check_eval_scalars(ebm_bin, source, run_dir):
    """`ebm traj eval` (small) writes its metrics as scalars eval/<method>/<metric>."""
    run(ebm_bin, "traj", "eval", "--config",
        os.path.join(source, "configs", "trajectories", "particles_traj.yaml"), "--out", run_dir,
        "--quiet", "--set", "eval.max_states=2", "eval.samples=3", "eval.horizon=20",
        "eval.error_frames=[20]", "eval.langevin_steps=5", "eval.render=true",
        "eval.bootstrap_resamples=100", "trainer.iterations=20")
    check_gif(os.path.join(run_dir, "futures.gif"), frames=21, panels=3)
    report = open(os.path.join(run_dir, "report.html")).read()
    for picture in ("paths.png", "frames.png", "futures.gif"):
        assert f'<img src="{picture}"' in report, f"report.html does not show {picture}"
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    scalars = {t: tensorboard(run_dir).Scalars(t) for t in tensorboard(run_dir).Tags()["scalars"]
               if t.startswith("eval/")}
    assert scalars, "no eval/ scalars"
    for tag, events in scalars.items():
        _, method, metric = tag.split("/", 2)
        assert len(events) == 1 and events[0].step == 20, (tag, events)
        expected = find_metric(metrics, method, metric)
        assert abs(events[0].value - expected) <= 1e-5 * max(1, abs(expected)), (tag, expected)


def check_gif(path, frames, panels):
    """The animation of truth, EBM and FC: one frame per future frame, three 320-pixel panels,
    and it moves."""
    gif = Image.open(path)
    assert gif.n_frames == frames and gif.size == (panels * 320, 18 + 240), (gif.n_frames, gif.size)
    first = np.asarray(gif.convert("RGB"), dtype=np.int16)
    gif.seek(frames - 1)
    last = np.asarray(gif.convert("RGB"), dtype=np.int16)
    moved = (np.abs(first[18:] - last[18:]).sum(2) > 30).sum()
    assert moved > 50, f"the animation's first and last frames differ in {moved} pixels"


def check_view(run_dir, plugin_dir, tmp):
    """`python -m ebm.view --offscreen` draws the futures as ghost paths: its frame differs from
    the same state rendered without the plugin, while the plugin without sites to draw renders
    that state identically (the difference is the paths)."""
    from ebm import view

    png = os.path.join(tmp, "view.png")
    sites = "p0 p1 p2 p3"
    common = ["--samples", "4", "--every", "80", "--langevin-steps", "5", "--steps", "200",
              "--width", "320", "--height", "240"]
    run(sys.executable, "-m", "ebm.view", run_dir, "--plugins", plugin_dir, "--offscreen", png,
        "--sites", sites, *common, env=dict(os.environ, MUJOCO_GL="osmesa",
                                            PYOPENGL_PLATFORM="osmesa"))
    with_paths = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)

    def frame(**options):
        model, data = view.load(run_dir, plugin_dir, **options)
        drive = view.Driver(model, 0)
        for _ in range(200):
            drive(data)
            mujoco.mj_step(model, data)
        return np.asarray(view.render(model, data, None, 320, 240, sites.split()), np.int16)

    plain = frame(generator=False)
    no_sites = frame(samples=4, every=80, steps=5, sites=[])
    drawn = (np.abs(with_paths - plain).sum(2) > 30).sum()
    unchanged = (np.abs(no_sites - plain).sum(2) > 30).sum()
    assert drawn > 100 and unchanged == 0, (drawn, unchanged)
    return drawn


def find_metric(metrics, method, metric):
    """metrics.json's value of a method's metric, wherever the file nests it."""
    if isinstance(metrics, dict):
        if method in metrics and isinstance(metrics[method], dict) and metric in metrics[method]:
            value = metrics[method][metric]
            return value["mean"] if isinstance(value, dict) else value
        for v in metrics.values():
            found = find_metric(v, method, metric)
            if found is not None:
                return found
    return None


def main():
    ebm_bin, energy_dump, plugin_dir, particles_xml, source = sys.argv[1:6]
    with tempfile.TemporaryDirectory() as tmp:
        image_err = check_images(ebm_bin, energy_dump, source, tmp)
        traj_err, latency, drawn = check_trajectories(ebm_bin, energy_dump, plugin_dir, particles_xml,
                                               source, tmp)
    print(f"ok: exported image energies within {image_err:.2g} and trajectory energies within "
          f"{traj_err:.2g} of the C++ nets; Python-written episodes trained; generator futures "
          f"read from Python ({latency:.1f} ms); ebm.view drew {drawn} pixels of ghost paths")


if __name__ == "__main__":
    main()
