"""`ebm record` and `ebm data stats` end to end, checked against independent computations:
image statistics against numpy on the raw IDX bytes of Fashion-MNIST; trajectory statistics
against the recording's own summary; a flipped byte reported at its record's offset.

usage: data_stats_test.py EBM_BINARY SOURCE_DIR
"""
import gzip
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

FASHION = "/usr/share/datasets/fashion-mnist"


def run(*args):
    out = subprocess.run(list(args), capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(f"{args} failed ({out.returncode}): {out.stderr}")
    return out.stdout


def main():
    ebm, src = sys.argv[1], sys.argv[2]
    # Images: the test split of the Debian package.
    stats = json.loads(run(ebm, "data", "stats", "--format", "fashion_mnist", "--path", FASHION,
                           "--split", "test"))
    with gzip.open(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read()[16:], dtype=np.uint8).astype(np.float64) / 255
    with gzip.open(os.path.join(FASHION, "t10k-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read()[8:], dtype=np.uint8)
    assert stats["count"] == 10000 and stats["shape"] == [1, 28, 28], stats
    assert list(stats["per_class"].values()) == np.bincount(labels).tolist(), stats["per_class"]
    assert abs(stats["channel_mean"][0] - images.mean()) < 1e-9, (stats, images.mean())
    assert abs(stats["channel_std"][0] - images.std()) < 1e-9, (stats, images.std())

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "traj")
        run(ebm, "record", "-q", "--config", os.path.join(src, "configs/trajectories/particles_record.yaml"),
            "--out", out, "--set", "rollout.start_states=4", "--set", "rollout.branches=3",
            "--set", "rollout.episode_steps=200")
        summary = json.load(open(os.path.join(out, "record.json")))
        stats = json.loads(run(ebm, "data", "stats", "--format", "trajectory", "--path", out))
        assert stats["episodes"] == summary["episodes"] == 12, (stats, summary)
        assert stats["frames"] == 12 * 200 // 4, stats
        assert stats["start_states"] == 4, stats
        assert stats["model_hash"] == summary["model_hash"], (stats, summary)
        assert [f["name"] for f in stats["fields"]] == ["time", "qpos", "qvel", "ctrl"], stats
        assert [f["size"] for f in stats["fields"]] == [1, 8, 8, 8], stats
        assert stats["issues"] == [], stats
        # Recording into the same directory again is refused; nothing is overwritten.
        again = subprocess.run([ebm, "record", "-q", "--config",
                                os.path.join(src, "configs/trajectories/particles_record.yaml"),
                                "--out", out], capture_output=True, text=True)
        assert again.returncode != 0 and "already holds trajectory files" in again.stderr, again.stderr
        # A flipped byte in the middle of a shard: reported as corrupt at its record's offset.
        shard = sorted(p for p in os.listdir(out) if p.endswith(".ebmtraj"))[0]
        path = os.path.join(out, shard)
        data = bytearray(open(path, "rb").read())
        data[len(data) // 2] ^= 0xFF
        open(path, "wb").write(data)
        stats = json.loads(run(ebm, "data", "stats", "--format", "trajectory", "--path", out))
        assert len(stats["issues"]) == 1 and stats["issues"][0]["kind"] == "corrupt", stats["issues"]
        assert stats["issues"][0]["file"] == path, stats["issues"]
        assert stats["issues"][0]["offset"] <= len(data) // 2, stats["issues"]
        assert stats["episodes"] == 11, stats
        # A config typo is an error with file:line.
        bad = subprocess.run([ebm, "record", "--config",
                              os.path.join(src, "configs/trajectories/particles_record.yaml"),
                              "--out", os.path.join(tmp, "x"), "--set", "rollout.thread=3"],
                             capture_output=True, text=True)
        assert bad.returncode != 0 and "rollout.thread" in bad.stderr, bad.stderr
    print("ok")


if __name__ == "__main__":
    main()
