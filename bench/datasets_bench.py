"""Downsampled-ImageNet reader: peak memory against data size, for npz (stored and compressed)
and pickled batches written by NumPy/pickle like the official release; and the CIFAR-10 load rate.

usage: datasets_bench.py BENCH_DATASETS_BINARY [--images 200000] [--batches 10] [--dir /tmp/...]
"""
import argparse
import json
import os
import pickle
import shutil
import subprocess
import tempfile

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--images", type=int, default=200000)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--dir", default=None)
    a = ap.parse_args()
    root = a.dir or tempfile.mkdtemp(prefix="ebm_bench_datasets_")
    rng = np.random.default_rng(0)
    per = a.images // a.batches
    results = []
    try:
        for kind in ("npz", "npz_compressed", "pickle"):
            d = os.path.join(root, kind)
            os.makedirs(d, exist_ok=True)
            for b in range(1, a.batches + 1):
                data = rng.integers(0, 256, size=(per, 3072), dtype=np.uint8)
                if kind == "npz_compressed":
                    data[:, ::2] = 0  # something to compress
                labels = rng.integers(1, 1001, size=per)
                name = os.path.join(d, f"train_data_batch_{b}")
                if kind == "npz":
                    np.savez(name + ".npz", data=data, labels=labels)
                elif kind == "npz_compressed":
                    np.savez_compressed(name + ".npz", data=data, labels=labels)
                else:
                    with open(name, "wb") as f:
                        pickle.dump({"data": data, "labels": labels.tolist()}, f, protocol=4)
            out = subprocess.run([a.binary, "imagenet", d], check=True, capture_output=True, text=True)
            r = json.loads(out.stdout)
            r["kind"] = kind
            results.append(r)
            shutil.rmtree(d)
        out = subprocess.run([a.binary, "cifar", os.path.join(root, "cifar")], check=True,
                             capture_output=True, text=True)
        results.append(json.loads(out.stdout))
    finally:
        if a.dir is None:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
