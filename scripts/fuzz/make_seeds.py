"""Seed corpora for the fuzz targets (fuzz/README.md), written from valid files: NumPy's .npy and
.npz (stored and deflated), pickled batches as the downsampled ImageNet release writes them
(protocols 2 to 5), a small trajectory recording made by `ebm record`, every shipped config, IDX
and CIFAR files as their releases lay them out, PNG and JPEG images written by Pillow, SVHN files
written by SciPy, a dSprites npz, PyTorch archives (sealed as ebm seals them, and not) with their
pickles, best.json records and plugin attribute sets.

usage: make_seeds.py OUT_DIR EBM_BINARY SOURCE_DIR
"""
import glob
import gzip
import io
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

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


def idx_seeds(out):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 5, 4), dtype=np.uint8)
    labels = np.array([0, 9, 3], dtype=np.uint8)
    files = {
        "images.idx3": struct.pack(">IIII", 0x803, 3, 5, 4) + images.tobytes(),
        "labels.idx1": struct.pack(">II", 0x801, 3) + labels.tobytes(),
        "empty.idx3": struct.pack(">IIII", 0x803, 0, 28, 28),
    }
    for name, data in files.items():
        save(out, name, data)
        save(out, name + ".gz", gzip.compress(data, mtime=0))


def cifar_seeds(out):
    rng = np.random.default_rng(2)
    for name, label_bytes in (("cifar10.bin", [[3], [9]]), ("cifar100.bin", [[1, 17], [19, 99]])):
        data = b"".join(bytes(lb) + rng.integers(0, 256, 3072, dtype=np.uint8).tobytes()
                        for lb in label_bytes)
        save(out, name, data)


def picture_seeds(png_out, jpeg_out):
    from PIL import Image
    rng = np.random.default_rng(3)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8), "RGB")
    grey = rgb.convert("L")
    variants = {"rgb": rgb, "grey": grey, "rgba": rgb.convert("RGBA"),
                "palette": rgb.convert("P"), "bilevel": grey.convert("1")}
    for name, img in variants.items():
        buf = io.BytesIO()
        img.save(buf, "PNG")
        save(png_out, name + ".png", buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray((rng.integers(0, 65536, (4, 3))).astype(np.uint16)).save(buf, "PNG")
    save(png_out, "grey16.png", buf.getvalue())
    buf = io.BytesIO()
    rgb.save(buf, "PNG", interlace=1)
    save(png_out, "interlaced.png", buf.getvalue())
    for name, img, options in (("rgb", rgb, {}), ("grey", grey, {}),
                               ("progressive", rgb, {"progressive": True}),
                               ("subsampled", rgb.resize((17, 9)), {"subsampling": 2}),
                               ("cmyk", rgb.convert("CMYK"), {})):
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=80, **options)
        save(jpeg_out, name + ".jpg", buf.getvalue())


def svhn_seeds(out):
    from scipy.io import savemat
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (32, 32, 3, 2), dtype=np.uint8)
    for name, y, compress in (("double.mat", np.array([[10.0], [3.0]]), False),
                              ("compressed.mat", np.array([[1.0], [7.0]]), True),
                              ("uint8.mat", np.array([[2], [10]], dtype=np.uint8), False)):
        buf = io.BytesIO()
        savemat(buf, {"X": x, "y": y}, do_compression=compress)
        save(out, name, buf.getvalue())


def dsprites_seeds(out):
    rng = np.random.default_rng(5)
    imgs = rng.integers(0, 2, (2, 64, 64), dtype=np.uint8)
    classes = np.array([[0, 2, 5, 39, 31, 0], [0, 0, 1, 3, 4, 5]], dtype=np.int64)
    values = classes.astype(np.float64) / 10.0
    for name, writer in (("stored.npz", np.savez), ("deflated.npz", np.savez_compressed)):
        buf = io.BytesIO()
        writer(buf, imgs=imgs, latents_values=values, latents_classes=classes)
        save(out, name, buf.getvalue())


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def sealed(archive):
    """The archive as ebm/util/archive_seal.h seals it: the zip comment holds the CRC32C."""
    assert archive[-22:-18] == b"PK\x05\x06" and archive[-2:] == b"\0\0"
    head = archive[:-2] + bytes([19, 0])
    return head + b"ebm-crc32c:" + b"%08x" % crc32c(head)


def archive_seeds(checkpoint_out, pickle_out):
    import torch
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
    buf = io.BytesIO()
    torch.save({"model": net.state_dict(), "step": 7, "options": {"lr": 1e-4, "steps": [1, 2]}},
               buf)
    saved = buf.getvalue()
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(net), buf)
    scripted = buf.getvalue()
    for name, data in (("state_dict.pt", saved), ("scripted.pt", scripted)):
        save(checkpoint_out, name, data)
        save(checkpoint_out, "sealed_" + name, sealed(data))
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for member in z.namelist():
                if member.endswith(".pkl"):
                    save(pickle_out, name + "_" + os.path.basename(member), z.read(member))
    save(checkpoint_out, "best.json", b'{"step": 1200, "metric": 0.0625}\n')
    for protocol in range(6):
        save(pickle_out, "nested_p%d.pkl" % protocol,
             pickle.dumps({"a": [1, (2.5, None)], "b": {"c": [[b"x"]]}}, protocol=protocol))
    shared = [1, 2]
    save(pickle_out, "memo_p4.pkl", pickle.dumps([shared, shared, {"k": shared}], protocol=4))


def plugin_attribute_seeds(out):
    recorder = [["run.ebmtraj", "qpos qvel ctrl", "1", "0", "episode"],
                ["shards", "time qpos qvel act ctrl qacc sensordata sensor:jp site:tip", "5",
                 "200", "close"],
                ["out.ebmtraj", "mocap_pos mocap_quat", "1000000", "9223372036854775807", "none"]]
    # The ten generator attributes: checkpoint, every, samples, horizon, steps, sites, goal_site,
    # goal_target, goal_mocap, goal_weight.
    generator = [["generator.pt", "", "", "", "", "", "", "", "", ""],
                 ["models/generator.pt", "400", "8", "20", "0", "tip", "tip", "0.1 0 0.2", "",
                  "1.5"],
                 ["g.pt", "1", "1024", "100000", "2147483647", "tip tip", "tip", "", "target",
                  "0"]]
    for i, (r, g) in enumerate(zip(recorder, generator)):
        save(out, "set%d.txt" % i, "\n".join(r + g).encode())


def main():
    out, ebm, src = sys.argv[1:4]
    shutil.rmtree(out, ignore_errors=True)
    npy_seeds(os.path.join(out, "fuzz_npy_header"))
    npz_seeds(os.path.join(out, "fuzz_npz"))
    pickle_seeds(os.path.join(out, "fuzz_pickle"))
    trajectory_seeds(os.path.join(out, "fuzz_trajectory_record"), ebm, src)
    config_seeds(os.path.join(out, "fuzz_config"), src)
    idx_seeds(os.path.join(out, "fuzz_idx"))
    cifar_seeds(os.path.join(out, "fuzz_cifar"))
    picture_seeds(os.path.join(out, "fuzz_png"), os.path.join(out, "fuzz_jpeg"))
    svhn_seeds(os.path.join(out, "fuzz_svhn"))
    dsprites_seeds(os.path.join(out, "fuzz_dsprites"))
    archive_seeds(os.path.join(out, "fuzz_checkpoint_metadata"),
                  os.path.join(out, "fuzz_pickle_scan"))
    pickle_seeds(os.path.join(out, "fuzz_pickle_scan"))
    plugin_attribute_seeds(os.path.join(out, "fuzz_plugin_attributes"))
    for target in sorted(os.listdir(out)):
        print("%s: %d seeds" % (target, len(os.listdir(os.path.join(out, target)))))


if __name__ == "__main__":
    main()
