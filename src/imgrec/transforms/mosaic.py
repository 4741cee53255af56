"""Mosaic augmentation: four training images tiled around a random centre, with their boxes or masks.

Each chosen image becomes the four quadrants of a ``2S x 2S`` canvas meeting at a random
point (so each image is cropped differently), shrunk back to ``S x S``. One-stage detectors
and segmenters see more objects per step, at more scales and in more contexts. Seeded like
every augmentation.

One :class:`Tile` (which images, where the quadrants meet) drives the pixels and the targets:
boxes move, are clipped to their quadrant and dropped when little of them is left; index
masks are pasted exactly like their pixels (the ignore index where the canvas has no image)
and shrunk by nearest neighbour, so no new class value appears. The centre is even, so with
an even input side (every model's) each shrunk pixel is the mean of a 2 x 2 block of one
image, and its mask value is the class of that block's top-left pixel.

Example:
    >>> import numpy as np
    >>> imgs = np.zeros((4, 32, 32, 3), np.uint8)
    >>> boxes = [np.array([[4.0, 4.0, 20.0, 20.0]])] * 4
    >>> labels = [np.array([k]) for k in range(4)]
    >>> out, b, lab = mosaic(imgs, boxes, labels, np.random.default_rng(0), p=1.0)
    >>> out.shape, len(b), sorted(set(np.concatenate(lab).tolist())) <= [0, 1, 2, 3]
    ((4, 32, 32, 3), 4, True)
    >>> masks = np.zeros((4, 32, 32), np.uint8)
    >>> out, m = mosaic_masks(imgs, masks, np.random.default_rng(0), p=1.0)
    >>> m.shape, set(np.unique(m).tolist()) <= {0, 255}
    ((4, 32, 32), True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

PAD = 114
MIN_SIDE = 2.0  # canvas pixels: smaller pieces of boxes are dropped
Region = tuple[int, int, int, int]  # x1, y1, x2, y2 on the canvas


@dataclass(frozen=True)
class Tile:
    """One mosaic: four batch images around ``centre`` of the ``2S x 2S`` canvas.

    Attributes:
        picks: batch indices of the quadrants: top-left, top-right, bottom-left, bottom-right.
        centre: ``(x, y)`` where the quadrants meet, on the canvas (even numbers).
        size: ``S``, the side of the images (and of the result).
    """

    picks: tuple[int, ...]
    centre: tuple[int, int]
    size: int

    def placements(self) -> list[tuple[int, tuple[int, int], Region]]:
        """Per quadrant: the batch index, where its image's top-left corner lies on the canvas
        (may be outside it), and the canvas region the image covers."""
        s, (xc, yc) = self.size, self.centre
        out = []
        for quadrant, k in enumerate(self.picks):
            x0, y0 = (xc - s if quadrant in (0, 2) else xc), (yc - s if quadrant in (0, 1) else yc)
            region = (max(0, x0), max(0, y0), min(2 * s, x0 + s), min(2 * s, y0 + s))
            out.append((k, (x0, y0), region))
        return out

    def canvas(self, arrays: np.ndarray, fill: int) -> np.ndarray:
        """The ``2S x 2S`` canvas of ``arrays[picks]`` (images or masks, dtype kept); ``fill`` elsewhere."""
        s = self.size
        out = np.full((2 * s, 2 * s, *arrays.shape[3:]), fill, arrays.dtype)
        for k, (x0, y0), (x1, y1, x2, y2) in self.placements():
            out[y1:y2, x1:x2] = arrays[k][y1 - y0 : y2 - y0, x1 - x0 : x2 - x0]
        return out

    def pixels(self, images: np.ndarray) -> np.ndarray:
        """The mosaic image ``(S, S, 3)``: the canvas shrunk by area averaging."""
        return cv2.resize(self.canvas(images, PAD), (self.size, self.size), interpolation=cv2.INTER_AREA)

    def mask(self, masks: np.ndarray, ignore_index: int) -> np.ndarray:
        """The mosaic of index masks ``(S, S)``: placed like :meth:`pixels`, shrunk by nearest neighbour
        (the top-left pixel of each 2 x 2 block), ``ignore_index`` where no image is."""
        return self.canvas(masks, ignore_index)[0::2, 0::2]

    def boxes(self, boxes: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The boxes (``S x S`` pixels) and labels of the mosaic: moved, clipped to their quadrant,
        slivers dropped."""
        all_boxes, all_labels = [], []
        for k, (x0, y0), region in self.placements():
            b = np.asarray(boxes[k], np.float32).reshape(-1, 4) + np.array([x0, y0, x0, y0], np.float32)
            b = np.clip(b, [region[0], region[1]] * 2, [region[2], region[3]] * 2)
            keep = ((b[:, 2] - b[:, 0]) >= MIN_SIDE) & ((b[:, 3] - b[:, 1]) >= MIN_SIDE)
            all_boxes.append(b[keep])
            all_labels.append(np.asarray(labels[k], np.int64)[keep])
        return np.concatenate(all_boxes) / 2.0, np.concatenate(all_labels)


def plan(n: int, size: int, rng: np.random.Generator, p: float) -> list[Tile | None]:
    """Per batch image, the :class:`Tile` that replaces it (probability ``p``), or None."""
    tiles: list[Tile | None] = [None] * n
    if n < 2 or p <= 0:
        return tiles
    for i in range(n):
        if rng.random() >= p:
            continue
        others = rng.choice([j for j in range(n) if j != i], size=3, replace=n < 4)
        xc, yc = (int(v) // 2 * 2 for v in rng.uniform(0.5 * size, 1.5 * size, 2))
        tiles[i] = Tile((i, *(int(j) for j in others)), (xc, yc), size)
    return tiles


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
    out, out_boxes = images.copy(), [np.asarray(b, np.float32) for b in boxes]
    out_labels = [np.asarray(lab, np.int64) for lab in labels]
    for i, tile in enumerate(plan(len(images), images.shape[1], rng, p)):
        if tile is not None:
            out[i] = tile.pixels(images)
            out_boxes[i], out_labels[i] = tile.boxes(boxes, labels)
    return out, out_boxes, out_labels


def mosaic_masks(
    images: np.ndarray, masks: np.ndarray, rng: np.random.Generator, p: float = 0.5, ignore_index: int = 255
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mosaic` for semantic segmentation: the index masks follow their pixels.

    Args:
        images: uint8 ``(B, S, S, 3)``.
        masks: ``(B, S, S)`` index masks placed like their images (uint8 or uint16).
        rng: the run's generator (the same draws as :func:`mosaic` for the same batch size).
        p: probability per image.
        ignore_index: the mask value where a mosaic has no image.
    """
    out, out_masks = images.copy(), np.array(masks, copy=True)
    for i, tile in enumerate(plan(len(images), images.shape[1], rng, p)):
        if tile is not None:
            out[i] = tile.pixels(images)
            out_masks[i] = tile.mask(masks, ignore_index)
    return out, out_masks
