"""Mosaic augmentation for detectors: four training images tiled around a random centre.

Each chosen image becomes the four quadrants of a ``2S x 2S`` canvas meeting at a random
point (so each image is cropped differently), shrunk back to ``S x S``; the boxes move, are
clipped to their quadrant and dropped when little of them is left. One-stage detectors see
more objects per step, at more scales and in more contexts. Seeded like every augmentation.

Example:
    >>> import numpy as np
    >>> imgs = np.zeros((4, 32, 32, 3), np.uint8)
    >>> boxes = [np.array([[4.0, 4.0, 20.0, 20.0]])] * 4
    >>> labels = [np.array([k]) for k in range(4)]
    >>> out, b, lab = mosaic(imgs, boxes, labels, np.random.default_rng(0), p=1.0)
    >>> out.shape, len(b), sorted(set(np.concatenate(lab).tolist())) <= [0, 1, 2, 3]
    ((4, 32, 32, 3), 4, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

PAD = 114
MIN_SIDE = 2.0  # canvas pixels: smaller pieces of boxes are dropped


def mosaic(
    images: np.ndarray, boxes: Sequence[np.ndarray], labels: Sequence[np.ndarray], rng: np.random.Generator,
    p: float = 0.5,
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:  # fmt: skip
    """Replace each image, with probability ``p``, by a mosaic of it and three others of the batch.

    Args:
        images: uint8 ``(B, S, S, 3)``.
        boxes: per image ``(K, 4)`` x1 y1 x2 y2 in pixels.
        labels: per image ``(K,)`` class indices.
        rng: the run's generator.
        p: probability per image.
    """
    n = len(images)
    out, out_boxes, out_labels = images.copy(), [np.asarray(b, np.float32) for b in boxes], list(labels)
    if n < 2 or p <= 0:
        return out, out_boxes, [np.asarray(lab, np.int64) for lab in out_labels]
    for i in range(n):
        if rng.random() >= p:
            continue
        others = rng.choice([j for j in range(n) if j != i], size=3, replace=n < 4)
        picks = [i, *(int(j) for j in others)]
        out[i], out_boxes[i], out_labels[i] = _tile(images, boxes, labels, picks, rng)
    return out, out_boxes, [np.asarray(lab, np.int64) for lab in out_labels]


def _tile(
    images: np.ndarray, boxes: Sequence[np.ndarray], labels: Sequence[np.ndarray], picks: list[int],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    s = images.shape[1]
    xc, yc = (int(v) for v in rng.uniform(0.5 * s, 1.5 * s, 2))
    canvas = np.full((2 * s, 2 * s, 3), PAD, np.uint8)
    all_boxes, all_labels = [], []
    for quadrant, k in enumerate(picks):
        x0, y0 = (xc - s if quadrant in (0, 2) else xc), (yc - s if quadrant in (0, 1) else yc)
        region = (max(0, x0), max(0, y0), min(2 * s, x0 + s), min(2 * s, y0 + s))
        canvas[region[1] : region[3], region[0] : region[2]] = images[k][
            region[1] - y0 : region[3] - y0, region[0] - x0 : region[2] - x0
        ]
        b = np.asarray(boxes[k], np.float32).reshape(-1, 4) + np.array([x0, y0, x0, y0], np.float32)
        b = np.clip(b, [region[0], region[1]] * 2, [region[2], region[3]] * 2)
        keep = ((b[:, 2] - b[:, 0]) >= MIN_SIDE) & ((b[:, 3] - b[:, 1]) >= MIN_SIDE)
        all_boxes.append(b[keep])
        all_labels.append(np.asarray(labels[k], np.int64)[keep])
    small = cv2.resize(canvas, (s, s), interpolation=cv2.INTER_AREA)
    return small, np.concatenate(all_boxes) / 2.0, np.concatenate(all_labels)
