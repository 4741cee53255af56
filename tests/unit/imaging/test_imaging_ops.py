"""Geometric operations on RGB uint8 arrays."""

from __future__ import annotations

import numpy as np
import pytest

from imgrec.errors import UsageError
from imgrec.imaging import center_crop, pad_to, resize, resize_shorter, to_gray
from imgrec.imaging.ops import resample_filter


def _img(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_resize_and_same_size_passthrough() -> None:
    img = _img(30, 40)
    assert resize(img, (15, 20)).shape == (15, 20, 3)
    assert resize(img, (30, 40)) is img
    flat = np.full((8, 8, 3), 90, np.uint8)
    assert np.all(resize(flat, (3, 5), "lanczos") == 90)


def test_resize_shorter_keeps_aspect() -> None:
    assert resize_shorter(_img(30, 60), 10).shape == (10, 20, 3)
    assert resize_shorter(_img(60, 30), 10).shape == (20, 10, 3)
    assert resize_shorter(_img(1, 500), 4).shape == (4, 2000, 3)


def test_center_crop_and_pad() -> None:
    img = _img(10, 12)
    crop = center_crop(img, (4, 6))
    assert np.array_equal(crop, img[3:7, 3:9])
    padded = center_crop(img, (14, 12))
    assert padded.shape == (14, 12, 3) and np.all(padded[:2] == 0) and np.array_equal(padded[2:12], img)
    out = pad_to(img, (11, 15), value=7)
    assert out.shape == (11, 15, 3) and out[0, 0, 0] == 7 and np.array_equal(out[0:10, 1:13], img)
    assert pad_to(img, (5, 5)) is img


def test_to_gray() -> None:
    img = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    assert to_gray(img).tolist() == [[76, 150, 29, 255]]
    assert to_gray(img[..., 0]) is not None and to_gray(img[..., 0]).shape == (1, 4)


def test_unknown_interpolation() -> None:
    with pytest.raises(UsageError, match="bilinear"):
        resample_filter("cubic-ish")
