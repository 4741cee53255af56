"""Boxes move with the augmentation's pixels: corners mapped, clipped, mostly-hidden boxes dropped."""

from __future__ import annotations

import numpy as np
import pytest

from imgrec.transforms import create_augmenter
from imgrec.transforms.boxes import outline, transform_boxes


def _white_box_image(box: tuple[int, int, int, int], size: tuple[int, int] = (80, 60)) -> np.ndarray:
    img = np.zeros((size[1], size[0], 3), np.uint8)
    x1, y1, x2, y2 = box
    img[y1:y2, x1:x2] = 255
    return img


def _bbox_of_white(img: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(img[..., 0] > 127)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def test_identity_and_shift() -> None:
    boxes = np.array([[10.0, 5.0, 30.0, 25.0]])
    same, keep = transform_boxes(boxes, np.eye(3), (80, 60))
    assert same.tolist() == boxes.tolist() and keep.tolist() == [True]
    shift = np.array([[1.0, 0, 7], [0, 1, -3], [0, 0, 1]])
    assert transform_boxes(boxes, shift, (80, 60))[0].tolist() == [[17.0, 2.0, 37.0, 22.0]]


def test_clipped_and_dropped() -> None:
    boxes = np.array([[70.0, 10.0, 90.0, 20.0], [0.0, 0.0, 10.0, 10.0], [75.0, 0.0, 100.0, 10.0]])
    out, keep = transform_boxes(boxes, np.eye(3), (80, 60), min_visible=0.3)
    assert keep.tolist() == [True, True, False]  # 50% and 100% visible; 20% visible is dropped
    assert out[0].tolist() == [70.0, 10.0, 80.0, 20.0]
    assert transform_boxes(np.zeros((0, 4)), np.eye(3), (8, 8))[0].shape == (0, 4)


@pytest.mark.parametrize("preset", ["flip", "standard", "strong"])
def test_boxes_follow_the_pixels(preset: str) -> None:
    box = (20, 15, 50, 40)
    batch = np.repeat(_white_box_image(box)[None], 12, axis=0)
    aug = create_augmenter(preset, fill="constant", **({"distort": 0.0} if preset == "strong" else {}))
    images, moved, keep = aug.with_boxes(batch, [np.array([box], np.float64)] * 12, np.random.default_rng(0))
    checked = 0
    for img, b, k in zip(images, moved, keep, strict=True):
        if not k.any() or (img[..., 0] > 127).sum() < 50:
            continue
        if np.abs(np.asarray(img, int) - 128).max() < 100:  # colour jitter hides the box edge
            continue
        x1, y1, x2, y2 = b[0].tolist()
        if min(x1, y1) < 0.5 or x2 > 79.5 or y2 > 59.5:  # clipped turned boxes over-cover (corner min/max)
            continue
        white = _bbox_of_white(img)
        assert np.abs(np.array(white) - b[0]).max() <= 3.0, (preset, white, b[0].tolist())
        checked += 1
    assert checked >= 4


def test_same_seed_same_images_with_or_without_boxes() -> None:
    batch = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    aug = create_augmenter("standard")
    plain = aug(batch, np.random.default_rng(5))
    images, _, _ = aug.with_boxes(batch, [np.array([[1.0, 1, 9, 9]])] * 3, np.random.default_rng(5))
    assert np.array_equal(plain, images)


def test_outline_draws_on_a_copy() -> None:
    img = np.zeros((20, 20, 3), np.uint8)
    out = outline(img, np.array([[2.0, 2, 10, 10]]))
    assert img.max() == 0 and out[2, 5, 0] == 255 and out[5, 5, 0] == 0
