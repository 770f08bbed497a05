"""Writes small files in the published formats with NumPy, pickle, SciPy and Pillow (the tools
the data sets were made with), with known pixel patterns, for tests/datasets/image_formats_test.cc.

Pattern (checked independently in C++): image k (counting across batches), flat index j of its
3*R*R values: (7 k + 3 j) % 256; label k -> 1 + (37 k) % 1000.

usage: make_image_fixtures.py OUT_DIR
"""
import os
import pickle
import sys

import numpy as np
import scipy.io
from PIL import Image


def batch(start, n, side):
    k = np.arange(start, start + n)[:, None]
    j = np.arange(3 * side * side)[None, :]
    data = ((7 * k + 3 * j) % 256).astype(np.uint8)
    labels = 1 + (37 * np.arange(start, start + n)) % 1000
    return data, labels


def main():
    out = sys.argv[1]
    # Downsampled ImageNet, npz: batch 1 stored, batch 2 compressed (zip deflate), val.
    npz = os.path.join(out, "imagenet_npz")
    os.makedirs(npz)
    d1, l1 = batch(0, 5, 8)
    d2, l2 = batch(5, 3, 8)
    np.savez(os.path.join(npz, "train_data_batch_1.npz"), data=d1, labels=l1, mean=d1.mean(0))
    np.savez_compressed(os.path.join(npz, "train_data_batch_2.npz"), data=d2,
                        labels=l2.astype(np.int32), mean=d2.mean(0))
    dv, lv = batch(100, 4, 8)
    np.savez(os.path.join(npz, "val_data.npz"), data=dv, labels=lv)
    # The same as pickles: protocol 2 (arrays via _codecs.encode), 4 (bytes), 5 (in-band buffers).
    pk = os.path.join(out, "imagenet_pickle")
    os.makedirs(pk)
    with open(os.path.join(pk, "train_data_batch_1"), "wb") as f:
        pickle.dump({"data": d1, "labels": l1.tolist(), "mean": d1.mean(0)}, f, protocol=2)
    with open(os.path.join(pk, "train_data_batch_2"), "wb") as f:
        pickle.dump({"data": d2, "labels": l2, "mean": d2.mean(0)}, f, protocol=4)
    with open(os.path.join(pk, "val_data"), "wb") as f:
        pickle.dump({"data": dv, "labels": lv.tolist()}, f, protocol=5)

    # Malformed files.
    bad = os.path.join(out, "bad")
    os.makedirs(bad)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(os.path.join(bad, "evil_pickle"), "wb") as f:
        pickle.dump({"data": Evil(), "labels": [1]}, f, protocol=2)
    with open(os.path.join(bad, "object_pickle"), "wb") as f:
        pickle.dump({"data": np.array([{"a": 1}], dtype=object), "labels": [1]}, f, protocol=4)
    np.savez(os.path.join(bad, "float_data.npz"), data=d1.astype(np.float32), labels=l1)
    np.savez(os.path.join(bad, "label_zero.npz"), data=d1, labels=l1 - l1)
    whole = open(os.path.join(npz, "train_data_batch_1.npz"), "rb").read()
    open(os.path.join(bad, "truncated.npz"), "wb").write(whole[: len(whole) // 2])
    flipped = bytearray(whole)
    flipped[200] ^= 0xFF  # inside the stored 'data' member
    open(os.path.join(bad, "flipped.npz"), "wb").write(bytes(flipped))
    open(os.path.join(bad, "truncated_pickle"), "wb").write(
        open(os.path.join(pk, "train_data_batch_2"), "rb").read()[:300])

    # dSprites-like npz (with the official file's pickled metadata member, which must be ignored).
    n = 6
    imgs = np.zeros((n, 64, 64), np.uint8)
    for i in range(n):
        imgs[i, i : i + 10, 2 * i : 2 * i + 5] = 1
    classes = np.zeros((n, 6), np.int64)
    classes[:, 1] = np.arange(n) % 3
    values = np.linspace(0, 1, n * 6).reshape(n, 6)
    np.savez_compressed(os.path.join(out, "dsprites.npz"), imgs=imgs, latents_values=values,
                        latents_classes=classes,
                        metadata=np.array({"date": "April 2017"}, dtype=object))

    # An image folder: two classes, PNG (RGB and gray) and JPEG.
    folder = os.path.join(out, "folder")
    for c in ("cat", "dog"):
        os.makedirs(os.path.join(folder, c))
    rgb = ((np.arange(4 * 5 * 3).reshape(4, 5, 3) * 5) % 256).astype(np.uint8)
    Image.fromarray(rgb).save(os.path.join(folder, "cat", "a.png"))
    Image.fromarray(rgb[:, :, 0]).save(os.path.join(folder, "cat", "b.png"))
    flat = np.full((4, 5, 3), 200, np.uint8)
    Image.fromarray(flat).save(os.path.join(folder, "dog", "c.jpg"), quality=100)
    open(os.path.join(folder, "dog", "notes.txt"), "w").write("not an image")

    # Broken images and a dSprites file with the wrong dtype.
    for name, data in (("bad_png", open(os.path.join(folder, "cat", "a.png"), "rb").read()[:40]),
                       ("bad_jpg", b"\xff\xd8\xff\xe0 not really a jpeg")):
        d = os.path.join(out, "bad", name, "x")
        os.makedirs(d)
        open(os.path.join(d, "img" + (".png" if name == "bad_png" else ".jpg")), "wb").write(data)
    np.savez(os.path.join(out, "bad", "dsprites_float.npz"), imgs=imgs.astype(np.float32),
             latents_values=values, latents_classes=classes)

    # SVHN: X 32x32x3xN uint8, y N x 1 with 10 for the digit 0.
    svhn = os.path.join(out, "svhn")
    os.makedirs(svhn)
    X = np.zeros((32, 32, 3, 4), np.uint8)
    for h in range(32):
        for w in range(32):
            for c in range(3):
                for k in range(4):
                    X[h, w, c, k] = (h + 2 * w + 50 * c + 9 * k) % 256
    y = np.array([[10], [1], [5], [10]], dtype=np.float64)
    scipy.io.savemat(os.path.join(svhn, "train_32x32.mat"), {"X": X, "y": y})
    open(os.path.join(svhn, "test_32x32.mat"), "wb").write(b"MATLAB 5.0 MAT-file, truncated")


if __name__ == "__main__":
    main()
