"""Runs the C++ and the PyTorch-eager CD iteration alternately (ABAB...) in one session and
reports the median time per iteration of each and their ratio.

Usage: cd_step_compare.py CPP_BINARY [--rounds 3] [--iters 20] [--batch 32] [--steps 20]
                          [--threads 2] [--device cpu]
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
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    common = ["--iters", str(a.iters), "--batch", str(a.batch), "--steps", str(a.steps),
              "--threads", str(a.threads), "--device", a.device]
    py = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "cd_step_pytorch.py")]
    times = {"cpp": [], "pytorch": []}
    for r in range(a.rounds):
        for name, cmd in (("cpp", [a.cpp_binary]), ("pytorch", py)):
            out = subprocess.run(cmd + common, check=True, capture_output=True, text=True).stdout
            rec = json.loads(out.strip().splitlines()[-1])
            times[name].append(rec["ms_per_iter"])
            print(f"round {r + 1}: {name:8s} {rec['ms_per_iter']:9.2f} ms/iter", flush=True)
    cpp, pt = statistics.median(times["cpp"]), statistics.median(times["pytorch"])
    result = {"device": a.device, "threads": a.threads, "batch": a.batch, "langevin_steps": a.steps,
              "cpp_ms_per_iter": cpp, "pytorch_ms_per_iter": pt, "speedup": round(pt / cpp, 3)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
