"""``MaskAccumulator``: COCO mask AP (pycocotools' ``COCOeval`` with ``iouType="segm"``), one image at a time.

``add`` takes one image's ground truth (labels, crowd flags, COCO areas and each object's
compressed RLE) and its :class:`~imgrec.tasks.instance.Instances`; ``compute`` builds
COCO-format ground truth and results in memory and runs ``COCOeval(..., "segm")``: the
figures are pycocotools' own (mask mAP@[.5:.95], @.5, @.75, by size, AR), named like the box
figures with a ``mask_`` prefix, plus per-class mask AP. Alongside, each image gets a mask
quality figure: the mean, over its objects, of the best mask IoU a same-class prediction
scoring at least ``conf`` reaches (``mask_iou``), to list the images whose outlines are worst.

An object without a mask (its segment is None: a box-only annotation, or a segmentation that
could not be read) counts as a crowd region shaped like its box: it is never a miss, and a
predicted mask inside it is neither a match nor a false positive.

Memory: only compressed RLEs are kept (a few bytes per run), never a decoded mask; per object
one float row. ``compute`` builds pycocotools' per-object dicts while it runs.

Example:
    >>> from imgrec.data.rle import encode_rle
    >>> from imgrec.tasks.instance import Instance, Instances
    >>> m = np.zeros((8, 10), bool); m[2:6, 3:8] = True
    >>> acc = MaskAccumulator(["cat", "dog"])
    >>> pred = Instances((Instance((3.0, 2.0, 8.0, 6.0), "dog", 0.9, 1, encode_rle(m), 20),), (10, 8))
    >>> acc.add("a", (10, 8), np.array([1]), np.array([False]), [encode_rle(m)], pred)
    >>> out = acc.compute()
    >>> round(out["mask_map"], 6), round(out["per_class"]["dog"]["mask_ap50"], 6), out["per_image"]["mask_iou"]
    (1.0, 1.0, [1.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from imgrec.errors import UsageError
from imgrec.evaluation.detection import coco
from imgrec.evaluation.detection.accumulator import check_new_image
from imgrec.tasks.instance import Instances

GT_COLUMNS, DT_COLUMNS = 4, 4  # image, label, crowd, area | image, score, label, area
Rle = dict[str, Any]


class MaskAccumulator:
    """COCO mask metrics over a stream of images (see the module docstring).

    Args:
        classes: the class names; ground-truth labels and ``Instance.class_id`` index them.
        conf: the score from which a prediction counts in each image's ``mask_iou`` (mask AP
            uses every prediction given).
        worst: how many images ``compute`` lists under ``worst_mask_images``.
    """

    def __init__(self, classes: Sequence[str], *, conf: float = 0.25, worst: int = 24) -> None:
        if not classes:
            raise UsageError("MaskAccumulator needs the class names; received none.")
        if not 0.0 <= float(conf) <= 1.0:
            raise UsageError(f"conf must be in [0, 1]; received {conf}.")
        self.classes = [str(c) for c in classes]
        self.conf, self.worst = float(conf), int(worst)
        self._index = {name: k for k, name in enumerate(self.classes)}
        self._ids: list[str] = []
        self._seen: set[str] = set()
        self._sizes: list[tuple[int, int]] = []
        self._gt: list[np.ndarray] = []
        self._dt: list[np.ndarray] = []
        self._gt_counts: list[bytes] = []
        self._dt_counts: list[bytes] = []
        self._quality: list[float | None] = []
        self._no_mask = 0

    def __len__(self) -> int:
        return len(self._ids)

    def add(
        self, image_id: str, image_size: tuple[int, int], gt_labels: np.ndarray, gt_crowd: np.ndarray,
        gt_masks: Sequence[Rle | None], pred: Instances, *, gt_boxes: np.ndarray | None = None,
        gt_area: np.ndarray | None = None,
    ) -> None:  # fmt: skip
        """Add one image.

        Args:
            image_id: a name unique among the images added.
            image_size: ``(width, height)`` of the image; every RLE must be ``[height, width]``.
            gt_labels: ``(K,)`` class indices.
            gt_crowd: ``(K,)`` COCO's ``iscrowd``: a region of many objects, never a miss, and
                predictions inside it are neither matches nor false positives.
            gt_masks: ``K`` compressed RLEs (``{"size": [h, w], "counts": bytes}``), None for an
                object without a mask (then a crowd region shaped like its box in ``gt_boxes``).
            pred: the image's predicted instances, in the same pixels.
            gt_boxes: ``(K, 4)`` x1, y1, x2, y2; needed only for objects without a mask.
            gt_area: ``(K,)`` the areas for the small/medium/large ranges (COCO's ``area``);
                default each mask's own pixel count.
        """
        key, (w, h) = self._check_image(image_id, image_size, pred)
        labels, crowd, rles, no_mask = self._ground_truth(gt_labels, gt_crowd, gt_masks, gt_boxes, (h, w))
        area = _areas(rles) if gt_area is None else _vector(gt_area, len(labels), "gt_area")
        dt_rles = [_checked(d.rle, (h, w), f"the predicted mask of {d.label!r} in {key!r}") for d in pred.instances]
        scores = np.asarray([d.score for d in pred.instances], np.float64)
        dt_labels = np.asarray([self._label_of(d.class_id, d.label) for d in pred.instances], np.int64)
        quality = self._image_quality(labels, crowd, rles, scores, dt_labels, dt_rles)
        index = len(self._ids)  # every check passed: keep the image
        self._seen.add(key)
        self._ids.append(key)
        self._sizes.append((w, h))
        self._no_mask += no_mask
        self._quality.append(quality)
        self._gt.append(np.column_stack([np.full(len(labels), index), labels, crowd, area]).reshape(-1, GT_COLUMNS))
        self._gt_counts += [r["counts"] for r in rles]
        self._dt.append(np.column_stack([np.full(len(scores), index), scores, dt_labels, _areas(dt_rles)])
                        .reshape(-1, DT_COLUMNS))  # fmt: skip
        self._dt_counts += [r["counts"] for r in dt_rles]

    def _check_image(self, image_id: str, image_size: tuple[int, int], pred: Instances) -> tuple[str, tuple[int, int]]:
        return check_new_image(self._seen, image_id, image_size, pred.image_size, "instances")

    def _ground_truth(
        self, gt_labels: np.ndarray, gt_crowd: np.ndarray, gt_masks: Sequence[Rle | None],
        gt_boxes: np.ndarray | None, hw: tuple[int, int],
    ) -> tuple[np.ndarray, np.ndarray, list[Rle], int]:  # fmt: skip
        """Labels, crowd flags (objects without a mask included), one RLE per object, and how
        many objects had no mask."""
        masks = list(gt_masks)
        labels, crowd = _vector(gt_labels, len(masks), "gt_labels"), _vector(gt_crowd, len(masks), "gt_crowd") > 0
        bad = labels[(labels < 0) | (labels >= len(self.classes)) | (labels != np.round(labels))]
        if len(bad):
            last = len(self.classes) - 1
            raise UsageError(f"gt_labels must be class indices 0..{last}; received {bad[:5].tolist()}.")
        missing = [k for k, m in enumerate(masks) if m is None]
        if missing:
            boxes = _box_regions(gt_boxes, len(masks), missing, hw)
            masks = [boxes.get(k) if m is None else m for k, m in enumerate(masks)]
            crowd[missing] = True
        rles = [_checked(m, hw, "a ground-truth mask") for m in masks]
        return labels, crowd.astype(np.float64), rles, len(missing)

    def _label_of(self, class_id: int, label: str) -> int:
        if 0 <= class_id < len(self.classes):
            return int(class_id)
        if label in self._index:
            return self._index[label]
        raise UsageError(f"An instance of class {label!r} (id {class_id}) is not one of the {len(self.classes)} "
                         f"classes given to MaskAccumulator; evaluate with the model's classes.")  # fmt: skip

    def _image_quality(
        self, labels: np.ndarray, crowd: np.ndarray, rles: list[Rle], scores: np.ndarray, dt_labels: np.ndarray,
        dt_rles: list[Rle],
    ) -> float | None:  # fmt: skip
        """Mean over the objects (not crowd) of the best mask IoU of a same-class prediction >= conf."""
        objects = np.flatnonzero(crowd == 0)
        if not len(objects):
            return None
        kept = np.flatnonzero(scores >= self.conf)
        if not len(kept):
            return 0.0
        mask_utils = _mask_utils()
        ious = np.asarray(mask_utils.iou([dt_rles[i] for i in kept], [rles[k] for k in objects], [0] * len(objects)))
        same = dt_labels[kept][:, None] == labels[objects][None, :]
        return float(np.where(same, ious.reshape(len(kept), len(objects)), 0.0).max(axis=0).mean())

    def compute(self) -> dict[str, Any]:
        """pycocotools' mask figures and each image's mask quality, as JSON-ready values.

        Returns:
            ``gt_masks`` (objects with a mask, not crowd), ``ignored_masks`` (crowd regions and
            objects without a mask), ``no_mask`` (objects without a mask), ``mask_detections``;
            the twelve ``COCOeval.stats`` of ``segm`` named like the box ones with a ``mask_``
            prefix (``mask_map``, ``mask_map50``, ``mask_map75``, ``mask_map_small``, ...,
            ``mask_ar100``, ...; None where COCO gives -1) and as the raw list ``mask_stats``;
            ``per_class`` {name: {mask_ap, mask_ap50}}; ``per_image`` {image_id, mask_iou};
            ``worst_mask_images`` (``image_id``, ``mask_iou``, lowest first); ``mask_conf``.
        """
        if not self._ids:
            raise UsageError("No images were added to the MaskAccumulator; add() each image first.")
        gt, dt = _stack(self._gt, GT_COLUMNS), _stack(self._dt, DT_COLUMNS)
        sizes = np.asarray(self._sizes, np.int64)
        ev = coco.evaluate(coco.in_memory(sizes, self.classes, self._gt_annotations(gt)),
                           coco.in_memory(sizes, self.classes, self._dt_annotations(dt)), "segm")  # fmt: skip
        crowd = gt[:, 2] > 0
        counts = {"gt_masks": int((~crowd).sum()), "ignored_masks": int(crowd.sum()), "no_mask": self._no_mask,
                  "mask_detections": len(dt)}  # fmt: skip
        figures = {f"mask_{name}": coco.figure(v) for name, v in zip(coco.STAT_NAMES, ev.stats, strict=True)}
        return {**counts, **figures, "mask_stats": [float(v) for v in ev.stats], "per_class": self._per_class(ev),
                "mask_conf": self.conf, **self._image_quality_record()}  # fmt: skip

    def _gt_annotations(self, gt: np.ndarray) -> list[dict[str, Any]]:
        return [
            {"id": n + 1, "image_id": int(i) + 1, "category_id": int(k) + 1, "area": float(a), "iscrowd": int(c),
             "segmentation": self._rle(int(i), counts)}
            for n, ((i, k, c, a), counts) in enumerate(zip(gt.tolist(), self._gt_counts, strict=True))
        ]  # fmt: skip

    def _dt_annotations(self, dt: np.ndarray) -> list[dict[str, Any]]:
        return [
            {"id": n + 1, "image_id": int(i) + 1, "category_id": int(k) + 1, "score": float(s), "area": float(a),
             "iscrowd": 0, "segmentation": self._rle(int(i), counts)}
            for n, ((i, s, k, a), counts) in enumerate(zip(dt.tolist(), self._dt_counts, strict=True))
        ]  # fmt: skip

    def _rle(self, image: int, counts: bytes) -> Rle:
        w, h = self._sizes[image]
        return {"size": [h, w], "counts": counts}

    def _per_class(self, ev: Any) -> dict[str, dict[str, Any]]:
        precision = coco.precision_slice(ev)  # (T, R, K)
        return {
            name: {"mask_ap": coco.mean_valid(precision[:, :, k]), "mask_ap50": coco.mean_valid(precision[0, :, k])}
            for k, name in enumerate(self.classes)
        }

    def _image_quality_record(self) -> dict[str, Any]:
        rated = sorted((q, n) for n, q in enumerate(self._quality) if q is not None)
        worst = [{"image_id": self._ids[n], "mask_iou": round(q, 6)} for q, n in rated[: self.worst]]
        quality = [None if q is None else round(q, 6) for q in self._quality]
        per_image = {"image_id": list(self._ids), "mask_iou": quality}
        return {"per_image": per_image, "worst_mask_images": worst}


def _mask_utils() -> Any:
    coco.pycocotools()  # a DependencyError that says what to install
    from pycocotools import mask as mask_utils

    return mask_utils


def _checked(rle: Any, hw: tuple[int, int], what: str) -> Rle:
    """A compressed RLE of an ``hw`` image (pycocotools scores masks of other sizes as IoU -1, silently)."""
    if not isinstance(rle, dict) or "counts" not in rle or "size" not in rle:
        raise UsageError(f"{what} must be a compressed COCO RLE {{'size': [h, w], 'counts': bytes}}; "
                         f"received {type(rle).__name__}.")  # fmt: skip
    size = tuple(int(v) for v in rle["size"])
    if size != tuple(hw):
        raise UsageError(f"{what} is {size[1]}x{size[0]} (width x height) but the image is {hw[1]}x{hw[0]}; "
                         "give masks in the original image's pixels.")  # fmt: skip
    counts = rle["counts"]
    if isinstance(counts, list):
        raise UsageError(f"{what} has uncompressed counts; compress it (pycocotools.mask.frPyObjects).")
    return {"size": list(size), "counts": counts.encode("ascii") if isinstance(counts, str) else bytes(counts)}


def _box_regions(boxes: Any, k: int, which: list[int], hw: tuple[int, int]) -> dict[int, Rle]:
    """Box-shaped RLEs for the objects ``which`` (those without a mask)."""
    b = np.asarray(boxes if boxes is not None else np.zeros((0, 4)), np.float64).reshape(-1, 4)
    if len(b) != k:
        raise UsageError(f"{len(which)} object(s) have no mask, so gt_boxes (one per object, {k}) is needed to "
                         f"mark their regions; received {len(b)} boxes.")  # fmt: skip
    xywh = coco.xywh(b[which])
    rles = _mask_utils().frPyObjects(np.ascontiguousarray(xywh), hw[0], hw[1])
    return dict(zip(which, rles, strict=True))


def _areas(rles: list[Rle]) -> np.ndarray:
    if not rles:
        return np.zeros(0, np.float64)
    return np.asarray(_mask_utils().area(rles), np.float64).reshape(-1)


def _vector(values: Any, k: int, what: str) -> np.ndarray:
    v = np.asarray(values).reshape(-1) if np.size(values) else np.zeros(0)
    if len(v) != k:
        raise UsageError(f"{what} must have one value per ground-truth object ({k}); received {len(v)}.")
    return v.astype(np.float64)


def _stack(rows: list[np.ndarray], width: int) -> np.ndarray:
    return np.concatenate(rows) if rows else np.zeros((0, width), np.float64)
