"""Boxes moved with the pixels: the augmentation's 3x3 matrix applied to box corners.

The warp matrices map pixel *centres* (OpenCV's convention: pixel ``(0, 0)`` is centred on
``(0, 0)``); boxes use pixel *edges* (a box over the whole image is ``0, 0, w, h``). So the
corners are shifted by half a pixel, mapped (with the perspective division), shifted back;
the box becomes the min/max of its four corners, clipped to the output image. A box whose
visible part is under ``min_visible`` of its mapped area (or empty) is dropped.
"""

from __future__ import annotations

import numpy as np

MIN_VISIBLE = 0.25


def transform_boxes(
    boxes: np.ndarray, matrix: np.ndarray, size: tuple[int, int], *, min_visible: float = MIN_VISIBLE
) -> tuple[np.ndarray, np.ndarray]:
    """Map ``boxes`` by ``matrix`` into an output image of ``size``.

    Args:
        boxes: ``(K, 4)`` x1, y1, x2, y2 in pixels.
        matrix: the forward ``(3, 3)`` matrix (source pixel centre -> output pixel centre).
        size: ``(width, height)`` of the output image.
        min_visible: smallest fraction of the mapped box that must stay inside the image.

    Returns:
        The kept boxes as float32 ``(M, 4)`` and the bool ``(K,)`` mask of which were kept.

    Example:
        >>> flip = np.array([[-1.0, 0, 9], [0, 1, 0], [0, 0, 1]])  # x -> (w - 1) - x, w = 10
        >>> transform_boxes(np.array([[0.0, 0, 4, 5]]), flip, (10, 10))[0].tolist()
        [[6.0, 0.0, 10.0, 5.0]]
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not len(b):
        return np.zeros((0, 4), np.float32), np.zeros(0, bool)
    corners = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]]], axis=1) - 0.5  # (K, 4, 2)
    ones = np.ones((*corners.shape[:2], 1))
    mapped = np.concatenate([corners, ones], axis=2) @ np.asarray(matrix, np.float64).T
    xy = mapped[..., :2] / np.where(np.abs(mapped[..., 2:]) < 1e-12, 1e-12, mapped[..., 2:]) + 0.5
    out = np.concatenate([xy.min(axis=1), xy.max(axis=1)], axis=1)
    full = _area(out)
    w, h = size
    clipped = np.clip(out, 0, [w, h, w, h])
    visible = _area(clipped)
    keep = (visible > 0) & (visible >= min_visible * np.maximum(full, 1e-12))
    return clipped[keep].astype(np.float32), keep


def _area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def scale_boxes(boxes: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Boxes of an image resized by ``sx`` horizontally and ``sy`` vertically."""
    return (np.asarray(boxes, np.float64).reshape(-1, 4) * [sx, sy, sx, sy]).astype(np.float32)


def outline(img: np.ndarray, boxes: np.ndarray, colour: tuple[int, int, int] = (255, 40, 40)) -> np.ndarray:
    """A copy of ``img`` with ``boxes`` drawn as rectangles (for previews)."""
    from PIL import Image, ImageDraw

    im = Image.fromarray(np.ascontiguousarray(img))
    draw = ImageDraw.Draw(im)
    width = max(1, round(min(img.shape[:2]) / 100))
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4).tolist():
        draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=colour, width=width)
    return np.asarray(im)
