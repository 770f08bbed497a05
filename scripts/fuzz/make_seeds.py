"""Seed corpora for the fuzz targets (fuzz/README.md), written from valid files: NumPy's .npy and
.npz (stored and deflated), pickled batches as the downsampled ImageNet release writes them
(protocols 2 to 5), a small trajectory recording made by `ebm record`, and every shipped config.

usage: make_seeds.py OUT_DIR EBM_BINARY SOURCE_DIR
"""
import glob
import io
import os
import pickle
import shutil
import subprocess
import sys
import tempfile

import numpy as np


def save(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def arrays():
    rng = np.random.default_rng(0)
    return {
        "u1": rng.integers(0, 256, (2, 12), dtype=np.uint8),
        "i8": np.arange(5, dtype=np.int64),
        "f4": rng.standard_normal((3, 2, 2)).astype(np.float32),
        "f8be": np.arange(3, dtype=">f8"),
        "b1": np.array([True, False]),
        "scalar": np.array(7, dtype=np.int32),
        "empty": np.zeros((0, 4), dtype=np.uint8),
    }


def npy_seeds(out):
    for name, a in arrays().items():
        buf = io.BytesIO()
        np.save(buf, a)
        save(out, name + ".npy", buf.getvalue())
    # Format version 2 (a 4-byte header length).
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arrays()["u1"], version=(2, 0))
    save(out, "v2.npy", buf.getvalue())


def npz_seeds(out):
    a = arrays()
    for name, writer in (("stored", np.savez), ("deflated", np.savez_compressed)):
        buf = io.BytesIO()
        writer(buf, **a)
        save(out, name + ".npz", buf.getvalue())
        buf = io.BytesIO()
        writer(buf, data=a["u1"], labels=np.array([1, 2], dtype=np.int64))
        save(out, name + "_imagenet.npz", buf.getvalue())


def pickle_seeds(out):
    a = arrays()
    batch = {"data": a["u1"], "labels": [1, 2], "mean": a["f4"]}
    for protocol in (2, 3, 4, 5):
        save(out, "batch_p%d.pkl" % protocol, pickle.dumps(batch, protocol=protocol))
    save(out, "nested_p4.pkl", pickle.dumps({"x": [[1, [2.5, None]], (True, b"ab")]}, protocol=4))


def trajectory_seeds(out, ebm, src):
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "rec")
        subprocess.run([ebm, "record", "-q", "--config",
                        os.path.join(src, "configs/trajectories/particles_record.yaml"),
                        "--out", run, "--set", "rollout.start_states=2", "--set",
                        "rollout.branches=2", "--set", "rollout.episode_steps=40"],
                       check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
        for i, shard in enumerate(sorted(glob.glob(os.path.join(run, "*.ebmtraj")))):
            data = open(shard, "rb").read()
            save(out, "shard%d.ebmtraj" % i, data)
            save(out, "shard%d_torn.ebmtraj" % i, data[:len(data) * 2 // 3])


def config_seeds(out, src):
    os.makedirs(out, exist_ok=True)
    for path in sorted(glob.glob(os.path.join(src, "configs/**/*.yaml"), recursive=True)):
        shutil.copy(path, os.path.join(out, os.path.relpath(path, src).replace("/", "_")))


def main():
    out, ebm, src = sys.argv[1:4]
    shutil.rmtree(out, ignore_errors=True)
    npy_seeds(os.path.join(out, "fuzz_npy_header"))
    npz_seeds(os.path.join(out, "fuzz_npz"))
    pickle_seeds(os.path.join(out, "fuzz_pickle"))
    trajectory_seeds(os.path.join(out, "fuzz_trajectory_record"), ebm, src)
    config_seeds(os.path.join(out, "fuzz_config"), src)
    for target in sorted(os.listdir(out)):
        print("%s: %d seeds" % (target, len(os.listdir(os.path.join(out, target)))))


if __name__ == "__main__":
    main()
