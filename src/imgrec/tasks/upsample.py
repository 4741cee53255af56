"""Maps predicted over the model input, back to the original image's pixels in bounded memory.

A segmentation model predicts at its input resolution or below (stride 4, 8, 32). Its maps
cover the square model input; the preprocessing's :class:`~imgrec.transforms.frame.Geometry`
says where the image lies in that square. :func:`upsample` resamples one ``(h, w)`` float map
straight into the original's ``(H, W)`` pixels with one OpenCV affine warp (bilinear, pixel
centre to pixel centre, edge pixels repeated), so the cost is one ``H x W`` float32 array per
map, whatever the number of classes: :func:`argmax_upsampled` warps one class at a time and
keeps a running maximum (3 full-size arrays in memory: the best score, its class, the current
class), instead of the ``C x H x W`` floats of upsampling every class at once (21 classes on a
12-megapixel photo: 1 GB).

Measured (benchmarks/segment_upsample.py): see docs/INTERNALS.md, "Segmentation".
"""

from __future__ import annotations

import numpy as np

from imgrec.transforms.frame import Geometry


def map_matrix(geometry: Geometry, h: int, w: int) -> np.ndarray:
    """The 2x3 matrix taking an original pixel centre to the centre coordinates of an ``(h, w)`` map
    that covers the whole ``size x size`` input (OpenCV's ``WARP_INVERSE_MAP`` convention).

    Example:
        >>> g = Geometry(original=(4, 4), scale=(0.5, 0.5), offset=(0.0, 0.0), size=2)
        >>> map_matrix(g, 2, 2).tolist()
        [[0.5, 0.0, -0.25], [0.0, 0.5, -0.25]]
    """
    rx, ry = w / geometry.size, h / geometry.size
    sx, sy = geometry.scale[0] * rx, geometry.scale[1] * ry
    ox, oy = geometry.offset[0] * rx, geometry.offset[1] * ry
    return np.array([[sx, 0.0, 0.5 * sx + ox - 0.5], [0.0, sy, 0.5 * sy + oy - 0.5]], np.float64)


def aligned_region(geometry: Geometry, h: int, w: int) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)``: the pixels of an ``(h, w)`` map covering the input that show the whole
    image, when they are whole pixels (stretch; letterbox at the input's resolution), else None.

    Example:
        >>> g = Geometry(original=(40, 20), scale=(0.2, 0.2), offset=(0.0, 2.0), size=8)
        >>> aligned_region(g, 8, 8), aligned_region(g, 3, 3)
        ((0, 2, 8, 6), None)
    """
    rx, ry = w / geometry.size, h / geometry.size
    x0, y0 = geometry.offset[0] * rx, geometry.offset[1] * ry
    x1 = x0 + geometry.original[0] * geometry.scale[0] * rx
    y1 = y0 + geometry.original[1] * geometry.scale[1] * ry
    edges = [round(v) for v in (x0, y0, x1, y1)]
    if any(abs(v - e) > 1e-6 for v, e in zip((x0, y0, x1, y1), edges, strict=True)):
        return None
    if not (0 <= edges[0] < edges[2] <= w and 0 <= edges[1] < edges[3] <= h):
        return None
    return edges[0], edges[1], edges[2], edges[3]


def upsample(channel: np.ndarray, geometry: Geometry) -> np.ndarray:
    """One ``(h, w)`` float map over the input, bilinear, in the original's ``(H, W)`` pixels (float32).

    When the image covers whole map pixels (:func:`aligned_region`), the region is resized with
    ``cv2.resize`` (the same centre-to-centre bilinear mapping, edges repeated, with exact
    coordinates): 10x faster than the general warp (0.6 vs 6.6 ms for 256 x 256 -> 1280 x 720).
    """
    import cv2

    src = np.ascontiguousarray(channel, np.float32)
    w, h = geometry.original
    region = aligned_region(geometry, *src.shape[:2])
    if region is not None:
        x0, y0, x1, y1 = region
        resized: np.ndarray = cv2.resize(src[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_LINEAR)
        return resized
    m = map_matrix(geometry, *src.shape[:2])
    out: np.ndarray = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    return out


def argmax_upsampled(scores: np.ndarray, geometry: Geometry, classes: np.ndarray | None = None) -> np.ndarray:
    """The class of every original pixel: argmax over bilinearly upsampled ``(C, h, w)`` scores,
    one class at a time (ties go to the lower index, like ``np.argmax``).

    Args:
        scores: logits or probabilities over the model input.
        geometry: the image's geometry record.
        classes: the class indices to consider (default all).
    """
    order = np.arange(len(scores)) if classes is None else np.asarray(classes, np.int64)
    dtype = np.uint8 if len(scores) <= 256 else np.uint16
    w, h = geometry.original
    index = np.full((h, w), order[0] if len(order) else 0, dtype)
    if len(order) < 2:
        return index
    best = upsample(scores[order[0]], geometry)
    for c in order[1:].tolist():
        cur = upsample(scores[c], geometry)
        better = cur > best
        np.copyto(best, cur, where=better)
        index[better] = c
    return index


def box_region(
    prob: np.ndarray, box: np.ndarray | tuple[float, ...], size: tuple[int, int], threshold: float
) -> tuple[np.ndarray, tuple[int, int]]:
    """A mask predicted over its own box (Mask R-CNN's ``(m, m)`` map) in the original's pixels:
    bilinear (pixel centre to pixel centre) over the pixels whose centres lie in the box, then
    ``>= threshold``. Returns that bool region and its top-left ``(x, y)``; the mask is False
    everywhere else (:func:`imgrec.data.rle.encode_rle_region` encodes it without a full-size array).

    Args:
        prob: ``(m_h, m_w)`` probabilities covering the box.
        box: x1, y1, x2, y2 in original pixels, not clipped (the frame the map covers).
        size: ``(width, height)`` of the original.
        threshold: the probability from which a pixel belongs to the object.

    Example:
        >>> region, at = box_region(np.ones((2, 2), np.float32), (1.0, 0.0, 3.0, 2.0), (4, 3), 0.5)
        >>> region.astype(int).tolist(), at
        ([[1, 1], [1, 1]], (1, 0))
    """
    import cv2

    w, h = size
    x1, y1, x2, y2 = (float(v) for v in box)
    rx0, ry0 = max(int(np.floor(x1 + 0.5)), 0), max(int(np.floor(y1 + 0.5)), 0)  # first pixel centre inside
    rx1, ry1 = min(int(np.ceil(x2 - 0.5)), w), min(int(np.ceil(y2 - 0.5)), h)
    if rx1 <= rx0 or ry1 <= ry0:
        return np.zeros((0, 0), bool), (min(rx0, w), min(ry0, h))
    src = np.ascontiguousarray(prob, np.float32)
    sx, sy = src.shape[1] / max(x2 - x1, 1e-6), src.shape[0] / max(y2 - y1, 1e-6)
    m = np.array([[sx, 0.0, (rx0 + 0.5 - x1) * sx - 0.5], [0.0, sy, (ry0 + 0.5 - y1) * sy - 0.5]], np.float64)
    region = cv2.warpAffine(src, m, (rx1 - rx0, ry1 - ry0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    return region.reshape(ry1 - ry0, rx1 - rx0) >= threshold, (rx0, ry0)
