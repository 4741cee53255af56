"""Drawing segmentation results: class tints over the image, instance masks with their boxes,
and RGBA cut-outs with soft edges.

Example:
    >>> from imgrec.tasks.segment import Segmentation
    >>> seg = Segmentation(np.array([[0, 1]], np.uint8), ("background", "cat"), (2, 1))
    >>> draw_segmentation(np.zeros((1, 2, 3), np.uint8), seg, alpha=1.0).tolist()
    [[[0, 0, 0], [0, 128, 255]]]
    >>> cutout(np.full((1, 2, 3), 9, np.uint8), seg, feather=0)[..., 3].tolist()
    [[0, 255]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from imgrec.errors import UsageError
from imgrec.imaging.draw import draw_boxes, overlay_mask, palette_color
from imgrec.tasks.instance import Instances
from imgrec.tasks.segment import Segmentation

MAX_FEATHER = 100.0  # pixels: OpenCV's blur grows with it (10000 crashed it on a 2000 x 2000 image)


def _check_image(image: np.ndarray, size: tuple[int, int], what: str) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise UsageError(f"{what} needs an RGB uint8 (H, W, 3) image; received {img.dtype} {img.shape}.")
    if (img.shape[1], img.shape[0]) != tuple(size):
        raise UsageError(f"{what}: the image is {img.shape[1]}x{img.shape[0]} but the result is for "
                         f"{size[0]}x{size[1]}; pass the image the prediction was made on.")  # fmt: skip
    return img


def draw_segmentation(image: np.ndarray, seg: Segmentation, *, alpha: float = 0.5) -> np.ndarray:
    """A copy of ``image`` with every class but background tinted in its colour."""
    img = _check_image(image, seg.image_size, "draw_segmentation")
    skip = (0,) if seg.classes and seg.classes[0].lower() == "background" else ()
    return overlay_mask(img, seg.mask, alpha=alpha, ignore=None, skip=skip)


def draw_instances(image: np.ndarray, found: Instances, *, alpha: float = 0.5) -> np.ndarray:
    """A copy of ``image`` with each object's mask tinted (a colour per object) and its box captioned."""
    img = _check_image(image, found.image_size, "draw_instances").astype(np.float32)
    colors = [palette_color(k) for k in range(len(found))]
    for inst, color in zip(found.instances, colors, strict=True):
        m = inst.mask()
        img[m] = (1 - alpha) * img[m] + alpha * np.asarray(color, np.float32)
    out = img.round().astype(np.uint8)
    if not len(found):
        return out
    captions = [f"{d.label} {d.score:.2f}" for d in found.instances]
    return draw_boxes(out, found.boxes, captions, colors=colors)


def cutout(
    image: np.ndarray, seg: Segmentation, *, classes: Sequence[str] | None = None, feather: float = 2.0,
    threshold: float = 0.5,
) -> np.ndarray:  # fmt: skip
    """The image as RGBA, transparent outside the chosen classes.

    Args:
        image: the image the segmentation was made on.
        seg: the segmentation.
        classes: the classes to keep (default: every class but background).
        feather: with probabilities, the edge follows them (soft, as the model saw it); without,
            the hard mask's edge is blurred over about this many pixels (0: hard edge; at most
            :data:`MAX_FEATHER`).
        threshold: with probabilities, the kept classes' probability that becomes alpha 0.5
            (linear on each side: 0 -> 0, ``threshold`` -> 0.5, 1 -> 1; 0.5 keeps alpha = p).
    """
    img = _check_image(image, seg.image_size, "cutout")
    keep = _keep(seg, classes)
    if not 0.0 < threshold < 1.0:
        raise UsageError(f"cutout's threshold must be strictly between 0 and 1; received {threshold}.")
    check_feather(feather)
    if seg.probabilities is not None and seg.geometry is not None and feather > 0:
        alpha: np.ndarray = np.zeros(img.shape[:2], np.float32)
        for k in keep:
            alpha += seg.probability(k)
        alpha = _remap(np.clip(alpha, 0.0, 1.0, out=alpha), threshold)
    else:
        alpha = np.isin(seg.mask, keep).astype(np.float32)
        if feather > 0:
            import cv2

            alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=float(feather) / 2)
    out = np.empty((*img.shape[:2], 4), np.uint8)
    out[..., :3] = img
    out[..., 3] = np.round(alpha * 255).astype(np.uint8)
    return out


def check_feather(feather: float) -> None:
    """``feather`` must be a number of pixels from 0 to :data:`MAX_FEATHER` (NaN was a hard edge)."""
    if not 0.0 <= float(feather) <= MAX_FEATHER:
        raise UsageError(f"feather must be from 0 to {MAX_FEATHER:g} pixels (the edge's softness); received {feather}.")


def _remap(p: np.ndarray, threshold: float) -> np.ndarray:
    """Piecewise-linear alpha: ``threshold`` -> 0.5, in place (alpha = p when it is 0.5)."""
    if threshold == 0.5:
        return p
    low = p < threshold
    p[low] *= np.float32(0.5 / threshold)
    p[~low] = np.float32(0.5) + (p[~low] - np.float32(threshold)) * np.float32(0.5 / (1.0 - threshold))
    return p


def _keep(seg: Segmentation, classes: Sequence[str] | None) -> list[int]:
    if classes:
        unknown = [c for c in classes if c not in seg.classes]
        if unknown:
            raise UsageError(f"Unknown class(es) {', '.join(map(repr, unknown))}; the model knows: "
                             f"{', '.join(seg.classes[:12])}.")  # fmt: skip
        return [seg.classes.index(c) for c in classes]
    start = 1 if seg.classes and seg.classes[0].lower() == "background" else 0
    return list(range(start, len(seg.classes)))
