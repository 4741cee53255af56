"""Segmentation checks: every checked mask decoded once, against its image.

Findings (``LabelIssue`` codes, reported by ``check_boxes.label_problems`` like the box ones):
``mask_size_mismatch`` (the mask is not the size of its decoded image), ``unknown_class``
(values that are neither a class index nor the ignore index), ``unknown_color`` (colours of a
colour or palette mask that the colour map lacks; read as ignored), ``empty_mask`` (no pixel
of any class but background), ``unreadable_mask``. Per class: pixels, and images holding it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imgrec.data.boxes import LabelIssue
from imgrec.data.dataset import ImageDataset
from imgrec.data.masks import BACKGROUND
from imgrec.errors import ImgrecError

MASK_TITLES = {
    "mask_size_mismatch": "mask(s) differ in size from their image",
    "unknown_color": "mask(s) hold colours that are not in the colour map (read as ignored)",
    "empty_mask": "mask(s) label no pixel with a class other than background",
    "unreadable_mask": "mask file(s) cannot be decoded",
    "missing_mask": "image(s) have no mask (left out)",
}
SOFT = {"empty_mask": "warning", "missing_mask": "warning", "unknown_color": "warning"}


@dataclass
class MaskStats:
    """What the masks hold: per-class pixel and image counts, and the issues found."""

    pixels: np.ndarray
    images: np.ndarray
    issues: list[LabelIssue] = field(default_factory=list)
    decoded: int = 0


def mask_stats(ds: ImageDataset, checked: np.ndarray, sizes: dict[int, tuple[int, int]], workers: int = 4) -> MaskStats:
    """Decode the masks of the ``checked`` items and compare them with the images' ``sizes``.

    Args:
        ds: a segment dataset.
        checked: item indices.
        sizes: decoded ``(width, height)`` per item index (items whose image failed are not in it).
        workers: decoding threads.
    """
    n = ds.num_classes
    stats = MaskStats(np.zeros(n, np.int64), np.zeros(n, np.int64))
    idx = checked.tolist()
    if workers <= 1 or len(idx) < 16:
        results = [_one(ds, i, sizes.get(i)) for i in idx]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda i: _one(ds, i, sizes.get(i)), idx))
    for counts, issues in results:
        stats.issues += issues
        if counts is not None:
            stats.decoded += 1
            stats.pixels += counts
            stats.images += counts > 0
    return stats


def _one(ds: ImageDataset, i: int, size: tuple[int, int] | None) -> tuple[np.ndarray | None, list[LabelIssue]]:
    assert ds.masks is not None
    target = ds.masks[i]
    file = target.file or (ds.label_files[i] if ds.label_files else "")
    src = ds.sources[i]

    def issue(code: str, what: str) -> LabelIssue:
        return LabelIssue(code, f"{Path(target.file or src).name}: {what}.", file, None, src)

    stated = target.render_size
    if size is not None and stated is not None and stated != tuple(size):  # known before rendering anything
        return None, [issue("mask_size_mismatch", f"the annotation states {stated[0]}x{stated[1]}, the image is "
                                                  f"{size[0]}x{size[1]}")]  # fmt: skip
    try:
        mask, unknown_colors = target.read(ds.limits)
    except ImgrecError as exc:
        return None, [issue("unreadable_mask", str(exc).rstrip("."))]
    found = []
    h, w = mask.shape
    if size is not None and (w, h) != tuple(size):
        found.append(issue("mask_size_mismatch", f"the mask is {w}x{h}, its image {size[0]}x{size[1]}"))
    if unknown_colors:
        shown = ", ".join(f"rgb{c}" for c in unknown_colors[:4])
        found.append(issue("unknown_color", f"{len(unknown_colors)} colour(s) not in the colour map: {shown}"))
    full = np.bincount(mask.reshape(-1), minlength=ds.num_classes)
    counts = full[: ds.num_classes]
    values = [v for v in np.flatnonzero(full).tolist() if v >= ds.num_classes and v != target.ignore_index]
    if values:
        shown = ", ".join(map(str, values[:6])) + (" ..." if len(values) > 6 else "")
        found.append(issue("unknown_class", f"values {shown} are neither class indices (0..{ds.num_classes - 1}) "
                                            f"nor the ignore index {target.ignore_index}"))  # fmt: skip
    first = 1 if ds.classes and ds.classes[0].lower() in (BACKGROUND, "_background_", "bg") else 0
    if not counts[first:].any():
        found.append(issue("empty_mask", "no pixel has a class" + (" other than background" if first else "")))
    return counts, found
