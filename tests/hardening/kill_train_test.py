"""Crash safety of `ebm train`, proven by killing it: 20 short trainings on Fashion-MNIST SIGKILLed
at random moments, with a checkpoint every 3 steps holding an 8 MB replay buffer; every other kill
waits for a checkpoint's temporary file to appear after its random moment, so that it lands inside
a checkpoint write. After each kill every checkpoint file left must read whole
(seal and LibTorch, tests/fixtures/archive_check.cc); `--resume` must continue from the newest of
them (or a plain start when none was written) and end with a final checkpoint byte-identical to
an uninterrupted run's.

usage: kill_train_test.py EBM_BINARY ARCHIVE_CHECK SOURCE_DIR
"""
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

KILLS = 20
ITERATIONS = 15


def train_args(ebm, src, out, resume=False):
    args = [ebm, "train", "-q", "--config", os.path.join(src, "configs/images/fashion_mnist.yaml"),
            "--out", out, "--set", "trainer.iterations=%d" % ITERATIONS,
            "--set", "logging.checkpoint_every=3", "--set", "logging.sample_every=1000",
            "--set", "langevin.steps=5", "--set", "trainer.batch_size=16", "--set", "device=cpu"]
    return args + (["--resume"] if resume else [])


def final_checkpoint(run):
    return os.path.join(run, "checkpoints", "ckpt-%010d.pt" % ITERATIONS)


def checkpoint_steps(run):
    folder = os.path.join(run, "checkpoints")
    names = os.listdir(folder) if os.path.isdir(folder) else []
    steps = sorted(int(m.group(1)) for m in (re.match(r"ckpt-(\d+)\.pt$", n) for n in names) if m)
    temporaries = [n for n in names if ".tmp." in n]
    return steps, temporaries, [os.path.join(folder, n) for n in names if n.endswith(".pt")]


def wait_for_a_checkpoint_write(run, proc, limit):
    """Returns as soon as a checkpoint's temporary file exists (a write is under way), or when the
    process ends or `limit` seconds pass."""
    folder = os.path.join(run, "checkpoints")
    end = time.monotonic() + limit
    while time.monotonic() < end and proc.poll() is None:
        if os.path.isdir(folder) and any(".tmp." in n for n in os.listdir(folder)):
            return
        time.sleep(0.0005)


def main():
    ebm, check, src = sys.argv[1:4]
    rng = random.Random(15)
    with tempfile.TemporaryDirectory() as tmp:
        reference = os.path.join(tmp, "reference")
        start = time.monotonic()
        subprocess.run(train_args(ebm, src, reference), check=True, capture_output=True)
        duration = time.monotonic() - start
        expected = open(final_checkpoint(reference), "rb").read()
        print("reference: %d steps in %.2f s" % (ITERATIONS, duration))
        failures, mid_write, resumed = [], 0, 0
        for k in range(KILLS):
            run = os.path.join(tmp, "killed-%d" % k)
            delay = rng.uniform(0.0, duration)
            proc = subprocess.Popen(train_args(ebm, src, run), stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(delay)
            if k % 2:
                wait_for_a_checkpoint_write(run, proc, duration)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            steps, temporaries, files = checkpoint_steps(run)
            mid_write += bool(temporaries)
            problems = []
            if files:
                read = subprocess.run([check] + files, capture_output=True, text=True)
                problems += [l for l in read.stdout.splitlines() if l.startswith("bad")]
            again = subprocess.run(train_args(ebm, src, run, resume=bool(steps)),
                                   capture_output=True, text=True)
            if again.returncode != 0:
                problems.append("the restart failed: " + again.stderr.strip()[-300:])
            elif steps:
                resumed += 1
                said = re.search(r"resumed from .*ckpt-(\d+)\.pt at step (\d+)", again.stderr)
                if not said or int(said.group(2)) != steps[-1]:
                    problems.append("did not resume from step %d: %s" %
                                    (steps[-1], again.stderr.strip()[-200:]))
            if checkpoint_steps(run)[1]:
                problems.append("the restart left a dead writer's temporary file behind")
            if again.returncode == 0 and open(final_checkpoint(run), "rb").read() != expected:
                problems.append("the final checkpoint differs from the uninterrupted run's")
            print("kill %2d after %.2f s: checkpoints at %s%s -> %s" %
                  (k, delay, steps or "none", " (killed mid-write)" if temporaries else "",
                   "; ".join(problems) or "resumed, final checkpoint identical"))
            if problems:
                failures.append(k)
        print("%d kills resumed from a checkpoint, %d landed inside a checkpoint write" %
              (resumed, mid_write))
        if failures:
            sys.exit("kills %s broke the run" % failures)
        if resumed < 3:
            sys.exit("only %d kills left a checkpoint to resume: the test did not test" % resumed)
        print("all %d kills: whole checkpoints only, resumed to identical final weights" % KILLS)


if __name__ == "__main__":
    main()
