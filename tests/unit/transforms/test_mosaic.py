"""Mosaic augmentation: boxes and masks follow their pixels into the tiled, shrunk image."""

from __future__ import annotations

import numpy as np
import pytest

from imgrec.transforms.mosaic import PAD, mosaic, mosaic_masks


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


def _encoded(n: int = 4, size: int = 16, dtype: type = np.uint8):
    """Images whose every pixel names its source: red = image, green = row, blue = column; random
    class masks (0..3) with a band of the ignore index."""
    ignore = int(np.iinfo(dtype).max)
    ys, xs = np.mgrid[0:size, 0:size]
    images = np.stack([np.stack([np.full_like(ys, 60 * k + 10), 16 * ys, 16 * xs], -1) for k in range(n)])
    masks = np.random.default_rng(5).integers(0, 4, (n, size, size)).astype(dtype)
    masks[:, :3] = ignore  # like a letterbox band
    masks[1, :, -2:] = ignore
    return images.astype(np.uint8), masks, ignore


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_every_mask_pixel_is_the_class_of_the_pixel_it_lands_with(dtype: type) -> None:
    images, masks, ignore = _encoded(dtype=dtype)
    for seed in range(12):
        out, out_masks = mosaic_masks(images, masks, np.random.default_rng(seed), p=1.0, ignore_index=ignore)
        assert out.shape == images.shape and out_masks.shape == masks.shape and out_masks.dtype == masks.dtype
        for i, (img, m) in enumerate(zip(out, out_masks, strict=True)):
            pad = (img == PAD).all(axis=2)
            assert (m[pad] == ignore).all()
            r, g, b = (img[~pad][:, c].astype(int) for c in range(3))
            # each shrunk pixel is the mean of one 2 x 2 block of one image: row and column even
            assert ((r - 10) % 60 == 0).all() and ((g - 8) % 32 == 0).all() and ((b - 8) % 32 == 0).all()
            k, y, x = (r - 10) // 60, (g - 8) // 16, (b - 8) // 16
            np.testing.assert_array_equal(m[~pad], masks[k, y, x])  # the class of the block's top-left pixel
            assert i in set(k.tolist())  # the image itself is one of its four
        assert set(np.unique(out_masks).tolist()) <= set(np.unique(masks).tolist())


def test_masks_take_the_same_mosaic_as_boxes_and_the_same_seed_gives_the_same_one() -> None:
    images, masks, ignore = _encoded()
    boxes, labels = [np.zeros((0, 4), np.float32)] * 4, [np.zeros(0, np.int64)] * 4
    a = mosaic_masks(images, masks, np.random.default_rng(7), p=0.5, ignore_index=ignore)
    b = mosaic_masks(images, masks, np.random.default_rng(7), p=0.5, ignore_index=ignore)
    c = mosaic_masks(images, masks, np.random.default_rng(8), p=1.0, ignore_index=ignore)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and not np.array_equal(a[1], c[1])
    np.testing.assert_array_equal(a[0], mosaic(images, boxes, labels, np.random.default_rng(7), p=0.5)[0])
    same, same_masks = mosaic_masks(images, masks, np.random.default_rng(0), p=0.0)
    assert np.array_equal(same, images) and np.array_equal(same_masks, masks)
