"""``DetectionAccumulator``: COCO detection metrics, accumulated one image at a time.

``add`` takes one image's ground truth as plain arrays and its :class:`Detections`; ``compute``
builds COCO-format ground truth and results in memory and runs pycocotools' ``COCOeval``
(the figures are pycocotools' own: mAP@[.5:.95], AP@.5, AP@.75, AP small/medium/large, AR@1,
10, 100 and by size), then reads per-class AP and the precision-recall curves out of
``COCOeval.eval["precision"]``. Alongside, at a confidence threshold, it counts a detection
confusion matrix with a background row and column and each image's false positives, misses
and wrong classes, for a gallery of the worst images (:mod:`.matching`).

Memory: ``add`` keeps one float64 row per box (8 values) and per detection (7 values), the
per-image counts and the confusion matrix; no Python object per box. ``compute`` then builds
pycocotools' per-box dicts (about 1 KB per box while it runs) and its arrays of
T x R x K x A x M precision values (10 x 101 x classes x 4 x 3). pycocotools divides by ``tp + fp + eps``, so a perfect
score reads 0.9999999999999998. Time: ``add`` is O(D x G) for
an image with D kept detections and G boxes; ``compute`` is pycocotools' evaluation.

Example:
    >>> from imgrec.tasks.detect import Detection, Detections
    >>> acc = DetectionAccumulator(["cat", "dog"])
    >>> box = np.array([[10.0, 10.0, 60.0, 50.0]])
    >>> acc.add("a", box, np.array([1]), np.array([False]),
    ...         Detections((Detection((10.0, 10.0, 60.0, 50.0), "dog", 0.9, 1),), (100, 80)), (100, 80))
    >>> m = acc.compute()
    >>> round(m["map"], 6), round(m["per_class"]["dog"]["ap50"], 6), m["per_class"]["cat"]["ap"]
    (1.0, 1.0, None)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from imgrec.errors import UsageError
from imgrec.evaluation.detection import coco
from imgrec.evaluation.detection.matching import match_image
from imgrec.tasks.detect import Detections

GT_COLUMNS, DT_COLUMNS = 8, 7  # image, x1, y1, x2, y2, label, crowd, area | image, x1, y1, x2, y2, score, label


def check_new_image(
    seen: set[str], image_id: str, image_size: tuple[int, int], result_size: tuple[int, int], what: str
) -> tuple[str, tuple[int, int]]:
    """An accumulator's checks of a new image: an id not ``seen`` yet, a positive ``(width,
    height)``, and a result (``what``: "detections", "instances") in that image's pixels."""
    key = str(image_id)
    if key in seen:
        raise UsageError(f"Image {key!r} was added twice; each image_id must be unique.")
    w, h = (int(v) for v in image_size)
    if w <= 0 or h <= 0:
        raise UsageError(f"image_size must be (width, height) > 0; received {tuple(image_size)} for {key!r}.")
    if tuple(result_size) not in ((0, 0), (w, h)):
        raise UsageError(f"The {what} of {key!r} are for a {result_size} image but image_size is "
                         f"{(w, h)}; give both in the same image's pixels.")  # fmt: skip
    return key, (w, h)


class DetectionAccumulator:
    """COCO box metrics over a stream of images (see the module docstring).

    Args:
        classes: the class names; ground-truth labels and ``Detection.class_id`` index them.
        conf: the score from which a detection counts in the confusion matrix and the error
            counts (mAP uses every detection given).
        iou: the IoU from which a detection matches a box in the confusion matrix.
        worst: how many images ``compute`` lists under ``worst_images``.
    """

    def __init__(self, classes: Sequence[str], *, conf: float = 0.25, iou: float = 0.5, worst: int = 24) -> None:
        if not classes:
            raise UsageError("DetectionAccumulator needs the class names; received none.")
        for name, value in (("conf", conf), ("iou", iou)):
            if not 0.0 <= float(value) <= 1.0:
                raise UsageError(f"{name} must be in [0, 1]; received {value}.")
        self.classes = [str(c) for c in classes]
        self.conf, self.iou, self.worst = float(conf), float(iou), int(worst)
        self._index = {name: k for k, name in enumerate(self.classes)}
        self._ids: list[str] = []
        self._seen: set[str] = set()
        self._sizes: list[tuple[int, int]] = []
        self._gt: list[np.ndarray] = []
        self._dt: list[np.ndarray] = []
        self._errors: list[tuple[int, int, int]] = []
        n = len(self.classes) + 1
        self._confusion = np.zeros((n, n), np.int64)

    def __len__(self) -> int:
        return len(self._ids)

    def add(
        self, image_id: str, gt_boxes: np.ndarray, gt_labels: np.ndarray, gt_crowd: np.ndarray,
        pred: Detections, image_size: tuple[int, int], *, gt_area: np.ndarray | None = None,
    ) -> None:  # fmt: skip
        """Add one image.

        Args:
            image_id: a name unique among the images added.
            gt_boxes: ``(K, 4)`` x1, y1, x2, y2 in the original image's pixels.
            gt_labels: ``(K,)`` class indices.
            gt_crowd: ``(K,)`` COCO's ``iscrowd``: a region of many objects, never a miss,
                and detections inside it are neither matches nor false positives.
            pred: the image's detections, in the same pixels.
            image_size: ``(width, height)`` of the image.
            gt_area: ``(K,)`` the boxes' areas for the small/medium/large ranges (COCO's
                ``area``: the segmentation's area in COCO files); default the box areas.
        """
        index = self._new_image(image_id, image_size, pred)
        gt = self._gt_rows(index, gt_boxes, gt_labels, gt_crowd, gt_area)
        dt = self._dt_rows(index, pred)
        self._gt.append(gt)
        self._dt.append(dt)
        self._count_errors(gt, dt)

    def _new_image(self, image_id: str, image_size: tuple[int, int], pred: Detections) -> int:
        key, (w, h) = check_new_image(self._seen, image_id, image_size, pred.image_size, "detections")
        self._seen.add(key)
        self._ids.append(key)
        self._sizes.append((w, h))
        return len(self._ids) - 1

    def _gt_rows(
        self, index: int, boxes: np.ndarray, labels: np.ndarray, crowd: np.ndarray, gt_area: np.ndarray | None
    ) -> np.ndarray:
        b = _boxes(boxes, "gt_boxes")
        k = len(b)
        lab = _vector(labels, k, "gt_labels")
        cr = _vector(crowd, k, "gt_crowd").astype(bool)
        self._check_labels(lab, "gt_labels")
        ar = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) if gt_area is None else _vector(gt_area, k, "gt_area")
        return np.column_stack([np.full(k, index), b, lab, cr, ar]).astype(np.float64).reshape(-1, GT_COLUMNS)

    def _dt_rows(self, index: int, pred: Detections) -> np.ndarray:
        b = _boxes(pred.boxes, "detections' boxes")
        scores = np.asarray([d.score for d in pred.detections], np.float64)
        labels = np.asarray([self._label_of(d.class_id, d.label) for d in pred.detections], np.int64)
        return np.column_stack([np.full(len(b), index), b, scores, labels]).reshape(-1, DT_COLUMNS)

    def _label_of(self, class_id: int, label: str) -> int:
        if 0 <= class_id < len(self.classes):
            return int(class_id)
        if label in self._index:
            return self._index[label]
        raise UsageError(f"A detection of class {label!r} (id {class_id}) is not one of the {len(self.classes)} "
                         f"classes given to DetectionAccumulator; evaluate with the model's classes.")  # fmt: skip

    def _check_labels(self, labels: np.ndarray, what: str) -> None:
        bad = labels[(labels < 0) | (labels >= len(self.classes)) | (labels != np.round(labels))]
        if len(bad):
            raise UsageError(f"{what} must be class indices 0..{len(self.classes) - 1}; received {bad[:5].tolist()}.")

    def _count_errors(self, gt: np.ndarray, dt: np.ndarray) -> None:
        kept = dt[dt[:, 5] >= self.conf]
        m = match_image(gt[:, 1:5], gt[:, 5].astype(np.int64), gt[:, 6] > 0,
                        kept[:, 1:5], kept[:, 5], kept[:, 6].astype(np.int64), self.iou)  # fmt: skip
        cells = np.where(m.pairs < 0, len(self.classes), m.pairs)
        np.add.at(self._confusion, (cells[:, 0], cells[:, 1]), 1)
        self._errors.append((m.false_positives, m.misses, m.wrong_class))

    def compute(self) -> dict[str, Any]:
        """pycocotools' figures and the diagnostics, as JSON-ready values.

        Returns:
            ``images``, ``gt_boxes`` (not crowd), ``crowd_boxes``, ``detections``; the twelve
            ``COCOeval.stats`` by name (``map``, ``map50``, ``map75``, ``map_small``,
            ``map_medium``, ``map_large``, ``ar1``, ``ar10``, ``ar100``, ``ar_small``,
            ``ar_medium``, ``ar_large``; None where COCO gives -1: nothing to measure) and as
            the raw list ``stats``; ``per_class`` {name: {ap, ap50, gt, detections}};
            ``pr_curves`` at IoU 0.5 (``recall`` points, per-class ``precision`` and
            ``scores``); ``confusion`` (``labels`` = classes + background, ``matrix`` rows =
            true, columns = predicted, with its ``conf`` and ``iou``); ``per_image`` error
            counts; ``worst_images``, most errors first.
        """
        if not self._ids:
            raise UsageError("No images were added to the DetectionAccumulator; add() each image first.")
        gt, dt = _stack(self._gt, GT_COLUMNS), _stack(self._dt, DT_COLUMNS)
        gt_coco = coco.ground_truth(np.asarray(self._sizes, np.int64), gt, self.classes)
        ev = coco.evaluate_bbox(gt_coco, coco.results(gt_coco, dt))
        crowd = gt[:, 6] > 0
        counts = {"images": len(self._ids), "gt_boxes": int((~crowd).sum()), "crowd_boxes": int(crowd.sum()),
                  "detections": len(dt)}  # fmt: skip
        figures = {name: coco.figure(v) for name, v in zip(coco.STAT_NAMES, ev.stats, strict=True)}
        return {**counts, **figures, "stats": [float(v) for v in ev.stats],
                "per_class": self._per_class(ev, gt[~crowd], dt), "pr_curves": self._pr_curves(ev),
                "confusion": self._confusion_record(), **self._image_errors()}  # fmt: skip

    def _per_class(self, ev: Any, gt: np.ndarray, dt: np.ndarray) -> dict[str, dict[str, Any]]:
        precision = coco.precision_slice(ev)  # (T, R, K)
        n_gt = np.bincount(gt[:, 5].astype(np.int64), minlength=len(self.classes))
        n_dt = np.bincount(dt[:, 6].astype(np.int64), minlength=len(self.classes))
        return {
            name: {"ap": coco.mean_valid(precision[:, :, k]), "ap50": coco.mean_valid(precision[0, :, k]),
                   "gt": int(n_gt[k]), "detections": int(n_dt[k])}
            for k, name in enumerate(self.classes)
        }  # fmt: skip

    def _pr_curves(self, ev: Any) -> dict[str, Any]:
        precision, scores = coco.precision_slice(ev)[0], coco.precision_slice(ev, "scores")[0]  # (R, K) at IoU 0.5
        return {
            "iou": 0.5, "recall": [float(r) for r in ev.params.recThrs],
            "precision": {n: _curve(precision[:, k]) for k, n in enumerate(self.classes)},
            "scores": {n: _curve(scores[:, k]) for k, n in enumerate(self.classes)},
        }  # fmt: skip

    def _confusion_record(self) -> dict[str, Any]:
        return {"labels": [*self.classes, "background"], "matrix": self._confusion.tolist(),
                "conf": self.conf, "iou": self.iou}  # fmt: skip

    def _image_errors(self) -> dict[str, Any]:
        counts = np.asarray(self._errors, np.int64).reshape(-1, 3)
        total = counts.sum(axis=1)
        order = np.argsort(-total, kind="stable")[: self.worst]
        worst = [_worst_row(self._ids[i], counts[i]) for i in order if total[i] > 0]
        per_image = {"image_id": list(self._ids), "false_positives": counts[:, 0].tolist(),
                     "misses": counts[:, 1].tolist(), "wrong_class": counts[:, 2].tolist()}  # fmt: skip
        return {"per_image": per_image, "worst_images": worst}


def _worst_row(image_id: str, counts: np.ndarray) -> dict[str, Any]:
    fp, missed, wrong = (int(v) for v in counts)
    return {"image_id": image_id, "errors": fp + missed + wrong, "false_positives": fp, "misses": missed,
            "wrong_class": wrong}  # fmt: skip


def _boxes(boxes: Any, what: str) -> np.ndarray:
    b = np.asarray(boxes, np.float64)
    if b.size == 0:
        return np.zeros((0, 4), np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise UsageError(f"{what} must be a (K, 4) array of x1, y1, x2, y2; received shape {b.shape}.")
    bad = ~np.isfinite(b).all(axis=1) | (b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])
    if bad.any():
        raise UsageError(f"{what} must be finite x1, y1, x2, y2 with x2 >= x1 and y2 >= y1; "
                         f"received {b[bad][:3].tolist()}.")  # fmt: skip
    return b


def _vector(values: Any, k: int, what: str) -> np.ndarray:
    v = np.asarray(values).reshape(-1) if np.size(values) else np.zeros(0)
    if len(v) != k:
        raise UsageError(f"{what} must have one value per ground-truth box ({k}); received {len(v)}.")
    return v.astype(np.float64)


def _stack(rows: list[np.ndarray], width: int) -> np.ndarray:
    return np.concatenate(rows) if rows else np.zeros((0, width), np.float64)


def _curve(values: np.ndarray) -> list[float] | None:
    return None if (values <= -1).all() else [round(float(v), 6) for v in values]
