"""``evaluate_segmentation``: a segmenter over a ``segment`` dataset, through the Predictor's own steps.

Images and their masks stream in batches (decoded by worker threads, one batch ahead) through
``Predictor.forward`` and ``Predictor.postprocess`` — the calls predict and serve make — so each
prediction is compared with its mask at the original image's resolution, in a
:class:`SegmentationAccumulator` (one pixel confusion matrix). Each image's own mIoU is kept
to list the worst images.

Example:
    >>> # result = evaluate_segmentation(Predictor.from_run("runs/unet-resnet18-1"), load_dataset("masks/"))
    >>> # result.metrics["miou"], result.metrics["per_class"]["cat"]["iou"]
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgrec.data import ImageDataset
from imgrec.data.stream import nothing_readable, stream_batches
from imgrec.errors import DatasetError
from imgrec.evaluation.classify import class_mapping
from imgrec.evaluation.segmentation.accumulator import SegmentationAccumulator

log = logging.getLogger(__name__)
WORST = 12  # images kept in ``worst_images``


@dataclass
class SegmentationResult:
    """The outcome of one segmentation evaluation.

    Attributes:
        metrics: :meth:`SegmentationAccumulator.summary` (``miou``, ``pixel_accuracy``,
            ``mean_dice``, ``boundary_f1``, ``per_class``) plus ``confusion`` (labels, matrix)
            and ``worst_images`` (``image_id``, ``miou``, lowest first).
        bad: unreadable items (image or mask), ``[(source, message)]``.
        seconds: wall time of the whole evaluation.
        ms_per_image: model + postprocessing time per image (decode excluded).
        options: the prediction options used.
    """

    metrics: dict[str, Any]
    bad: list[tuple[str, str]]
    seconds: float
    ms_per_image: float
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.metrics, "seconds": round(self.seconds, 4), "ms_per_image": round(self.ms_per_image, 4),
                "options": self.options, "bad_files": [{"source": s, "error": m} for s, m in self.bad]}  # fmt: skip


def evaluate_segmentation(
    predictor: Any, dataset: ImageDataset, *, batch_size: int | None = None, workers: int = 4, boundary: bool = True,
    threshold: float | None = None, warn: bool = True,
) -> SegmentationResult:  # fmt: skip
    """mIoU, per-class IoU and Dice, pixel accuracy, boundary F1 and the pixel confusion matrix of
    ``predictor`` (a segmentation Predictor) on ``dataset`` (masks in ``dataset.masks``).

    The dataset's classes must be the model's, or some of them, by name. ``batch_size`` None:
    the predictor's own. ``boundary=False`` skips boundary F1 (morphology per class and image).
    ``warn=False``: no warning about unreadable images or masks (they are in ``bad`` either way).
    """
    start = time.perf_counter()
    _check(dataset)
    ignore = 255 if len(predictor.classes) <= 255 else 65535
    lut = _lookup(class_mapping(list(dataset.classes), list(predictor.classes)), ignore)
    options = predictor.options(threshold=threshold)
    acc = SegmentationAccumulator(len(predictor.classes), ignore, predictor.classes, boundary=boundary)
    worst: list[tuple[float, str]] = []
    bad: list[tuple[str, str]] = []
    model_seconds = 0.0
    size = batch_size or int(getattr(predictor, "batch_size", 8))
    order = range(len(dataset))
    for batch in stream_batches(dataset, predictor.preprocessing, order, size, workers=workers, masks=True):
        bad += batch.bad
        if not len(batch.indices):
            continue
        t0 = time.perf_counter()
        names = [dataset.sources[int(i)] for i in batch.indices]
        found = predictor.postprocess(predictor.forward(batch.images), batch.geometries, names, options)
        model_seconds += time.perf_counter() - t0
        for name, seg, mask in zip(names, found, batch.masks or [], strict=True):
            target = lut[np.minimum(mask.astype(np.int64), len(lut) - 1)]
            acc.update(seg.mask, target)
            worst.append((image_miou(seg.mask, target, len(predictor.classes)), name))
    if not acc.images:
        raise nothing_readable(dataset, bad)
    if bad and warn:
        log.warning("%d of %d images (or masks) could not be read", len(bad), len(dataset))
    metrics = {**acc.summary(), "confusion": {"labels": list(predictor.classes), "matrix": acc.confusion.tolist()},
               "worst_images": [{"image_id": n, "miou": round(v, 6)} for v, n in sorted(worst)[:WORST]]}  # fmt: skip
    return SegmentationResult(metrics, bad, time.perf_counter() - start, 1000 * model_seconds / acc.images, options)


def _check(dataset: ImageDataset) -> None:
    if dataset.task != "segment" or dataset.masks is None:
        raise DatasetError(f"{dataset.name} is a {dataset.task} dataset without masks; a segmenter is evaluated on "
                           "a segment dataset (images/ + masks/, VOC SegmentationClass, or COCO with "
                           "--task segment).")  # fmt: skip
    if len(dataset) == 0:
        raise DatasetError(f"The dataset {dataset.name!r} is empty: there is nothing to evaluate.")


def _lookup(mapping: np.ndarray, ignore: int) -> np.ndarray:
    """Data mask value -> model class index; ``ignore`` for the data's ignore index and every
    value that is no class (the last entry stands for all values beyond the table)."""
    lut = np.full(max(256, len(mapping)) + 1, ignore, np.int64)
    lut[: len(mapping)] = mapping
    return lut


def image_miou(pred: np.ndarray, target: np.ndarray, num_classes: int) -> float:
    """One image's mIoU over the classes in its truth or prediction (1.0 when both are empty).

    Example:
        >>> image_miou(np.array([[0, 1]]), np.array([[0, 0]]), 2)
        0.25
    """
    acc = SegmentationAccumulator(num_classes)
    acc.update(pred, target)
    value = acc.miou()
    return 1.0 if np.isnan(value) else value
