"""``evaluate_instances``: an instance segmenter over an ``instance`` dataset, through the Predictor's own steps.

Images stream in batches (the detection evaluation's :class:`PredictionStream`: worker
threads, one batch ahead, ``Predictor.forward`` + ``Predictor.postprocess``, the calls predict
and serve make). Each image's instances meet its objects twice: their boxes in a
:class:`DetectionAccumulator` (the box figures, confusion matrix and worst images are exactly
``evaluate_detection``'s) and their masks, as compressed RLEs in the original pixels, in a
:class:`MaskAccumulator` (pycocotools' ``segm`` evaluation).

Example:
    >>> # result = evaluate_instances(Predictor.from_run("runs/maskrcnn"), load_dataset("coco/", task="instance"))
    >>> # result.metrics["map"], result.metrics["mask_map"], result.metrics["per_class"]["cat"]["mask_ap"]
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from imgrec.data import ImageDataset
from imgrec.errors import DatasetError
from imgrec.evaluation.detection.accumulator import DetectionAccumulator
from imgrec.evaluation.detection.run import DetectionResult, PredictionStream, class_map
from imgrec.evaluation.instance.accumulator import MaskAccumulator
from imgrec.tasks.detect import Detection, Detections
from imgrec.tasks.instance import Instances

log = logging.getLogger(__name__)


@dataclass
class InstanceResult(DetectionResult):
    """The outcome of one instance-segmentation evaluation.

    Attributes:
        metrics: the box figures of :meth:`DetectionAccumulator.compute` under their detection
            names (``map``, ``map50``, ``map75``, ``map_small``..., ``ar100``, ``confusion``,
            ``worst_images``...) and the mask figures of :meth:`MaskAccumulator.compute`
            (``mask_map``, ``mask_map50``, ``mask_map75``, ``mask_map_small``/``medium``/``large``,
            ``mask_ar100``..., ``gt_masks``, ``ignored_masks``, ``no_mask``,
            ``worst_mask_images``); ``per_class`` holds both (``ap``, ``ap50``, ``gt``,
            ``detections``, ``mask_ap``, ``mask_ap50``), ``per_image`` both (``mask_iou``
            next to the box error counts).
        bad: unreadable items, ``[(source, message)]``.
        seconds: wall time of the whole evaluation.
        ms_per_image: model + postprocessing time per image (decode excluded).
        options: the prediction options used (``conf``, ``iou``, ``max_det``, ``threshold``).
    """


def evaluate_instances(
    predictor: Any, dataset: ImageDataset, *, conf: float = 0.001, iou: float = 0.65, max_det: int = 100,
    threshold: float = 0.5, batch_size: int | None = None, workers: int = 4, warn: bool = True,
) -> InstanceResult:  # fmt: skip
    """COCO box and mask metrics of ``predictor`` (an instance Predictor) on ``dataset`` (an
    ``instance`` dataset: ``load_dataset(path, task="instance")``).

    The defaults are the usual mAP settings (a low ``conf``: precision-recall needs the whole
    ranking; ``threshold`` binarizes each mask's probabilities). The dataset's classes must be
    the model's, or a subset of them, by name. ``batch_size`` None: the predictor's own.
    ``warn=False``: no warning about unreadable images (they are in ``bad`` either way).

    Objects without a mask (their segment is None: a box-only annotation, or a segmentation
    that could not be read or is not in the image's pixels) count for the box figures as usual
    but, for mask AP, as crowd regions shaped like their boxes: never a miss, and a predicted
    mask inside one is neither a match nor a false positive (``metrics["no_mask"]`` counts them).

    Raises:
        DatasetError: ``dataset`` is not an instance dataset, is empty, or no image could be read.
    """
    start = time.perf_counter()
    if dataset.task != "instance" or dataset.targets is None:
        raise DatasetError(f"{dataset.name} is a {dataset.task} dataset without object masks; an instance "
                           "segmenter is evaluated on an instance dataset (COCO JSON with segmentations, read "
                           "with load_dataset(path, task='instance') or --task instance).")  # fmt: skip
    options = predictor.options(conf=conf, iou=iou, max_det=max_det, threshold=threshold)
    stream = PredictionStream(predictor, dataset, options, batch_size, workers)
    lut = class_map(list(dataset.classes), list(predictor.classes))
    boxes, masks = DetectionAccumulator(list(predictor.classes)), MaskAccumulator(list(predictor.classes))
    for i, found in stream:
        t, name = dataset.targets[i], dataset.sources[i]
        labels = lut[t.labels]
        boxes.add(name, t.boxes, labels, t.crowd, as_detections(found), found.image_size, gt_area=t.areas)
        masks.add(name, found.image_size, labels, t.crowd, object_masks(t, found.image_size), found,
                  gt_boxes=t.boxes, gt_area=t.areas)  # fmt: skip
    stream.check(len(boxes), warn)
    metrics = merge_metrics(boxes.compute(), masks.compute())
    if metrics["no_mask"]:
        log.info("%d object(s) without a usable mask count as crowd regions for mask AP", metrics["no_mask"])
    return InstanceResult(metrics, stream.bad, time.perf_counter() - start, stream.ms_per_image(len(boxes)), options)


def as_detections(found: Instances) -> Detections:
    """The boxes of ``found`` as :class:`Detections` (for the box figures)."""
    dets = tuple(Detection(d.box, d.label, d.score, d.class_id) for d in found.instances)
    return Detections(dets, found.image_size, found.path)


def object_masks(target: Any, image_size: tuple[int, int]) -> list[dict[str, Any] | None]:
    """Each object's compressed RLE, None where it has no segment or one of another size than
    the image's ``(width, height)`` (it then counts as a crowd region, see evaluate_instances)."""
    w, h = image_size
    segments = getattr(target, "segments", None) or (None,) * len(target)
    return [s.rle() if s is not None and tuple(s.size) == (h, w) else None for s in segments]


def merge_metrics(box: dict[str, Any], mask: dict[str, Any]) -> dict[str, Any]:
    """The box figures with the mask figures added; per class and per image hold both."""
    out = {**box, **{k: v for k, v in mask.items() if k not in ("per_class", "per_image")}}
    out["per_class"] = {name: {**row, **mask["per_class"].get(name, {})} for name, row in box["per_class"].items()}
    out["per_image"] = {**box["per_image"], "mask_iou": mask["per_image"]["mask_iou"]}
    return out
