"""Which classes each index mask holds, found by decoding it once: what a stratified split needs
for mask folders and Pascal VOC segmentation, whose files say nothing about it until decoded.

:func:`scan_mask_classes` decodes the masks whose classes are not known yet, one per worker
thread at a time (bounded memory: a mask is reduced to its class list and dropped), and records
the classes in the dataset's :class:`~imgrec.data.masks.MaskTarget` (``found``). Subsets made
afterwards (the splits) carry them, and a second scan of the same dataset decodes nothing. A
mask that cannot be read stays unknown (split key -1); ``imgrec data check`` reports it.

Example:
    >>> import numpy as np
    >>> from imgrec.data.dataset import ImageDataset
    >>> from imgrec.data.masks import MaskTarget
    >>> ds = ImageDataset.for_segmentation(["bg", "a"], ["x.jpg"], [MaskTarget(file="x.png", present=(0, 1))])
    >>> scan_mask_classes(ds)  # already known: nothing to decode
    0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from imgrec.data.dataset import ImageDataset, or_error
from imgrec.data.masks import present_classes


def scan_mask_classes(ds: ImageDataset, items: Sequence[int] | np.ndarray | None = None, workers: int = 4) -> int:
    """Decode the masks of ``items`` (all by default) whose classes are unknown; record what they hold.

    Args:
        ds: a ``segment`` dataset (others: nothing to do).
        items: item indices to make known.
        workers: decoding threads.

    Returns:
        How many masks were decoded.
    """
    if ds.masks is None:
        return 0
    masks = ds.masks
    todo = [int(i) for i in (range(len(ds)) if items is None else np.asarray(items).tolist())]
    todo = [i for i in todo if masks[i].classes is None]
    if workers <= 1 or len(todo) < 16:
        found = [_classes(ds, i) for i in todo]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            found = list(pool.map(lambda i: _classes(ds, i), todo))
    for i, classes in zip(todo, found, strict=True):
        if classes is not None:
            masks[i] = dataclasses.replace(masks[i], found=classes)
    return len(todo)


def _classes(ds: ImageDataset, i: int) -> tuple[int, ...] | None:
    mask = or_error(ds.load_mask, i)
    if isinstance(mask, str):
        return None
    return tuple(np.flatnonzero(present_classes(mask, ds.num_classes)).tolist())
