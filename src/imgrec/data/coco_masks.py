"""The mask side of the COCO reader: segmentations into segments, images into instance or segment targets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imgrec.data.boxes import IssueLog
from imgrec.data.dataset import ImageDataset
from imgrec.data.masks import BACKGROUND, InstanceTarget, MaskTarget, ignore_index_for
from imgrec.data.rle import Segment, SegmentError, parse_segmentation
from imgrec.errors import UsageError

if TYPE_CHECKING:
    from imgrec.data.coco import _Image

COCO_TASKS = ("detect", "instance", "segment")


def check_task(task: str) -> None:
    """COCO holds boxes and masks: detect, instance and segment datasets."""
    if task not in COCO_TASKS:
        raise UsageError(f"COCO annotations can be read for {', '.join(COCO_TASKS)}; received task={task!r}.")


def segment_of(
    value: Any, n: int, hw: tuple[int, int] | None, log: IssueLog, where: str, image: str
) -> Segment | None:
    """The checked segment of ``annotations[n]``, or None (with a ``bad_segment`` issue)."""
    if hw is None:
        log.add("bad_segment", f"annotations[{n}]: the image size is not known (not stated, image unreadable).",
                where, image=image)  # fmt: skip
        return None
    try:
        return parse_segmentation(value, hw)
    except SegmentError as exc:
        log.add("bad_segment", f"annotations[{n}]: segmentation not usable: {exc}.", where, image=image)
        return None


def instance_dataset(
    task: str, images: list[_Image], classes: list[str], ids: list[int], root: Path, log: IssueLog
) -> ImageDataset:
    """The images read as ``instance`` (InstanceTargets) or ``segment`` (MaskTargets) data."""
    targets = [_instance_target(im) for im in images]
    splits = [im.split for im in images]
    common: dict[str, Any] = {
        "splits": None if len(set(splits)) < 2 else np.asarray(splits),
        "name": root.name,
        "root": str(root),
        "label_files": [im.file for im in images],
        "issues": log.items,
    }
    sources = [im.source for im in images]
    if task == "instance":
        return ImageDataset.for_detection(classes, sources, list(targets), class_ids=ids, task="instance", **common)
    names = [BACKGROUND, *classes]
    ignore = ignore_index_for(len(names))
    masks = [
        MaskTarget(objects=t, image_size=im.size, ignore_index=ignore, present=_present(t))
        for t, im in zip(targets, images, strict=True)
    ]
    return ImageDataset.for_segmentation(names, sources, masks, class_ids=[0, *ids], ignore_index=ignore, **common)


def _instance_target(im: _Image) -> InstanceTarget:
    return InstanceTarget.from_segments(
        im.boxes, im.labels, im.segments, crowd=im.crowd, image_size=im.size, origins=im.origins, areas=im.areas
    )


def _present(t: InstanceTarget) -> tuple[int, ...]:
    """Classes (label + 1) of the objects that have a mask."""
    return tuple(sorted({int(lab) + 1 for lab, s in zip(t.labels, t.segments, strict=True) if s is not None}))
