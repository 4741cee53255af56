"""Where an image lands in the model input, and back: the geometry record of preprocessing.

Every resize mode places the image by a scale and an offset per axis (``input = original *
scale + offset``): a centre crop has a negative offset, a letterbox a positive one, a stretch
none. The record is kept per image, so boxes (and later masks) found in the model input map
back to the original image's pixels exactly, whatever scale a JPEG was decoded at.

Example:
    >>> g = Geometry(original=(200, 100), scale=(0.32, 0.32), offset=(0.0, 16.0), size=64)
    >>> g.to_original(np.array([[0.0, 16.0, 64.0, 48.0]])).tolist()
    [[0.0, 0.0, 200.0, 100.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from imgrec.imaging.ops import center_crop, resize, resize_shorter

RESIZE_MODES = ("crop", "letterbox", "stretch")
PAD_ANCHORS = ("center", "topleft")


@dataclass(frozen=True)
class Geometry:
    """The placement of one image in a square model input of side ``size``.

    Attributes:
        original: ``(width, height)`` of the full-resolution image (EXIF orientation applied).
        scale: input pixels per original pixel, ``(x, y)``.
        offset: input position of the original's top-left corner, ``(x, y)``.
        size: the model input side.
    """

    original: tuple[int, int]
    scale: tuple[float, float]
    offset: tuple[float, float]
    size: int

    def to_original(self, boxes: np.ndarray) -> np.ndarray:
        """``(K, 4)`` x1, y1, x2, y2 boxes in input pixels -> original pixels, clipped to the image."""
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        sx, sy = self.scale
        ox, oy = self.offset
        out = (b - np.array([ox, oy, ox, oy])) / np.array([sx, sy, sx, sy])
        w, h = self.original
        return np.clip(out, 0, [w, h, w, h]).astype(np.float32)

    def points_to_original(self, points: np.ndarray) -> np.ndarray:
        """``(..., 2)`` x, y points in input pixels -> original pixels, clipped to the image
        (the same mapping as :meth:`to_original`, for landmarks)."""
        p = np.asarray(points, np.float64)
        out = (p - np.array(self.offset)) / np.array(self.scale)
        return np.clip(out, 0, list(self.original)).astype(np.float32)

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """Original-pixel boxes -> input pixels (not clipped)."""
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        sx, sy = self.scale
        ox, oy = self.offset
        return (b * np.array([sx, sy, sx, sy]) + np.array([ox, oy, ox, oy])).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"original": list(self.original), "scale": [round(v, 8) for v in self.scale],
                "offset": [round(v, 4) for v in self.offset], "size": self.size}  # fmt: skip


def place(
    img: np.ndarray, size: int, mode: str, *, crop_pct: float = 1.0, interpolation: str = "bilinear",
    pad_value: int = 114, anchor: str = "center",
) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:  # fmt: skip
    """Resize/crop/pad ``img`` into ``size x size``; returns the array, its scale and offset."""
    h, w = img.shape[:2]
    if mode == "stretch":
        return resize(img, (size, size), interpolation), (size / w, size / h), (0.0, 0.0)
    if mode == "letterbox":
        return _letterbox(img, size, interpolation, pad_value, anchor)
    side = max(size, round(size / crop_pct))
    scaled = resize_shorter(img, side, interpolation)
    nh, nw = scaled.shape[:2]
    offset = (-float((nw - size) // 2), -float((nh - size) // 2))
    return center_crop(scaled, (size, size)), (nw / w, nh / h), offset


def _letterbox(
    img: np.ndarray, size: int, interpolation: str, pad_value: int, anchor: str
) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    h, w = img.shape[:2]
    ratio = min(size / w, size / h)
    nw, nh = max(1, min(size, round(w * ratio))), max(1, min(size, round(h * ratio)))
    scaled = resize(img, (nh, nw), interpolation)
    left, top = ((size - nw) // 2, (size - nh) // 2) if anchor == "center" else (0, 0)
    out = np.full((size, size, 3), pad_value, np.uint8)
    out[top : top + nh, left : left + nw] = scaled
    return out, (nw / w, nh / h), (float(left), float(top))


def compose(decoded: tuple[int, int], original: tuple[int, int], scale: tuple[float, float],
            offset: tuple[float, float], size: int) -> Geometry:  # fmt: skip
    """The geometry relative to the full-resolution image, for a placement made on a decoded
    copy of ``decoded`` = ``(width, height)`` pixels (smaller when a JPEG was decoded at reduced scale)."""
    rx, ry = decoded[0] / original[0], decoded[1] / original[1]
    return Geometry(original=original, scale=(scale[0] * rx, scale[1] * ry), offset=offset, size=size)
