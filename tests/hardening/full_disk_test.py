"""A full disk, simulated by a file size limit (RLIMIT_FSIZE, with SIGXFSZ ignored so that writes
fail with EFBIG as on a full file system): `ebm record` and `ebm train` must stop with an error
naming the file they could not write, and leave everything written before intact: the recording's
complete episodes equal an unlimited recording's, and earlier checkpoints stay whole and
byte-identical, with no half-written checkpoint beside them.

usage: full_disk_test.py EBM_BINARY TRAJECTORY_DUMP ARCHIVE_CHECK SOURCE_DIR
"""
import os
import resource
import signal
import subprocess
import sys
import tempfile


def limited(max_bytes):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return apply


def dump(tool, folder):
    out = subprocess.run([tool, folder], capture_output=True, text=True, check=True)
    return out.stdout.splitlines(), out.stderr


def check_recording(ebm, dump_tool, src, tmp):
    args = lambda out: [ebm, "record", "-q", "--config",  # noqa: E731
                        os.path.join(src, "configs/trajectories/particles_record.yaml"),
                        "--out", out, "--set", "rollout.threads=1"]
    reference = os.path.join(tmp, "record-reference")
    subprocess.run(args(reference), check=True, capture_output=True)
    expected, _ = dump(dump_tool, reference)
    full = os.path.join(tmp, "record-full")
    run = subprocess.run(args(full), capture_output=True, text=True, preexec_fn=limited(300_000))
    kept, issues = dump(dump_tool, full)
    problems = []
    if run.returncode == 0:
        problems.append("the recording did not fail at the size limit")
    if ".ebmtraj: write failed (File too large)" not in run.stderr:
        problems.append("the error does not name the shard and the cause: " + run.stderr[-300:])
    if not kept or any(line not in expected for line in kept):
        problems.append("%d episodes kept, not all equal to the reference's" % len(kept))
    if issues.strip():
        problems.append("the reader reports: " + issues.strip()[-200:])
    print("record at a 300 kB limit: rc %d, %d of %d episodes kept; %s" %
          (run.returncode, len(kept), len(expected), "; ".join(problems) or "ok"))
    print("   " + "\n   ".join(l[:200] for l in run.stderr.strip().splitlines()[-2:]))
    return problems


def check_training(ebm, archive_check, src, tmp):
    run_dir = os.path.join(tmp, "train")
    args = [ebm, "train", "-q", "--config", os.path.join(src, "configs/images/fashion_mnist.yaml"),
            "--out", run_dir, "--set", "logging.checkpoint_every=3", "--set",
            "logging.sample_every=1000", "--set", "langevin.steps=5", "--set",
            "trainer.batch_size=16", "--set", "device=cpu"]
    subprocess.run(args + ["--set", "trainer.iterations=6"], check=True, capture_output=True)
    folder = os.path.join(run_dir, "checkpoints")
    before = {n: open(os.path.join(folder, n), "rb").read() for n in os.listdir(folder)}
    largest = max(len(b) for b in before.values())
    run = subprocess.run(args + ["--set", "trainer.iterations=12", "--resume"], capture_output=True,
                         text=True, preexec_fn=limited(largest // 2))
    after = sorted(os.listdir(folder))
    problems = []
    if run.returncode == 0:
        problems.append("training did not fail at the size limit")
    if "File too large" not in run.stderr or "ckpt-" not in run.stderr:
        problems.append("the error does not name the checkpoint and the cause: " + run.stderr[-300:])
    if after != sorted(before):
        problems.append("the checkpoint folder changed: %s -> %s" % (sorted(before), after))
    for name, data in before.items():
        path = os.path.join(folder, name)
        if os.path.exists(path) and open(path, "rb").read() != data:
            problems.append(name + " changed")
    read = subprocess.run([archive_check] + [os.path.join(folder, n) for n in after
                                             if n.endswith(".pt")], capture_output=True, text=True)
    if read.returncode != 0:
        problems.append("a checkpoint does not read whole: " + read.stdout)
    print("train at a %d-byte limit: rc %d, checkpoints %s; %s" %
          (largest // 2, run.returncode, after, "; ".join(problems) or "ok"))
    print("   " + run.stderr.strip().splitlines()[-1][:200])
    return problems


def main():
    ebm, dump_tool, archive_check, src = sys.argv[1:5]
    with tempfile.TemporaryDirectory() as tmp:
        problems = check_recording(ebm, dump_tool, src, tmp)
        problems += check_training(ebm, archive_check, src, tmp)
    if problems:
        sys.exit("a full disk lost or damaged data, or gave no clear error")
    print("a full disk gave clear errors and left earlier data intact")


if __name__ == "__main__":
    main()
