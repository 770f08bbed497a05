"""`ebm` under torchrun, as a user launches it: 2 processes on 127.0.0.1 (Gloo, CPU).

- `ebm train` writes one run directory whose config.yaml records launch.world_size 2, and
  `ebm sample` works from its checkpoint; resuming it with 1 process and then again with 2 says
  what happened to the replay buffers;
- `ebm record` of the hand recording config: the episodes of the two shards are, by count and
  by content (`ebm data stats`), those of the one-process recording;
- the Slurm script's command line, run outside Slurm, trains the same way.

usage: torchrun_test.py EBM_BINARY SOURCE_DIR TORCHRUN
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile

TIMEOUT = 600


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, env=None, expect_ok=True):
    p = subprocess.run(args, capture_output=True, text=True, env=env, timeout=TIMEOUT)
    if expect_ok and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def main():
    ebm, src, torchrun = sys.argv[1:4]
    env = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo", EBM_DIST_TIMEOUT="120")
    two = [torchrun, "--standalone", "--nproc_per_node", "2", "--no-python", ebm]
    small = ["--set", "trainer.batch_size=16", "--set", "data.limit=512", "--set",
             "langevin.steps=5", "--set", "logging.checkpoint_every=2", "--set",
             "logging.sample_every=2", "-q"]
    fashion = os.path.join(src, "configs/images/fashion_mnist.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        p = run(two + ["train", "--config", fashion, "--out", out, "--set",
                       "trainer.iterations=4"] + small, env)
        assert p.stdout.count("run directory:") == 1, p.stdout  # rank 0 reports, alone
        config = open(os.path.join(out, "config.yaml")).read()
        assert re.search(r"launch:\s*\n\s+world_size: 2", config), config
        metrics = [json.loads(l) for l in open(os.path.join(out, "metrics.jsonl"))]
        assert [m["step"] for m in metrics][-1] == 4, metrics
        assert sorted(os.listdir(out)) == ["checkpoints", "config.yaml", "metrics.jsonl",
                                           "samples", "tensorboard"], os.listdir(out)
        ckpt = os.path.join(out, "checkpoints", "ckpt-0000000004.pt")
        png = os.path.join(tmp, "s.png")
        run([ebm, "sample", "--checkpoint", ckpt, "--n", "4", "--out", png], env)
        assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        # Resumed by one process, then by two again: the buffers are accounted for.
        p = run([ebm, "train", "--config", fashion, "--out", out, "--resume", "--set",
                 "trainer.iterations=6"] + small, env)
        assert "written by 2 processes, this run has 1: the replay buffers of rank 1 are not " \
               "used" in p.stderr, p.stderr
        p = run(two + ["train", "--config", fashion, "--out", out, "--resume", "--set",
                       "trainer.iterations=8"] + small, env)
        assert "written by 1 process, this run has 2: rank 1 starts with an empty replay " \
               "buffer" in p.stderr, p.stderr
        assert os.path.exists(os.path.join(out, "checkpoints", "ckpt-0000000008.pt"))

        # Sharded recording = the one-process recording.
        hand = os.path.join(src, "configs/trajectories/hand_record.yaml")
        rec = ["--config", hand, "-q", "--set", "rollout.start_states=3", "--set",
               "rollout.branches=2", "--set", "rollout.episode_steps=200", "--set",
               "rollout.warmup_steps=50", "--set", "rollout.threads=1"]
        one, sharded = os.path.join(tmp, "one"), os.path.join(tmp, "sharded")
        run([ebm, "record", "--out", one] + rec, env)
        run(two + ["record", "--out", sharded] + rec, env)
        stats = [json.loads(run([ebm, "data", "stats", "--format", "trajectory", "--path", d],
                                env).stdout) for d in (one, sharded)]
        assert stats[0]["episodes"] == stats[1]["episodes"] == 6, stats
        for key in ("frames", "start_states", "model_hash", "fields"):
            assert stats[0][key] == stats[1][key], (key, stats)
        summary = json.load(open(os.path.join(sharded, "record.json")))
        assert summary["episodes"] == 6 and summary["processes"] == 2, summary
        shards = [f for f in os.listdir(sharded) if f.endswith(".ebmtraj")]
        assert len(shards) == 2, shards  # one per process (one thread each)

        # The Slurm script's command line, outside Slurm: torchrun with 2 processes here.
        slurm_out = os.path.join(tmp, "slurm")
        senv = dict(env, EBM_PROCS_PER_NODE="2", EBM_BINARY=ebm, EBM_TORCHRUN=torchrun,
                    MASTER_PORT=str(free_port()))
        p = run(["bash", os.path.join(src, "scripts/slurm/ebm.sbatch"), "train", "--config",
                 fashion, "--out", slurm_out, "--set", "trainer.iterations=2"] + small, senv)
        config = open(os.path.join(slurm_out, "config.yaml")).read()
        assert re.search(r"world_size: 2", config), config
    print("ok")


if __name__ == "__main__":
    main()
