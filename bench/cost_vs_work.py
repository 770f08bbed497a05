"""Cost against work: how the CD training step, the generator and training memory grow.

Runs the benchmark binaries over a sweep each and prints markdown tables (bench/README.md holds a
run of it), with the growth the algorithm predicts beside the measured figure:
  - CD step time against Langevin steps (batch 32) and against batch size (20 steps): each
    Langevin step is one forward and one input-gradient backward of the batch, so the time should
    be a + b * steps, and linear in the batch once the batch fills the cores;
  - generator latency against K futures (bench_generator on a trained checkpoint): linear in K;
  - peak memory (max RSS) of training against replay-buffer capacity and image size: the buffer
    holds capacity x C x H x W bytes (uint8), the activations grow with H x W.

Usage: cost_vs_work.py BUILD_BIN_DIR [--generator runs/hand_traj/models/generator.pt]
                       [--iters 4] [--rounds 2] [--threads 1]
"""
import argparse
import json
import os
import statistics
import subprocess


def run_json(cmd, env):
    """The last JSON line of cmd's output."""
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def peak_rss_mib(cmd, env):
    """Runs cmd and returns (its JSON, its peak RSS in MiB) measured by the kernel (wait4)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err.strip()[-400:]}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024.0


def fit_line(xs, ys):
    """Least-squares a + b x."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def table(title, key, xs, ys, unit):
    a, b = fit_line(xs, ys)
    print(f"\n{title} (fit: {a:.1f} + {b:.2f} x {key}, {unit})\n")
    print(f"| {key} | measured {unit} | linear fit | measured / fit |")
    print("|---|---|---|---|")
    for x, y in zip(xs, ys):
        fit = a + b * x
        print(f"| {x} | {y:.1f} | {fit:.1f} | {y / fit:.3f} |")


def cd_sweep(binary, env, a, name, values, fixed):
    times = []
    for v in values:
        args = dict(fixed, **{name: v})
        cmd = [binary, "--iters", str(a.iters), "--warmup", "2", "--threads", str(a.threads)]
        for k, val in args.items():
            cmd += [f"--{k}", str(val)]
        rounds = [run_json(cmd, env)["ms_per_iter"] for _ in range(a.rounds)]
        times.append(statistics.median(rounds))
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin_dir")
    ap.add_argument("--generator", default="runs/hand_traj/models/generator.pt")
    ap.add_argument("--iters", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--parts", default="cd,generator,memory",
                    help="comma-separated: cd (time vs steps and batch), generator, memory")
    a = ap.parse_args()
    parts = set(a.parts.split(","))
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    cd = os.path.join(a.bin_dir, "bench_cd_step")

    if "cd" in parts:
        cd_tables(cd, env, a)
    if "generator" in parts:
        generator_table(env, a)
    if "memory" in parts:
        memory_tables(cd, env)


def cd_tables(cd, env, a):
    steps = [5, 10, 20, 40]
    table("CD step (small_cnn, 1x28x28, batch 32) against Langevin steps", "steps", steps,
          cd_sweep(cd, env, a, "steps", steps, {"batch": 32}), "ms")
    batches = [8, 16, 32, 64]
    table("CD step (small_cnn, 1x28x28, 20 Langevin steps) against batch size", "batch", batches,
          cd_sweep(cd, env, a, "batch", batches, {"steps": 20}), "ms")


def generator_table(env, a):
    if os.path.exists(a.generator):
        ks = [1, 2, 4, 8, 16]
        lat = []
        for k in ks:
            cmd = [os.path.join(a.bin_dir, "bench_generator"), a.generator, "--samples", str(k),
                   "--rounds", "8"]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
            # The first line is the stored energy's (with experts when the checkpoint has them).
            first = next(l for l in out.splitlines() if '"median_ms"' in l)
            lat.append(json.loads(first)["median_ms"])
        table(f"Generator latency ({a.generator}) against K futures", "K", ks, lat, "ms")
    else:
        print(f"\n(no {a.generator}: run scripts/main.sh for the generator sweep)")


def memory_tables(cd, env):
    caps = [1000, 30000, 100000, 300000]
    rss = [peak_rss_mib([cd, "--iters", "1", "--warmup", "0", "--steps", "1", "--batch", "8",
                         "--channels", "3", "--size", "32", "--capacity", str(c)], env)[1]
           for c in caps]
    table("Peak RSS of training (small_cnn, 3x32x32, uint8 buffer) against buffer capacity",
          "capacity", caps, rss, "MiB")
    print(f"\n(the buffer's own bytes: 3 x 32 x 32 = 3072 per state, {3072 / 2**20 * 1000:.2f} MiB"
          " per 1000 states)")
    sizes = [16, 32, 64, 128]
    rss = [peak_rss_mib([cd, "--iters", "1", "--warmup", "0", "--steps", "1", "--batch", "32",
                         "--channels", "3", "--size", str(s), "--capacity", "1000"], env)[1]
           for s in sizes]
    areas = [s * s for s in sizes]
    table("Peak RSS of training (small_cnn, batch 32, buffer 1000) against image area H x W",
          "HxW", areas, rss, "MiB")


if __name__ == "__main__":
    main()
