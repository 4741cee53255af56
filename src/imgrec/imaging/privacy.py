"""Hiding regions of an image: a strong blur or a pixelation over each box grown by a margin.

Each region is the box grown by ``margin`` times its width (height) on each side, clipped to
the image; inside it every pixel is replaced, outside it none changes. The blur is a Gaussian
whose sigma is a quarter of the region's shorter side (wide enough that no feature of a face
survives), applied to the region shrunk 4x and scaled back; the pixelation averages blocks
so that the region's longer side holds ``blocks`` of them.

Example:
    >>> img = np.zeros((40, 40, 3), np.uint8); img[10:20, 10:20] = 255
    >>> out = obscure(img, [(10, 10, 20, 20)], margin=0.5)
    >>> bool((out[:5] == img[:5]).all()), bool((out[10:20, 10:20] != 255).any())
    (True, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from imgrec.errors import UsageError

DEFAULT_MARGIN = 0.25
DEFAULT_BLOCKS = 8


def regions(boxes: Sequence[Sequence[float]] | np.ndarray, size: tuple[int, int], margin: float) -> np.ndarray:
    """``(K, 4)`` integer x1, y1, x2, y2 of the boxes grown by ``margin`` (a fraction of their
    width and height on each side), rounded outwards and clipped to ``size`` = (width, height)."""
    if margin < 0:
        raise UsageError(f"margin must be >= 0 (a fraction of the box size); received {margin}.")
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    grow = np.concatenate([-(b[:, 2:] - b[:, :2]), b[:, 2:] - b[:, :2]], axis=1) * margin
    out = np.concatenate([np.floor(b[:, :2] + grow[:, :2]), np.ceil(b[:, 2:] + grow[:, 2:])], axis=1)
    w, h = size
    return np.clip(out, 0, [w, h, w, h]).astype(np.int64)


def obscure(
    image: np.ndarray, boxes: Sequence[Sequence[float]] | np.ndarray, *, margin: float = DEFAULT_MARGIN,
    pixelate: bool = False, blocks: int = DEFAULT_BLOCKS,
) -> np.ndarray:  # fmt: skip
    """A copy of the RGB uint8 ``image`` with every box (grown by ``margin``) blurred or pixelated."""
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise UsageError(f"obscure needs an RGB uint8 (H, W, 3) image; received {img.dtype} {img.shape}.")
    if blocks < 1:
        raise UsageError(f"blocks must be >= 1; received {blocks}.")
    out = img.copy()
    for x1, y1, x2, y2 in regions(boxes, (img.shape[1], img.shape[0]), margin):
        if x2 > x1 and y2 > y1:
            patch = out[y1:y2, x1:x2]
            out[y1:y2, x1:x2] = _pixelate(patch, blocks) if pixelate else _blur(patch)
    return out


def _blur(patch: np.ndarray) -> np.ndarray:
    import cv2

    h, w = patch.shape[:2]
    small = cv2.resize(patch, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    sigma = max(1.0, min(small.shape[:2]) / 4)
    blurred = cv2.GaussianBlur(small, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)
    return np.asarray(cv2.resize(blurred, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)


def _pixelate(patch: np.ndarray, blocks: int) -> np.ndarray:
    import cv2

    h, w = patch.shape[:2]
    k = max(w, h) / blocks
    small = cv2.resize(patch, (max(1, round(w / k)), max(1, round(h / k))), interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST), np.uint8)
