"""Prompts for promptable segmentation: points (foreground / background), a box, a rough mask of
the object, a previous mask's logits.

Coordinates are in the original image's pixels (EXIF orientation applied), like every box imgrec
returns; a rough mask is an ``(H, W)`` array in those pixels. A prompt is checked against the image
before the model sees it: a point or box outside the image, or a mask of another size, is a
:class:`~imgrec.errors.UsageError` naming the image's size.

A rough mask reaches SAM as its mask prompt the way SAM's own previous predictions do
(:func:`mask_logits`): low-resolution logits over the padded square input, not 0/1.

Example:
    >>> parse_point("320,240"), parse_point("100.5, 80:0")
    ((320.0, 240.0, 1), (100.5, 80.0, 0))
    >>> parse_box("10,10,200,300")
    (10.0, 10.0, 200.0, 300.0)
    >>> Prompt(points=((5, 5, 1),), box=(0, 0, 10, 10)).check((20, 20))
    >>> try:
    ...     Prompt(points=((30, 5, 1),)).check((20, 20))
    ... except UsageError as exc:
    ...     print(str(exc)[:41])
    Point (30, 5) is outside the 20x20 image;
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgrec.errors import UsageError
from imgrec.transforms.frame import Geometry

OUTSIDE = "prompt_outside_image"  # the error code of a point or box that does not fit its image
MASK_SIZE = "mask_size_mismatch"  # the error code of a mask prompt of another size than its image
MISFITS = (OUTSIDE, MASK_SIZE)  # prompts that do not fit their image (the CLI's exit code 2)
MASK_EPS = 1e-6  # a low-resolution cell wholly inside the rough mask gets logit(1 - eps) = +13.8


@dataclass(frozen=True)
class Prompt:
    """What to segment in one image: one object, one mask (or several candidates with ``multimask``).

    Attributes:
        points: ``(x, y, label)`` triples, label 1 = on the object, 0 = background.
        box: ``(x1, y1, x2, y2)`` around the object.
        mask: low-resolution logits of a previous prediction (``SamSegmenter.logits[k]``) to refine.
        region: a rough mask of the object, ``(H, W)`` bool in the image's pixels (True = the
            object); the model gets its :func:`mask_logits`.
        label: the name given to the resulting instance (a detector's class for its boxes).
        class_id: its class index.
        extra: kept with the instance (in its JSON), e.g. the detector's score.
    """

    points: tuple[tuple[float, float, int], ...] = ()
    box: tuple[float, float, float, float] | None = None
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)
    region: np.ndarray | None = field(default=None, repr=False, compare=False)
    label: str = "object"
    class_id: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def check(self, size: tuple[int, int]) -> None:
        """Refuse an empty prompt, points or boxes outside a ``(width, height)`` image, and a rough
        mask of another size."""
        w, h = size
        if not self.points and self.box is None and self.mask is None and self.region is None:
            raise UsageError("A prompt needs at least one point, a box or a mask; received none.")
        if self.mask is not None and self.region is not None:
            raise UsageError("A prompt takes a rough mask (mask=, in the image's pixels) or a previous prediction's "
                             "logits (mask_input=), not both.")  # fmt: skip
        if self.region is not None and self.region.shape != (h, w):
            rh, rw = (*self.region.shape, 0, 0)[:2]
            raise UsageError(f"The mask is {rw}x{rh} but the image is {w}x{h}; a mask prompt is in the image's own "
                             f"pixels: give a {w}x{h} mask (nonzero = the object).", code=MASK_SIZE)  # fmt: skip
        for x, y, lab in self.points:
            if not (0 <= x <= w and 0 <= y <= h):
                raise UsageError(f"Point ({_n(x)}, {_n(y)}) is outside the {w}x{h} image; points are x,y in the "
                                 f"image's pixels (0..{w}, 0..{h}).", code=OUTSIDE)  # fmt: skip
            if lab not in (0, 1):
                raise UsageError(f"A point's label is 1 (object) or 0 (background); received {lab}.")
        if self.box is not None:
            check_box(self.box, size)

    @property
    def signature(self) -> tuple[int, bool, bool]:
        """Prompts with the same signature are decoded together in one batch."""
        return len(self.points), self.box is not None, self.mask is not None or self.region is not None


def mask_logits(region: np.ndarray, geometry: Geometry, side: int) -> np.ndarray:
    """SAM's mask prompt for a rough mask: ``(side, side)`` float32 logits over the padded input.

    SAM's mask input is a previous prediction's low-resolution logits (``SamPredictor.predict``'s
    ``mask_input``): ``side = input / 4`` cells over the square input, the image resized so its
    long side fills it and padded bottom-right (``Sam.postprocess_masks`` undoes exactly that).
    The mask takes the same way: placed in the input by the image's geometry (nearest, padding
    outside the object), then each cell gets the logit of the share of its input pixels inside
    the object, clipped to ``[MASK_EPS, 1 - MASK_EPS]``: about +-13.8 inside and outside (the scale
    of a confident SAM prediction), in between along the edge. Not 0/1: a binary map is not
    what the mask encoder was trained on.

    Args:
        region: ``(H, W)`` bool, the object in the original image's pixels.
        geometry: the image's placement in SAM's input (:attr:`SamImage.geometry`).
        side: the low-resolution side (256 for a 1024 input).

    Example:
        >>> g = Geometry(original=(8, 4), scale=(1.0, 1.0), offset=(0.0, 0.0), size=8)
        >>> r = np.zeros((4, 8), bool); r[:, 4:] = True; r[:2, 2:4] = True  # a quarter of the left cell
        >>> np.round(mask_logits(r, g, 2).astype(float), 1).tolist()  # the bottom row is padding
        [[-1.1, 13.8], [-13.8, -13.8]]
    """
    if geometry.size % side:
        raise UsageError(f"SAM's mask input side {side} must divide its input side {geometry.size}.")
    frame = geometry.mask_to_input(np.asarray(region, bool), fill=0)
    f = geometry.size // side
    share = frame.reshape(side, f, side, f).sum(axis=(1, 3), dtype=np.float64) / (f * f)
    inside, outside = np.maximum(share, MASK_EPS), np.maximum(1.0 - share, MASK_EPS)  # symmetric: +-13.8155
    return (np.log(inside) - np.log(outside)).astype(np.float32)


def check_box(box: tuple[float, float, float, float], size: tuple[int, int]) -> None:
    """A box must have x1 < x2, y1 < y2 and lie inside the ``(width, height)`` image."""
    x1, y1, x2, y2 = box
    w, h = size
    if not (x1 < x2 and y1 < y2):
        raise UsageError(f"Box {_box(box)} is empty or inverted; expected x1,y1,x2,y2 with x1 < x2 and y1 < y2.")
    if x1 < 0 or y1 < 0 or x2 > w or y2 > h:
        raise UsageError(f"Box {_box(box)} is outside the {w}x{h} image; boxes are x1,y1,x2,y2 in the image's "
                         f"pixels (0..{w}, 0..{h}).", code=OUTSIDE)  # fmt: skip


def parse_point(text: str) -> tuple[float, float, int]:
    """``"x,y"`` (on the object) or ``"x,y:0"`` (background) / ``"x,y:1"``."""
    body, _, lab = text.strip().partition(":")
    values = _numbers(body, 2, text, "a point is x,y or x,y:0 (background), e.g. 320,240")
    if lab.strip() not in ("", "0", "1"):
        raise UsageError(f"Cannot read the point {text!r}: its label after ':' must be 1 (object) or 0 (background).")
    return values[0], values[1], int(lab) if lab.strip() else 1


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"x1,y1,x2,y2"`` in pixels."""
    x1, y1, x2, y2 = _numbers(text, 4, text, "a box is x1,y1,x2,y2 in pixels, e.g. 10,10,200,300")
    if not (x1 < x2 and y1 < y2):
        raise UsageError(f"The box {text!r} is empty or inverted; expected x1,y1,x2,y2 with x1 < x2 and y1 < y2.")
    return x1, y1, x2, y2


def _numbers(body: str, n: int, text: str, hint: str) -> list[float]:
    parts = [p.strip() for p in body.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != n or not all(math.isfinite(v) for v in values):
        raise UsageError(f"Cannot read {text!r}: {hint}.")
    return values


def make_prompts(
    points: Any = None, labels: Any = None, box: Any = None, boxes: Any = None, mask: Any = None,
    region: Any = None,
) -> list[Prompt]:  # fmt: skip
    """The prompts of :meth:`SamSegmenter.predict`'s arguments: points (with a box and/or a mask)
    are one prompt; ``boxes`` are one prompt each. ``mask``: a previous prediction's logits;
    ``region``: a rough mask in the image's pixels (nonzero = the object)."""
    pts = _points(points, labels)
    if boxes is not None:
        if pts or box is not None or mask is not None or region is not None:
            raise UsageError("boxes= makes one prompt per box; give points, box and a mask (mask= or mask_input=) "
                             "for a single prompt instead (or make Prompt objects and call segment()).")  # fmt: skip
        arr = np.asarray(boxes, np.float64).reshape(-1, 4)
        return [Prompt(box=_as_box(b)) for b in arr]
    m = None if mask is None else np.asarray(mask, np.float32)
    return [Prompt(points=pts, box=None if box is None else _as_box(box), mask=m, region=as_region(region))]


def as_region(mask: Any) -> np.ndarray | None:
    """A rough mask as ``(H, W)`` bool (nonzero = the object; an RGB mask: any channel), or None."""
    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = np.asarray(arr[..., :3].any(axis=2))
    if arr.ndim != 2 or arr.size == 0:
        raise UsageError(f"A mask prompt is an (H, W) array in the image's pixels (nonzero = the object); "
                         f"received shape {arr.shape}.")  # fmt: skip
    return np.asarray(arr != 0)


def _points(points: Any, labels: Any) -> tuple[tuple[float, float, int], ...]:
    if points is None:
        if labels is not None:
            raise UsageError("labels= goes with points=; received labels without points.")
        return ()
    xy = np.asarray(points, np.float64)
    if xy.ndim == 1:
        xy = xy.reshape(1, -1)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise UsageError(f"points= takes (x, y) pairs; received an array of shape {np.shape(points)}.")
    lab = np.ones(len(xy), np.int64) if labels is None else np.asarray(labels, np.int64).reshape(-1)
    if len(lab) != len(xy):
        raise UsageError(f"labels= needs one label per point; received {len(lab)} labels for {len(xy)} points.")
    return tuple((float(x), float(y), int(v)) for (x, y), v in zip(xy, lab, strict=True))


def _as_box(b: Any) -> tuple[float, float, float, float]:
    v = np.asarray(b, np.float64).reshape(-1)
    if v.size != 4:
        raise UsageError(f"A box is x1, y1, x2, y2; received {v.size} numbers.")
    return float(v[0]), float(v[1]), float(v[2]), float(v[3])


def _n(v: float) -> str:
    return f"{v:g}"


def _box(b: tuple[float, float, float, float]) -> str:
    return ",".join(_n(v) for v in b)
