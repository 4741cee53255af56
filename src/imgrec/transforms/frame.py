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

    def to_original(self, boxes: np.ndarray, *, clip: bool = True) -> np.ndarray:
        """``(K, 4)`` x1, y1, x2, y2 boxes in input pixels -> original pixels, clipped to the image
        (``clip=False``: not clipped, e.g. the frame of a mask predicted over its box)."""
        b = np.asarray(boxes, np.float64).reshape(-1, 4)
        sx, sy = self.scale
        ox, oy = self.offset
        out = (b - np.array([ox, oy, ox, oy])) / np.array([sx, sy, sx, sy])
        w, h = self.original
        return (np.clip(out, 0, [w, h, w, h]) if clip else out).astype(np.float32)

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

    def mask_to_input(self, mask: np.ndarray, fill: int = 255) -> np.ndarray:
        """A full-resolution ``(H, W)`` index mask placed like its image in the ``size x size`` input,
        nearest neighbour (centre to centre); input pixels outside the image (padding) get ``fill``.

        Example:
            >>> g = Geometry(original=(2, 1), scale=(1.0, 1.0), offset=(0.0, 0.0), size=2)
            >>> g.mask_to_input(np.array([[3, 4]], np.uint8)).tolist()
            [[3, 4], [255, 255]]
        """
        h, w = mask.shape[:2]
        if (w, h) != tuple(self.original):
            from imgrec.errors import DataError

            raise DataError(f"The mask is {w}x{h} but its image is {self.original[0]}x{self.original[1]}; "
                            "expected a mask in the image's pixels (imgrec data check lists such masks).")  # fmt: skip
        ix, in_x = _nearest(self.size, self.scale[0], self.offset[0], w)
        iy, in_y = _nearest(self.size, self.scale[1], self.offset[1], h)
        return _gather(mask, iy, ix, in_y, in_x, fill)

    def mask_to_original(self, mask: np.ndarray, fill: int | None = None) -> np.ndarray:
        """A mask predicted over the model input (at input resolution, or any ``(h, w)`` covering
        the whole input) mapped back to the original image's pixels, nearest neighbour.

        ``fill``: the value of original pixels the input did not show (cut off by a centre crop);
        None repeats the nearest input pixel. Costs one output array (H x W) and two index rows.

        Example:
            >>> g = Geometry(original=(4, 2), scale=(0.5, 0.5), offset=(0.0, 1.0), size=2)  # letterboxed
            >>> g.mask_to_original(np.array([[0, 0], [1, 2]], np.uint8)).tolist()
            [[1, 1, 2, 2], [1, 1, 2, 2]]
        """
        h, w = mask.shape[:2]
        rx, ry = w / self.size, h / self.size
        sx, sy = self.scale[0] * rx, self.scale[1] * ry
        ox, oy = self.offset[0] * rx, self.offset[1] * ry
        ow, oh = self.original
        ix, in_x = _nearest(ow, 1 / sx, -ox / sx, w)
        iy, in_y = _nearest(oh, 1 / sy, -oy / sy, h)
        return _gather(mask, iy, ix, in_y, in_x, fill)

    def to_dict(self) -> dict[str, Any]:
        return {"original": list(self.original), "scale": [round(v, 8) for v in self.scale],
                "offset": [round(v, 4) for v in self.offset], "size": self.size}  # fmt: skip


def _nearest(n_out: int, scale: float, offset: float, n_src: int) -> tuple[np.ndarray, np.ndarray]:
    """Source index of each output pixel (``out = src * scale + offset``, centre to centre) and
    whether it falls inside the source."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5 - offset) / scale
    idx = np.floor(pos).astype(np.int64)
    return np.clip(idx, 0, n_src - 1), (idx >= 0) & (idx < n_src)


def _gather(
    src: np.ndarray, iy: np.ndarray, ix: np.ndarray, in_y: np.ndarray, in_x: np.ndarray, fill: int | None
) -> np.ndarray:
    out = src[iy][:, ix]
    if fill is not None and not (in_x.all() and in_y.all()):
        out[~in_y] = fill
        out[:, ~in_x] = fill
    return out


def input_shape(size: int, aspect: float = 1.0) -> tuple[int, int]:
    """``(height, width)`` of a model input of longer side ``size`` and ``aspect`` = width / height.

    Example:
        >>> input_shape(256), input_shape(256, 256 / 144), input_shape(256, 144 / 256)
        ((256, 256), (144, 256), (256, 144))
    """
    if aspect == 1.0:
        return size, size
    if aspect > 1.0:
        return max(1, round(size / aspect)), size
    return size, max(1, round(size * aspect))


def place(
    img: np.ndarray, size: int, mode: str, *, crop_pct: float = 1.0, interpolation: str = "bilinear",
    pad_value: int = 114, anchor: str = "center", aspect: float = 1.0,
) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:  # fmt: skip
    """Resize/crop/pad ``img`` into the model input; returns the array, its scale and offset.

    The input is ``size x size``, or with ``aspect`` (width / height of a file's fixed non-square
    input: MediaPipe's 256 x 144 is 16/9) the file's own shape (:func:`input_shape`), so the image
    is resized once, straight to what the model takes. Scale and offset always refer to the
    ``size x size`` square that input stands for (each axis of a non-square input covers it with
    its own scale), which is what every map and box decoder works in.
    """
    h, w = img.shape[:2]
    th, tw = input_shape(size, aspect)
    if mode == "stretch":
        return resize(img, (th, tw), interpolation), (size / w, size / h), (0.0, 0.0)
    if mode == "letterbox":
        out, scale, offset = _letterbox(img, (th, tw), interpolation, pad_value, anchor)
    else:
        out, scale, offset = _crop(img, (th, tw), crop_pct, interpolation)
    if (th, tw) == (size, size):
        return out, scale, offset
    fx, fy = size / tw, size / th
    return out, (scale[0] * fx, scale[1] * fy), (offset[0] * fx, offset[1] * fy)


def _crop(
    img: np.ndarray, shape: tuple[int, int], crop_pct: float, interpolation: str
) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """Resize the shorter side (relative to ``shape``) to ``shape / crop_pct``, then centre-crop ``shape``."""
    h, w = img.shape[:2]
    th, tw = shape
    if th == tw:
        scaled = resize_shorter(img, max(th, round(th / crop_pct)), interpolation)
    else:
        ratio = max(th / h, tw / w) / crop_pct
        scaled = resize(img, (max(th, round(h * ratio)), max(tw, round(w * ratio))), interpolation)
    nh, nw = scaled.shape[:2]
    offset = (-float((nw - tw) // 2), -float((nh - th) // 2))
    return center_crop(scaled, (th, tw)), (nw / w, nh / h), offset


def _letterbox(
    img: np.ndarray, shape: tuple[int, int], interpolation: str, pad_value: int, anchor: str
) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    h, w = img.shape[:2]
    th, tw = shape
    ratio = min(tw / w, th / h)
    nw, nh = max(1, min(tw, round(w * ratio))), max(1, min(th, round(h * ratio)))
    scaled = resize(img, (nh, nw), interpolation)
    left, top = ((tw - nw) // 2, (th - nh) // 2) if anchor == "center" else (0, 0)
    out = np.full((th, tw, 3), pad_value, np.uint8)
    out[top : top + nh, left : left + nw] = scaled
    return out, (nw / w, nh / h), (float(left), float(top))


def compose(decoded: tuple[int, int], original: tuple[int, int], scale: tuple[float, float],
            offset: tuple[float, float], size: int) -> Geometry:  # fmt: skip
    """The geometry relative to the full-resolution image, for a placement made on a decoded
    copy of ``decoded`` = ``(width, height)`` pixels (smaller when a JPEG was decoded at reduced scale)."""
    rx, ry = decoded[0] / original[0], decoded[1] / original[1]
    return Geometry(original=original, scale=(scale[0] * rx, scale[1] * ry), offset=offset, size=size)
