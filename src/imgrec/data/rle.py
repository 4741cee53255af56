"""Object masks kept compact: COCO polygons and run-length encodings, checked before pycocotools sees them.

A :class:`Segment` is one object's mask as the annotation gave it: polygons (float
coordinates, tiny) or a compressed RLE string (pycocotools' format, a few bytes per run).
Nothing is rasterized until asked (:meth:`Segment.decode`), so a dataset of 12-megapixel
images costs kilobytes per object, not megabytes.

pycocotools' C code trusts its input: an RLE whose runs add up to more than height x width
writes past its buffer, and a polygon with far-away vertices allocates memory in proportion to
its perimeter; it counts pixels in 32 bits, so an image of 2**32 pixels or more wraps around.
So every segment is checked here first (:func:`parse_segmentation`): an image of fewer than
2**32 pixels, counts non-negative and summing to exactly ``height * width``, at most
``RLE_LIMITS.max_rle_chars`` characters, at most ``max_polygon_coords`` coordinates, finite
coordinates, and a perimeter of at most ``max_perimeter_factor`` x (height + width) pixels.

Example:
    >>> seg = parse_segmentation([[1, 1, 4, 1, 4, 3, 1, 3]], (4, 5))
    >>> seg.decode().astype(int).tolist()
    [[0, 0, 0, 0, 0], [0, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0, 0, 0, 0, 0]]
    >>> seg.area(), parse_segmentation({"counts": [6, 2, 2, 2, 8], "size": [4, 5]}, (4, 5)).area()
    (6, 4)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imgrec.data.boxes import MAX_COORD


@dataclass(frozen=True)
class RleLimits:
    """Limits on one object's segmentation (hostile files must not exhaust memory or crash the C code).

    Attributes:
        max_rle_chars: characters of one compressed RLE string (or entries of uncompressed counts).
        max_polygon_coords: coordinates (x and y each count) over all polygons of one object.
        max_perimeter_factor: a polygon's perimeter, in pixels, may be at most this times
            (height + width) of its image.
    """

    max_rle_chars: int = 16 * 1024 * 1024
    max_polygon_coords: int = 2_000_000
    max_perimeter_factor: float = 200.0


RLE_LIMITS = RleLimits()


class SegmentError(ValueError):
    """A segmentation that cannot be used (the reader turns it into a ``bad_segment`` issue)."""


@dataclass(frozen=True)
class Segment:
    """One object's mask, compact: polygons or a compressed RLE, for an image of ``size``.

    Attributes:
        size: ``(height, width)`` of the image the mask covers (pycocotools' order).
        polygons: float64 ``(2N,)`` x, y, x, y, ... arrays (their union is the mask).
        counts: a compressed RLE string (pycocotools' ``counts`` bytes), when not polygons.
    """

    size: tuple[int, int]
    polygons: tuple[np.ndarray, ...] = ()
    counts: bytes | None = None

    @property
    def kind(self) -> str:
        """``"polygon"`` or ``"rle"``."""
        return "rle" if self.counts is not None else "polygon"

    def rle(self) -> dict[str, Any]:
        """The mask as one compressed pycocotools RLE (``{"size": [h, w], "counts": bytes}``)."""
        if self.counts is not None:
            return {"size": list(self.size), "counts": self.counts}
        from pycocotools import mask as mask_utils

        h, w = self.size
        if not self.polygons:
            return encode_rle(np.zeros((h, w), bool))
        rles = mask_utils.frPyObjects([p.tolist() for p in self.polygons], h, w)
        merged: dict[str, Any] = mask_utils.merge(rles)
        return merged

    def decode(self) -> np.ndarray:
        """The bool ``(height, width)`` mask (the only step that costs a pixel per pixel)."""
        from pycocotools import mask as mask_utils

        with warnings.catch_warnings():  # pycocotools 2.0 under numpy 2: a copy= DeprecationWarning
            warnings.simplefilter("ignore", DeprecationWarning)
            return np.ascontiguousarray(mask_utils.decode(self.rle()), dtype=bool)

    def area(self) -> int:
        """Pixels in the mask."""
        from pycocotools import mask as mask_utils

        return int(mask_utils.area(self.rle()))

    def bbox(self) -> tuple[float, float, float, float]:
        """x1, y1, x2, y2 of the mask's pixels (zeros for an empty mask)."""
        from pycocotools import mask as mask_utils

        x, y, w, h = (float(v) for v in mask_utils.toBbox(self.rle()))
        return x, y, x + w, y + h

    def to_json(self) -> list[list[float]] | dict[str, Any]:
        """The COCO ``segmentation`` value: polygon lists, or ``{"size", "counts": str}``."""
        if self.counts is None:
            return [p.tolist() for p in self.polygons]  # exact: the floats read back unchanged
        return {"size": list(self.size), "counts": self.counts.decode("ascii")}


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """A bool/0-1 ``(H, W)`` mask as a compressed pycocotools RLE.

    Example:
        >>> encode_rle(np.eye(3, dtype=bool))["counts"]  # runs 0 1 3 1 3 1, stored as differences
        b'013000'
    """
    from pycocotools import mask as mask_utils

    rle: dict[str, Any] = mask_utils.encode(np.asfortranarray(np.asarray(mask).astype(np.uint8)))
    return rle


def encode_rle_region(region: np.ndarray, offset: tuple[int, int], size: tuple[int, int]) -> dict[str, Any]:
    """The compressed RLE of a ``size`` = ``(W, H)`` mask that is False outside ``region``, whose
    top-left pixel is at ``offset`` = ``(x, y)``: the bytes :func:`encode_rle` gives for the whole
    mask, at the cost of the region's columns (``H x`` its width) instead of ``H x W``.

    Example:
        >>> full = np.zeros((4, 6), bool); full[1:3, 2:4] = True
        >>> encode_rle_region(full[1:3, 2:4], (2, 1), (6, 4)) == encode_rle(full)
        True
    """
    from pycocotools import mask as mask_utils

    w, h = size
    x0, y0 = offset
    rh, rw = region.shape[:2]
    if min(x0, y0) < 0 or x0 + rw > w or y0 + rh > h:
        raise ValueError(f"region {rw}x{rh} at {offset} does not fit a {w}x{h} mask")
    cols = np.zeros((h, rw), np.uint8)
    cols[y0 : y0 + rh] = region
    seq = cols.ravel(order="F")
    edges = np.flatnonzero(seq[1:] != seq[:-1]) + 1
    runs = np.diff(np.concatenate([[0], edges, [len(seq)]])).astype(np.int64)
    if len(seq) and seq[0]:
        runs = np.concatenate([[0], runs])  # an RLE starts with a run of zeros
    runs[0] += x0 * h
    after = (w - x0 - rw) * h
    if len(seq) and seq[-1]:  # the mask ends in the region: the zeros after it are a run of their own
        runs = np.concatenate([runs, [after]]) if after else runs
    else:
        runs[-1] += after
    rle: dict[str, Any] = mask_utils.frPyObjects({"size": [h, w], "counts": runs.tolist()}, h, w)
    return rle


def rle_segment(rle: dict[str, Any]) -> Segment:
    """A :class:`Segment` holding an already compressed RLE (``counts`` bytes or str)."""
    counts = rle["counts"]
    h, w = (int(v) for v in rle["size"])
    return Segment((h, w), counts=counts.encode("ascii") if isinstance(counts, str) else bytes(counts))


def parse_segmentation(value: Any, size: tuple[int, int], limits: RleLimits | None = None) -> Segment:
    """A COCO ``segmentation`` value (polygons, uncompressed or compressed RLE) as a checked Segment.

    Args:
        value: the annotation's ``segmentation``.
        size: ``(height, width)`` of its image.
        limits: size limits (default :data:`RLE_LIMITS`).

    Raises:
        SegmentError: not usable; the message says what was expected and received.
    """
    lim = limits or RLE_LIMITS
    check_size(*size)
    if isinstance(value, list):
        return _polygons(value, size, lim)
    if isinstance(value, dict):
        return _rle(value, size, lim)
    raise SegmentError(f"expected polygons [[x, y, ...], ...] or an RLE {{size, counts}}; received {value!r:.60}")


def _polygons(value: list[Any], size: tuple[int, int], lim: RleLimits) -> Segment:
    if not value:
        raise SegmentError("the segmentation is an empty list (no polygon)")
    total = sum(len(p) if isinstance(p, list) else 0 for p in value)
    if total > lim.max_polygon_coords:
        raise SegmentError(f"{total} polygon coordinates; the limit is {lim.max_polygon_coords}")
    polys = []
    perimeter = 0.0
    for p in value:
        arr = _polygon(p)
        perimeter += _perimeter(arr)
        polys.append(arr)
    h, w = size
    if perimeter > lim.max_perimeter_factor * (h + w):
        raise SegmentError(
            f"the polygons are {perimeter:.0f} px long around, implausible for a {w}x{h} image "
            f"(limit {lim.max_perimeter_factor:g} x (width + height))"
        )
    return Segment(size, polygons=tuple(polys))


def _polygon(p: Any) -> np.ndarray:
    if not isinstance(p, list) or len(p) < 6 or len(p) % 2:
        got = f"{len(p)} numbers" if isinstance(p, list) else type(p).__name__
        raise SegmentError(f"a polygon needs an even count of at least 6 numbers (3 points); received {got}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in p):
        raise SegmentError("polygon coordinates must be numbers")
    arr = np.asarray(p, np.float64)
    if not np.isfinite(arr).all() or np.abs(arr).max() > MAX_COORD:
        raise SegmentError(f"polygon coordinates must be finite and within {MAX_COORD:g}")
    return arr


def _perimeter(poly: np.ndarray) -> float:
    xy = poly.reshape(-1, 2)
    d = np.abs(np.diff(np.concatenate([xy, xy[:1]]), axis=0))
    return float(np.maximum(d[:, 0], d[:, 1]).sum())


def _rle(value: dict[str, Any], size: tuple[int, int], lim: RleLimits) -> Segment:
    stated = value.get("size")
    if not (isinstance(stated, list) and len(stated) == 2 and all(_is_int(v) for v in stated)):
        raise SegmentError(f"an RLE needs 'size': [height, width]; received {stated!r:.40}")
    h, w = int(stated[0]), int(stated[1])
    if (h, w) != tuple(size):
        raise SegmentError(f"the RLE is {w}x{h} but its image is {size[1]}x{size[0]}")
    counts = value.get("counts")
    if isinstance(counts, list):
        return _uncompressed(counts, h, w, lim)
    if isinstance(counts, str):
        if len(counts) > lim.max_rle_chars:
            raise SegmentError(f"the RLE string has {len(counts)} characters; the limit is {lim.max_rle_chars}")
        raw = counts.encode("ascii", errors="replace")
        check_counts(string_counts(raw), h, w)
        return Segment((h, w), counts=raw)
    raise SegmentError(f"RLE 'counts' must be a list of integers or a string; received {type(counts).__name__}")


def _uncompressed(counts: list[Any], h: int, w: int, lim: RleLimits) -> Segment:
    if len(counts) > lim.max_rle_chars:
        raise SegmentError(f"the RLE has {len(counts)} runs; the limit is {lim.max_rle_chars}")
    if not all(_is_int(v) for v in counts):
        raise SegmentError("uncompressed RLE counts must be integers")
    arr = np.asarray(counts, np.int64) if counts else np.zeros(0, np.int64)
    check_counts(arr, h, w)
    from pycocotools import mask as mask_utils

    rle = mask_utils.frPyObjects({"counts": arr.tolist(), "size": [h, w]}, h, w)
    return Segment((h, w), counts=bytes(rle["counts"]))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**62


MAX_RLE_PIXELS = 2**32 - 1  # pycocotools' run lengths are 32-bit unsigned integers


def check_size(h: int, w: int) -> None:
    """An image pycocotools can encode: ``h``, ``w`` > 0 and fewer than 2**32 pixels (its runs are
    32-bit; beyond, they wrap around and its C code writes past its buffers)."""
    if h <= 0 or w <= 0 or h * w > MAX_RLE_PIXELS:
        raise SegmentError(f"an image of {w}x{h} cannot hold a mask; expected sides > 0 and at most "
                           f"{MAX_RLE_PIXELS} pixels (pycocotools' 32-bit runs)")  # fmt: skip


def check_counts(counts: np.ndarray, h: int, w: int) -> None:
    """Runs must be non-negative and cover exactly ``h * w`` pixels (pycocotools does not check)."""
    check_size(h, w)
    if len(counts) and int(counts.min()) < 0:
        raise SegmentError("the RLE holds negative run lengths")
    total = int(counts.sum()) if len(counts) else 0
    if total != h * w:
        raise SegmentError(f"the RLE runs cover {total} pixels; a {w}x{h} image has {h * w}")


def string_counts(s: bytes) -> np.ndarray:
    """Decode pycocotools' compressed ``counts`` string to run lengths (vectorized; bad input raises).

    Each run is a little-endian sequence of 5-bit groups in ASCII 48..111 (bit 0x20: more
    groups follow; bit 0x10 of the last: negative), stored as the difference to the run two
    places before (from the fourth run on).

    Example:
        >>> string_counts(b"52207").tolist()
        [5, 2, 2, 2, 9]
    """
    c = np.frombuffer(s, np.uint8).astype(np.int64) - 48
    if len(c) and (c.min() < 0 or c.max() > 63):
        raise SegmentError("the RLE string holds characters outside pycocotools' alphabet")
    if not len(c):
        return np.zeros(0, np.int64)
    last = (c & 0x20) == 0
    if not last[-1]:
        raise SegmentError("the RLE string ends in the middle of a number")
    group = np.concatenate([[0], np.cumsum(last[:-1])])
    start = np.flatnonzero(np.concatenate([[True], last[:-1]]))
    k = np.arange(len(c)) - start[group]
    if k.max() > 7:
        raise SegmentError("the RLE string holds a number too long to be a run length")
    x = np.zeros(group[-1] + 1, np.int64)
    np.add.at(x, group, (c & 0x1F) << (5 * k))
    ends = np.flatnonzero(last)
    negative = (c[ends] & 0x10) != 0
    x[negative] -= np.left_shift(1, 5 * (k[ends][negative] + 1))
    runs = x.copy()
    if len(runs) > 3:
        runs[3::2] = runs[1] + np.cumsum(x[3::2])
        runs[4::2] = runs[2] + np.cumsum(x[4::2])
    return runs


def polygons_from_mask(mask: np.ndarray, *, min_points: int = 3) -> list[list[float]]:
    """Outer contours of a bool mask as COCO polygons (OpenCV), in pixel-edge coordinates.

    Holes cannot be drawn by COCO polygons (their union is filled); :func:`has_holes` says when
    an RLE is needed instead.
    """
    import cv2

    found, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for cnt in found:
        pts = cnt.reshape(-1, 2).astype(np.float64)
        if len(pts) >= min_points:
            out.append((pts + 0.5).reshape(-1).tolist())
    return out


def has_holes(mask: np.ndarray) -> bool:
    """True when a region of the bool mask encloses background (polygons would fill it)."""
    import cv2

    _, hierarchy = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    return hierarchy is not None and bool((hierarchy[0][:, 3] >= 0).any())


def union_area(segments: Sequence[Segment]) -> int:
    """Pixels covered by any of the segments (same image size)."""
    if not segments:
        return 0
    from pycocotools import mask as mask_utils

    return int(mask_utils.area(mask_utils.merge([s.rle() for s in segments], intersect=False)))
