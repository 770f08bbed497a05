"""Data-parallel scaling on this machine: CD training steps per second of one process and of two
(torchrun, Gloo over 127.0.0.1), one thread each, the same per-rank batch, run alternately in
rounds. The worker times the wait for the other rank (a barrier it adds before the all-reduce)
apart from the all-reduce itself. Two processes take twice the images per step, so their throughput ratio is
2 x (steps/s with 2) / (steps/s with 1); the target is >= 1.8 on 2 cores.

    ${EBM_PYTHON} bench/dist_scaling.py build/bin/ebm_dist_worker [--rounds 3 --steps 30 --batch 32 --net small_cnn]
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(worker, procs, args):
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    cmd = [worker, "bench", str(args.steps), str(args.batch), args.net]
    if procs > 1:
        torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
        cmd = [torchrun, "--nnodes", "1", "--nproc_per_node", str(procs), "--master_addr",
               "127.0.0.1", "--master_port", str(free_port()), "--no-python"] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    return json.loads([l for l in out.splitlines() if l.startswith("{")][-1])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("worker")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--net", default="small_cnn")
    args = p.parse_args()
    results = {1: [], 2: []}
    for r in range(args.rounds):
        for procs in ((1, 2) if r % 2 == 0 else (2, 1)):
            res = run(args.worker, procs, args)
            results[procs].append(res)
            print(f"round {r + 1}: {procs} process(es): {res['steps_per_s']:.3f} steps/s, "
                  f"waiting for the other rank {1000 * res['wait_s_per_step']:.2f} ms/step, "
                  f"all-reduce {1000 * res['allreduce_s_per_step']:.2f} ms/step", flush=True)
    one = statistics.median(r["steps_per_s"] for r in results[1])
    two = statistics.median(r["steps_per_s"] for r in results[2])
    reduce_ms = 1000 * statistics.median(r["allreduce_s_per_step"] for r in results[2])
    wait_ms = 1000 * statistics.median(r["wait_s_per_step"] for r in results[2])
    ratios = [2 * b["steps_per_s"] / a["steps_per_s"] for a, b in zip(results[1], results[2])]
    summary = {
        "net": args.net, "batch_per_rank": args.batch, "steps": args.steps,
        "steps_per_s_1": round(one, 4), "steps_per_s_2": round(two, 4),
        "throughput_ratio": round(2 * two / one, 3),
        "throughput_ratio_per_round": [round(x, 3) for x in ratios],
        "wait_ms_per_step_2": round(wait_ms, 3),
        "allreduce_ms_per_step_2": round(reduce_ms, 3),
        "allreduce_bytes_per_step": results[2][0]["allreduce_bytes_per_step"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
