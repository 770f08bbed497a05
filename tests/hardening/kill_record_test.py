"""Crash safety of `ebm record`, proven by killing it: 20 recordings SIGKILLed at random moments.
After each, every episode the reader reports complete must equal, bit for bit, the episode of the
same id in an uninterrupted recording with the same config and seed, and no other episode may be
reported (a record cut by the kill is a torn tail, never an episode).

usage: kill_record_test.py EBM_BINARY TRAJECTORY_DUMP SOURCE_DIR
"""
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

KILLS = 20


def record_args(ebm, src, out):
    return [ebm, "record", "-q", "--config",
            os.path.join(src, "configs/trajectories/particles_record.yaml"), "--out", out,
            "--set", "rollout.start_states=64", "--set", "rollout.branches=8",
            "--set", "recorder.flush=episode"]


def episodes(dump, folder):
    """Episodes by id as the reader reports them (JSON text per episode), and its stderr."""
    shards = [f for f in os.listdir(folder) if f.endswith(".ebmtraj")] if os.path.isdir(folder) else []
    if not shards:
        return {}, "(no shard yet)"
    out = subprocess.run([dump, folder], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise AssertionError("the reader failed on %s: %s" % (folder, out.stderr))
    found = {}
    for line in out.stdout.splitlines():
        ep = json.loads(line)
        found[ep["id"]] = line
    return found, out.stderr


def main():
    ebm, dump, src = sys.argv[1:4]
    rng = random.Random(15)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        ref_dir = os.path.join(tmp, "reference")
        start = time.monotonic()
        subprocess.run(record_args(ebm, src, ref_dir), check=True, env=env)
        duration = time.monotonic() - start
        reference, _ = episodes(dump, ref_dir)
        print("reference: %d episodes in %.2f s" % (len(reference), duration))
        failures, partial = [], 0
        for k in range(KILLS):
            out = os.path.join(tmp, "killed-%d" % k)
            delay = rng.uniform(0.0, duration)
            proc = subprocess.Popen(record_args(ebm, src, out), env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            found, issues = episodes(dump, out)
            wrong = [i for i, text in found.items() if reference.get(i) != text]
            partial += 0 < len(found) < len(reference)
            print("kill %2d after %.2f s: %3d complete episodes, %d differ; reader: %s" %
                  (k, delay, len(found), len(wrong), issues.strip().splitlines()[-1][:100]
                   if issues.strip() else "no issues"))
            if wrong:
                failures.append(k)
        print("%d of %d kills landed mid-recording" % (partial, KILLS))
        if failures:
            sys.exit("kills %s left episodes that differ from the reference" % failures)
        if partial < 3:
            sys.exit("only %d kills landed mid-recording: the test did not test" % partial)
        print("all %d kills: every complete episode equals the reference" % KILLS)


if __name__ == "__main__":
    main()
