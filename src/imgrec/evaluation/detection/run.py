"""``evaluate_detection``: a detector over a detection dataset, through the Predictor's own steps.

Images stream in batches (decoded by worker threads, one batch ahead) through
``Predictor.forward`` and ``Predictor.postprocess`` — the same calls as predict and serve —
and every image's detections meet its boxes in a :class:`DetectionAccumulator` (pycocotools).

Example:
    >>> # result = evaluate_detection(Predictor.from_run("runs/yolox"), load_dataset("coco128/"))
    >>> # result.metrics["map"], result.metrics["per_class"]["person"]["ap50"]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from imgrec.data import ImageDataset
from imgrec.data.stream import nothing_readable, stream_batches
from imgrec.errors import DatasetError
from imgrec.evaluation.classify import class_mapping
from imgrec.evaluation.detection.accumulator import DetectionAccumulator

log = logging.getLogger(__name__)


@dataclass
class DetectionResult:
    """The outcome of one detection evaluation.

    Attributes:
        metrics: :meth:`DetectionAccumulator.compute` output (``map``, ``map50``, ``per_class``...).
        bad: unreadable items, ``[(source, message)]``.
        seconds: wall time of the whole evaluation.
        ms_per_image: model + postprocessing time per image (decode excluded).
        options: the prediction options used (``conf``, ``iou``, ``max_det``).
    """

    metrics: dict[str, Any]
    bad: list[tuple[str, str]]
    seconds: float
    ms_per_image: float
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.metrics, "seconds": round(self.seconds, 4), "ms_per_image": round(self.ms_per_image, 4),
                "options": self.options, "bad_files": [{"source": s, "error": m} for s, m in self.bad]}  # fmt: skip


def evaluate_detection(
    predictor: Any, dataset: ImageDataset, *, conf: float = 0.001, iou: float = 0.65, max_det: int = 100,
    batch_size: int | None = None, workers: int = 4, warn: bool = True,
) -> DetectionResult:  # fmt: skip
    """COCO metrics of ``predictor`` (a detection Predictor) on ``dataset`` (boxes in ``targets``).

    The defaults are the usual mAP settings (a low ``conf``: precision-recall needs the whole
    ranking). The dataset's classes must be the model's, or a subset of them, by name.
    ``batch_size`` None: the predictor's own (``Predictor.batch_size``). ``warn=False``: no warning
    about unreadable images (a training run warns once itself; they are in ``bad`` either way).
    """
    start = time.perf_counter()
    if dataset.task != "detect" or dataset.targets is None:
        raise DatasetError(f"{dataset.name} has no boxes; a detector is evaluated on a detection dataset.")
    stream = PredictionStream(predictor, dataset, predictor.options(conf=conf, iou=iou, max_det=max_det),
                              batch_size, workers)  # fmt: skip
    lut = class_map(list(dataset.classes), list(predictor.classes))
    acc = DetectionAccumulator(list(predictor.classes))
    for i, dets in stream:
        t = dataset.targets[i]
        # COCO's stated areas decide small/medium/large, as in pycocotools
        acc.add(dataset.sources[i], t.boxes, lut[t.labels], t.crowd, dets, dets.image_size, gt_area=t.areas)
    stream.check(len(acc), warn)
    return DetectionResult(acc.compute(), stream.bad, time.perf_counter() - start, stream.ms_per_image(len(acc)),
                           stream.options)  # fmt: skip


@dataclass
class PredictionStream:
    """``(dataset index, result)`` of each readable image, through ``predictor.forward`` and
    ``predictor.postprocess`` in batches (decoded by worker threads, one batch ahead).

    Iterating fills ``bad`` (unreadable items) and ``model_seconds`` (forward + postprocess).
    ``batch_size`` None: the predictor's own (``Predictor.batch_size``).
    """

    predictor: Any
    dataset: ImageDataset
    options: dict[str, Any]
    batch_size: int | None = None
    workers: int = 4
    bad: list[tuple[str, str]] = field(default_factory=list)
    model_seconds: float = 0.0

    def __post_init__(self) -> None:
        if len(self.dataset) == 0:
            raise DatasetError(f"The dataset {self.dataset.name!r} is empty: there is nothing to evaluate.")

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        size = self.batch_size or int(getattr(self.predictor, "batch_size", 8))
        order = range(len(self.dataset))
        for batch in stream_batches(self.dataset, self.predictor.preprocessing, order, size, workers=self.workers):
            self.bad += batch.bad
            if not len(batch.indices):
                continue
            t0 = time.perf_counter()
            names = [self.dataset.sources[int(i)] for i in batch.indices]
            found = self.predictor.postprocess(self.predictor.forward(batch.images), batch.geometries, names,
                                               self.options)  # fmt: skip
            self.model_seconds += time.perf_counter() - t0
            yield from zip((int(i) for i in batch.indices), found, strict=True)

    def check(self, done: int, warn: bool = True) -> None:
        """After the stream: a DatasetError when no image could be read, a warning for the unreadable ones
        (``warn=False``: none)."""
        if not done:
            raise nothing_readable(self.dataset, self.bad)
        if self.bad and warn:
            log.warning("%d of %d images could not be read", len(self.bad), len(self.dataset))

    def ms_per_image(self, done: int) -> float:
        return 1000 * self.model_seconds / max(1, done)


# COCO's category names and the Darknet/VOC spellings of the same classes (coco80.names): a
# YOLO export labelled one way is evaluated on COCO JSON labelled the other way.
ALIASES = {"motorcycle": "motorbike", "airplane": "aeroplane", "couch": "sofa", "potted plant": "pottedplant",
           "dining table": "diningtable", "tv": "tvmonitor"}  # fmt: skip
_BOTH_WAYS = {**ALIASES, **{v: k for k, v in ALIASES.items()}}


def class_map(data_classes: list[str], model_classes: list[str]) -> Any:
    """Index of each data class among the model's, by name (or its known other spelling)."""
    known = set(model_classes)
    return class_mapping([c if c in known else _BOTH_WAYS.get(c, c) for c in data_classes], model_classes)
