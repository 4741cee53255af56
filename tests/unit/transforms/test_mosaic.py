"""Mosaic augmentation: boxes follow their pixels into the tiled, shrunk image."""

from __future__ import annotations

import numpy as np

from imgrec.transforms.mosaic import mosaic


def _scene(n: int = 4, size: int = 64):
    """Per image one filled square of a colour that names its class; labels = class."""
    rng = np.random.default_rng(3)
    images = np.zeros((n, size, size, 3), np.uint8)
    boxes, labels = [], []
    for i in range(n):
        x, y = (int(v) for v in rng.integers(0, size - 24, 2))
        images[i, y : y + 24, x : x + 24] = (60 * (i + 1), 255 - 50 * i, 40)
        boxes.append(np.array([[x, y, x + 24, y + 24]], np.float32))
        labels.append(np.array([i]))
    return images, boxes, labels


def test_every_box_lands_on_its_own_colour():
    images, boxes, labels = _scene()
    colours = {i: np.array((60 * (i + 1), 255 - 50 * i, 40)) for i in range(4)}
    for seed in range(10):
        out, out_boxes, out_labels = mosaic(images, boxes, labels, np.random.default_rng(seed), p=1.0)
        assert out.shape == images.shape
        for img, bs, ls in zip(out, out_boxes, out_labels, strict=True):
            assert len(bs) == len(ls) >= 1
            for (x1, y1, x2, y2), lab in zip(bs, ls, strict=True):
                patch = img[int(np.ceil(y1)) : int(y2), int(np.ceil(x1)) : int(x2)].reshape(-1, 3).astype(int)
                if len(patch) >= 4:  # the inside of the box is (mostly) its object's colour
                    close = (np.abs(patch - colours[int(lab)]).sum(axis=1) < 40).mean()
                    assert close > 0.7, (seed, lab, close)


def test_p_zero_and_a_single_image_leave_the_batch_alone():
    images, boxes, labels = _scene()
    out, b, _ = mosaic(images, boxes, labels, np.random.default_rng(0), p=0.0)
    assert np.array_equal(out, images) and all(np.array_equal(x, y) for x, y in zip(b, boxes, strict=True))
    out, b, _ = mosaic(images[:1], boxes[:1], labels[:1], np.random.default_rng(0), p=1.0)
    assert np.array_equal(out, images[:1])


def test_the_same_seed_gives_the_same_mosaic():
    images, boxes, labels = _scene()
    a = mosaic(images, boxes, labels, np.random.default_rng(7), p=0.5)
    b = mosaic(images, boxes, labels, np.random.default_rng(7), p=0.5)
    assert np.array_equal(a[0], b[0]) and all(np.array_equal(x, y) for x, y in zip(a[1], b[1], strict=True))
