"""Runs the C++ and the PyTorch-eager CD iteration alternately (ABAB...) in one session and
reports the median time per iteration of each and their ratio. Both programs report the
parameter count of their net; the run fails if the twins' counts differ (they are then not the
same net).

Usage: cd_step_compare.py CPP_BINARY [--rounds 3] [--iters 20] [--warmup 3] [--batch 32]
                          [--steps 20] [--threads 2] [--device cpu]
                          [--net small_cnn|resnet32_large] [--channels 1] [--size 28]
                          [--autocast-bf16 0|1]

The paper's CIFAR-10 step: --net resnet32_large --channels 3 --size 32 --batch 128 --steps 60.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cpp_binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--net", default="small_cnn")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--autocast-bf16", type=int, default=0, choices=(0, 1))
    a = ap.parse_args()
    common = ["--iters", str(a.iters), "--warmup", str(a.warmup), "--batch", str(a.batch),
              "--steps", str(a.steps), "--threads", str(a.threads), "--device", a.device,
              "--net", a.net, "--channels", str(a.channels), "--size", str(a.size),
              "--autocast-bf16", str(a.autocast_bf16)]
    py = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "cd_step_pytorch.py")]
    times = {"cpp": [], "pytorch": []}
    params = {}
    for r in range(a.rounds):
        for name, cmd in (("cpp", [a.cpp_binary]), ("pytorch", py)):
            proc = subprocess.run(cmd + common, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"{name} failed (exit {proc.returncode}): {' '.join(cmd + common)}\n"
                         f"{proc.stderr.strip()}")
            rec = json.loads(proc.stdout.strip().splitlines()[-1])
            times[name].append(rec["ms_per_iter"])
            params[name] = rec["params"]
            print(f"round {r + 1}: {name:8s} {rec['ms_per_iter']:9.2f} ms/iter "
                  f"({rec['params']} params)", flush=True)
        if params["cpp"] != params["pytorch"]:
            sys.exit(f"the twins differ: {a.net} has {params['cpp']} parameters in C++ and "
                     f"{params['pytorch']} in PyTorch")
    cpp, pt = statistics.median(times["cpp"]), statistics.median(times["pytorch"])
    result = {"device": a.device, "threads": a.threads, "batch": a.batch, "langevin_steps": a.steps,
              "net": a.net, "channels": a.channels, "size": a.size,
              "autocast_bf16": bool(a.autocast_bf16), "cpp_params": params["cpp"],
              "pytorch_params": params["pytorch"], "cpp_ms_per_iter": cpp,
              "pytorch_ms_per_iter": pt, "speedup": round(pt / cpp, 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
