"""Geometric operations on RGB uint8 arrays: resize, crop, pad."""

from __future__ import annotations

import numpy as np
from PIL import Image

from imgrec.errors import UsageError

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}
# OpenCV's INTER_LINEAR: 2x2 taps, no antialiasing when shrinking. What the YOLO family's
# letterbox code (YOLOX, YOLOv5/v8) trains and predicts with, and 5-8x faster than PIL's
# antialiased bilinear on a 640x480 -> 416 px letterbox.
CV2_LINEAR = "cv2-linear"
INTERPOLATIONS = (*_RESAMPLE, CV2_LINEAR)


def resample_filter(name: str) -> Image.Resampling:
    """PIL filter for an interpolation name (``cv2-linear``: PIL's bilinear, its nearest kin)."""
    if name == CV2_LINEAR:
        return Image.Resampling.BILINEAR
    try:
        return _RESAMPLE[name]
    except KeyError:
        raise UsageError(f"Unknown interpolation {name!r}; expected one of {', '.join(INTERPOLATIONS)}.") from None


def resize(img: np.ndarray, size: tuple[int, int], interpolation: str = "bilinear") -> np.ndarray:
    """Resize to ``(height, width)`` (antialiased when shrinking, except ``cv2-linear``)."""
    h, w = size
    if img.shape[0] == h and img.shape[1] == w:
        return img
    if interpolation == CV2_LINEAR:
        import cv2

        return np.asarray(cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=cv2.INTER_LINEAR))
    pil = Image.fromarray(img)
    out = pil.resize((w, h), resample_filter(interpolation), reducing_gap=3.0)
    return np.asarray(out)


def resize_shorter(img: np.ndarray, side: int, interpolation: str = "bilinear") -> np.ndarray:
    """Resize so that the shorter side is ``side``, keeping the aspect ratio."""
    h, w = img.shape[:2]
    if min(h, w) == side:
        return img
    scale = side / min(h, w)
    if h <= w:
        new = (side, max(1, round(w * scale)))
    else:
        new = (max(1, round(h * scale)), side)
    return resize(img, new, interpolation)


def center_crop(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Crop the centre ``(height, width)``; pads with black when the image is smaller."""
    h, w = size
    img = pad_to(img, (max(h, img.shape[0]), max(w, img.shape[1])))
    top = (img.shape[0] - h) // 2
    left = (img.shape[1] - w) // 2
    return img[top : top + h, left : left + w]


def pad_to(img: np.ndarray, size: tuple[int, int], value: int = 0) -> np.ndarray:
    """Pad evenly on all sides up to ``(height, width)``."""
    h, w = size
    dh, dw = max(0, h - img.shape[0]), max(0, w - img.shape[1])
    if not dh and not dw:
        return img
    pads = ((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2), (0, 0))
    return np.pad(img, pads, constant_values=value)


def to_gray(img: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma as an ``(H, W)`` uint8 array."""
    if img.ndim == 2:
        return img
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return (img[..., :3].astype(np.float32) @ weights).round().clip(0, 255).astype(np.uint8)
