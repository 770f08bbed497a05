"""TensorBoard's own reader reads the event files our C++ writer produces.

Usage: tensorboard_reader_test.py FIXTURE_BINARY TMPDIR
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

from tensorboard.backend.event_processing import event_accumulator


def check_histograms(acc):
    """Histograms against numpy's of the same values."""
    values = np.array([0.0, 0.0, 0.0, 1.0, 5.0, 9.0])
    (event,) = acc.Histograms("energies/pos")
    h = event.histogram_value
    assert event.step == 3 and (h.min, h.max, h.num) == (0.0, 9.0, 6.0), h
    assert np.isclose(h.sum, values.sum()) and np.isclose(h.sum_squares, (values ** 2).sum()), h
    counts, edges = np.histogram(values, bins=5, range=(0.0, 9.0))
    assert list(h.bucket) == counts.tolist(), (h.bucket, counts)
    assert np.allclose(h.bucket_limit, edges[1:]), (h.bucket_limit, edges)
    (const,) = acc.Histograms("energies/neg")
    c = const.histogram_value
    assert (c.min, c.max, c.num, list(c.bucket)) == (2.5, 2.5, 4.0, [4.0]), c


def main():
    fixture = sys.argv[1]
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([fixture, d], check=True, capture_output=True, text=True)
        path = out.stdout.strip()
        assert os.path.basename(path).startswith("events.out.tfevents."), path
        acc = event_accumulator.EventAccumulator(d, size_guidance={"images": 0, "scalars": 0,
                                                                 "histograms": 0})
        acc.Reload()
        tags = acc.Tags()
        assert set(tags["scalars"]) == {"train/loss", "train/e_pos"}, tags
        loss = acc.Scalars("train/loss")
        assert [e.step for e in loss] == [0, 1, 2, 3, 4], loss
        assert [e.value for e in loss] == [0.0, 0.5, 1.0, 1.5, 2.0], loss
        assert [e.value for e in acc.Scalars("train/e_pos")] == [-1.0, -2.0, -3.0, -4.0, -5.0]
        images = acc.Images("samples/buffer")
        assert len(images) == 1 and images[0].step == 7, images
        assert (images[0].height, images[0].width) == (12, 16), images[0]
        assert images[0].encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"
        check_histograms(acc)
        # A flipped byte in a record must be noticed by TensorBoard's reader, not read as data.
        data = bytearray(open(path, "rb").read())
        data[data.rfind(b"train/loss")] ^= 0xFF  # inside the last loss record
        bad_dir = os.path.join(d, "bad")
        os.makedirs(bad_dir)
        open(os.path.join(bad_dir, os.path.basename(path)), "wb").write(bytes(data))
        bad = event_accumulator.EventAccumulator(bad_dir, size_guidance={"images": 0, "scalars": 0})
        try:
            bad.Reload()
            n_bad = len(bad.Scalars("train/loss")) if "train/loss" in bad.Tags()["scalars"] else 0
        except Exception:  # DataLossError and friends
            n_bad = -1
        assert n_bad < 5, "corruption went unnoticed"
    print("tensorboard read our events: 2 scalar series, 1 image, 2 histograms, corruption "
          "detected")


if __name__ == "__main__":
    main()
