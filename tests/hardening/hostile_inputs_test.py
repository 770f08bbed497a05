"""Hostile and malformed inputs, one per class of issue 15, given to the real `ebm` command: each
must end in a clear error that names the file (or the config key and line), within 60 seconds and
3 GiB of heap (RLIMIT_DATA), never a signal, a hang or an allocation the file does not justify.

usage: hostile_inputs_test.py EBM_BINARY SOURCE_DIR
"""
import gzip
import io
import os
import pickle
import resource
import signal
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
from PIL import Image

HEAP_LIMIT = 3 << 30
TIME_LIMIT = 60


def limit_heap():
    resource.setrlimit(resource.RLIMIT_DATA, (HEAP_LIMIT, HEAP_LIMIT))
    os.setsid()


def run_ebm(ebm, args):
    proc = subprocess.Popen([ebm] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=limit_heap,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        out, err = proc.communicate(timeout=TIME_LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None, "", "(killed after %d s)" % TIME_LIMIT
    return proc.returncode, out, err


def npy_bytes(descr, shape, data=b""):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, repr(tuple(shape)))
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data


def write_npz(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)


def idx_images(n, h, w, pixels):
    return struct.pack(">IIII", 0x803, n, h, w) + pixels


# --------------------------------------------------------------------------------- the cases ---

def pickle_cases(tmp):
    cases = []
    # A list nested 300000 levels deep (about 600 kB): built by the pickle machine, then freed.
    deep = os.path.join(tmp, "deep_pickle")
    os.makedirs(deep)
    depth = 300000
    with open(os.path.join(deep, "train_data_batch_1"), "wb") as f:
        f.write(b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b".")
    cases.append(("pickle nested 300000 deep", ["data", "stats", "--format", "imagenet32",
                                                "--path", deep], deep, "deep"))
    # One 1 MB buffer memoised once and referenced 100000 times (100 GB if expanded).
    shared = os.path.join(tmp, "shared_pickle")
    os.makedirs(shared)
    big = np.zeros((1, 3072), np.uint8).tobytes() * 341
    with open(os.path.join(shared, "train_data_batch_1"), "wb") as f:
        pickle.dump({"data": [big] * 100000, "labels": [1]}, f, protocol=2)
    cases.append(("pickle referencing one buffer 100000 times",
                  ["data", "stats", "--format", "imagenet32", "--path", shared], shared,
                  "references"))
    # A cycle: a list that contains itself.
    cyc = os.path.join(tmp, "cyclic_pickle")
    os.makedirs(cyc)
    loop = []
    loop.append(loop)
    with open(os.path.join(cyc, "train_data_batch_1"), "wb") as f:
        pickle.dump({"data": loop, "labels": [1]}, f, protocol=2)
    cases.append(("pickle with a cycle", ["data", "stats", "--format", "imagenet32", "--path", cyc],
                  cyc, ("references", "deep")))
    return cases


def npz_cases(tmp):
    cases = []
    # ImageNet32 npz whose 'data' header claims 10^12 rows over 30 bytes of data.
    huge = os.path.join(tmp, "huge_npz")
    os.makedirs(huge)
    write_npz(os.path.join(huge, "train_data_batch_1.npz"),
              {"data": npy_bytes("|u1", (10**12, 3072), b"\0" * 30),
               "labels": npy_bytes("<i8", (10**12,), b"\0" * 8)})
    cases.append(("npz shape of 10^12 rows", ["data", "stats", "--format", "imagenet32",
                                              "--path", huge], huge, "needs"))
    # Labels whose element count wraps around 2^64 (2^62 x 4 x 8 bytes).
    wrap = os.path.join(tmp, "wrap_npz")
    os.makedirs(wrap)
    write_npz(os.path.join(wrap, "train_data_batch_1.npz"),
              {"data": npy_bytes("|u1", (1, 3072), b"\0" * 3072),
               "labels": npy_bytes("<i8", (2**62, 4), b"")})
    cases.append(("npy labels whose size wraps", ["data", "stats", "--format", "imagenet32",
                                                   "--path", wrap], wrap, "2^63"))
    # dSprites whose 'imgs' claims 10^12 sprites.
    dsp = os.path.join(tmp, "dsprites_huge.npz")
    write_npz(dsp, {"imgs": npy_bytes("|u1", (10**12, 64, 64), b"\0" * 4096)})
    cases.append(("dSprites imgs of 10^12 sprites", ["data", "stats", "--format", "dsprites",
                                                     "--path", dsp], dsp, "needs"))
    return cases


def idx_cases(tmp):
    cases = []
    # A gzip bomb: a header for 10 images of 28x28, then 1 GB of zeros (about 1 MB gzipped).
    bomb = os.path.join(tmp, "bomb")
    os.makedirs(bomb)
    with gzip.open(os.path.join(bomb, "train-images-idx3-ubyte.gz"), "wb", compresslevel=9) as f:
        f.write(idx_images(10, 28, 28, b""))
        chunk = b"\0" * (1 << 24)
        for _ in range(64):
            f.write(chunk)
    with gzip.open(os.path.join(bomb, "train-labels-idx1-ubyte.gz"), "wb") as f:
        f.write(struct.pack(">II", 0x801, 10) + b"\0" * 10)
    cases.append(("gzip IDX bomb", ["data", "stats", "--format", "fashion_mnist", "--path", bomb],
                  "train-images-idx3-ubyte.gz", "inflates past"))
    return cases


def image_cases(tmp):
    cases = []
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(buf, "JPEG")
    jpeg = bytearray(buf.getvalue())
    # The baseline frame header (SOF0): height and width follow its length and precision.
    sof = jpeg.index(b"\xff\xc0")
    huge = bytearray(jpeg)
    huge[sof + 5:sof + 9] = struct.pack(">HH", 65500, 65500)
    folder = os.path.join(tmp, "jpeg_huge", "a")
    os.makedirs(folder)
    with open(os.path.join(folder, "x.jpg"), "wb") as f:
        f.write(huge)
    cases.append(("JPEG claiming 65500x65500", ["data", "stats", "--format", "folder", "--path",
                                                 os.path.dirname(folder)], "x.jpg", "implausible"))
    # A noisy image cut inside its entropy-coded data: libjpeg pads the rest with grey and warns.
    noisy = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(
        noisy, "JPEG")
    trunc = os.path.join(tmp, "jpeg_trunc", "a")
    os.makedirs(trunc)
    with open(os.path.join(trunc, "t.jpg"), "wb") as f:
        f.write(noisy.getvalue()[:len(noisy.getvalue()) * 3 // 4])
    cases.append(("truncated JPEG", ["data", "stats", "--format", "folder", "--path",
                                     os.path.dirname(trunc)], "t.jpg", "corrupt JPEG"))
    try:
        import scipy.io
        svhn = os.path.join(tmp, "svhn_complex.mat")
        scipy.io.savemat(svhn, {"X": np.ones((32, 32, 3, 2)) * (1 + 1j),
                                "y": np.ones((2, 1))})
        cases.append(("SVHN with complex X", ["data", "stats", "--format", "svhn", "--path", svhn],
                      svhn, "complex"))
        # One flipped bit in the middle of a compressed X: libmatio would inflate other pixels.
        buf = io.BytesIO()
        scipy.io.savemat(buf, {"X": np.random.default_rng(0).integers(0, 256, (32, 32, 3, 20),
                                                                      dtype=np.uint8),
                               "y": np.ones((20, 1))}, do_compression=True)
        flipped = bytearray(buf.getvalue())
        flipped[len(flipped) // 2] ^= 0x10
        svhn_flip = os.path.join(tmp, "svhn_flipped.mat")
        with open(svhn_flip, "wb") as f:
            f.write(flipped)
        cases.append(("SVHN with a flipped compressed byte",
                      ["data", "stats", "--format", "svhn", "--path", svhn_flip], svhn_flip,
                      "incorrect data check"))
    except ImportError:
        print("scipy missing: the SVHN case is skipped")
    return cases


def checkpoint_cases(tmp):
    """A LibTorch archive (as torch.jit.save writes it) whose data.pkl nests lists 300000 deep:
    LibTorch's own unpickler overflows the stack on it (PyTorch's torch.jit.load too)."""
    import torch
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 2))), buf)
    path = os.path.join(tmp, "deep_data_pkl.pt")
    depth = 300000
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, \
            zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("/data.pkl"):
                data = b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."
            out.writestr(name, data)
    return [("checkpoint data.pkl nested 300000 deep",
             ["sample", "--checkpoint", path, "--out", os.path.join(tmp, "s.png")], path,
             "nest deeper")]


def special_file_cases(tmp):
    cases = []
    cifar = os.path.join(tmp, "cifar_devzero")
    os.makedirs(cifar)
    os.symlink("/dev/zero", os.path.join(cifar, "data_batch_1.bin"))
    cases.append(("/dev/zero as a CIFAR batch", ["data", "stats", "--format", "cifar10", "--path",
                                                  cifar], "data_batch_1.bin", "device"))
    fifo = os.path.join(tmp, "config_fifo.yaml")
    os.mkfifo(fifo)
    cases.append(("a FIFO as the config", ["eval", "compose", "--check", "--config", fifo], fifo,
                  "FIFO"))
    cases.append(("/dev/zero as the config",
                  ["eval", "compose", "--check", "--config", "/dev/zero"], "/dev/zero", "device"))
    cases.append(("a directory as the config", ["eval", "compose", "--check", "--config", tmp], tmp,
                  "is actually a directory"))
    return cases


def config_cases(tmp, src):
    base = open(os.path.join(src, "configs/eval/compose_dsprites.yaml")).read()
    edits = [
        ("lr of .inf", base.replace("lr: 2.0e-4", "lr: .inf"), "trainer.lr"),
        ("a section given twice", base + "trainer:\n  iterations: 5\n", "given twice"),
        ("a NUL byte", base.replace("name: compose_dsprites", "name: compose\0dsprites"), "NUL"),
        ("replay_buffer.capacity of 10^12", base.replace("capacity: 5000", "capacity: 1000000000000"),
         "replay_buffer.capacity"),
        ("model.stem_filters of 10^9", base.replace("net: small_cnn", "net: small_cnn\n  stem_filters: 1000000000"),
         "model.stem_filters"),
        ("model.blocks_per_stage of 10^8",
         base.replace("net: small_cnn", "net: small_cnn\n  blocks_per_stage: 100000000"),
         "model.blocks_per_stage"),
        ("negative stage_filters", base.replace("net: small_cnn", "net: small_cnn\n  stage_filters: [16, -4]"),
         "model.stage_filters"),
        ("an integer beyond 2^53", base.replace("iterations: 600", "iterations: 1.0e+300"),
         "trainer.iterations"),
    ]
    cases = []
    for i, (what, text, expected) in enumerate(edits):
        path = os.path.join(tmp, "config_%d.yaml" % i)
        with open(path, "wb") as f:
            f.write(text.encode())
        cases.append(("config: " + what, ["eval", "compose", "--check", "--config", path], path,
                      expected))
    return cases


def main():
    ebm, src = sys.argv[1], sys.argv[2]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = (pickle_cases(tmp) + npz_cases(tmp) + idx_cases(tmp) + image_cases(tmp) +
                 checkpoint_cases(tmp) + special_file_cases(tmp) + config_cases(tmp, src))
        for what, args, names, expected in cases:
            rc, _, err = run_ebm(ebm, args)
            alternatives = expected if isinstance(expected, tuple) else (expected,)
            ok = (rc is not None and rc > 0 and names in err and
                  any(text in err for text in alternatives))
            print("%-45s %s  rc=%s  %s" % (what, "ok  " if ok else "FAIL", rc,
                                           err.strip().splitlines()[-1][:160] if err.strip() else ""))
            if not ok:
                failures.append(what)
    if failures:
        print("%d of %d hostile inputs were not refused cleanly: %s" %
              (len(failures), len(cases), ", ".join(failures)))
        sys.exit(1)
    print("all %d hostile inputs refused with a clear error" % len(cases))


if __name__ == "__main__":
    main()
