"""Semantic segmentation metrics from one pixel confusion matrix, filled image by image.

``update(pred, target)`` adds one image: ``np.bincount(target * C + pred)`` over the pixels
whose target is a class (the ignore index and values outside the classes are left out), so
memory is ``C x C`` counts whatever the number of images. From the matrix (rows: truth,
columns: prediction): per-class IoU ``TP / (TP + FP + FN)``, Dice ``2 TP / (2 TP + FP + FN)``,
per-class accuracy (recall) ``TP / (TP + FN)``; mIoU and mean Dice over the classes present
in the truth or the predictions (a class never seen nor predicted has no IoU: NaN, left out
of the means, like mmsegmentation's ``nanmean``); pixel accuracy ``trace / total``.

Boundary F1 (optional, ``boundary=True``): per class, the boundary pixels of prediction and
truth are matched within a tolerance of ``max(1, round(0.0075 x image diagonal))`` pixels
(the DAVIS/Csurka convention); precision, recall and F1 are summed over images per class.

Example:
    >>> acc = SegmentationAccumulator(3)
    >>> acc.update(np.array([[0, 1], [1, 2]]), np.array([[0, 1], [2, 255]]))
    >>> acc.confusion.tolist()
    [[1, 0, 0], [0, 1, 0], [0, 1, 0]]
    >>> [round(v, 3) for v in acc.iou().tolist()], round(acc.pixel_accuracy(), 3)
    ([1.0, 0.5, 0.0], 0.667)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from imgrec.errors import UsageError

BOUNDARY_FRACTION = 0.0075


class SegmentationAccumulator:
    """Accumulates pixel counts over images.

    Args:
        num_classes: the number of classes (indices 0..C-1).
        ignore_index: the truth value of pixels to leave out.
        classes: class names, for :meth:`summary`.
        boundary: also accumulate boundary F1 (costs a few morphology passes per class per image).
    """

    def __init__(self, num_classes: int, ignore_index: int = 255, classes: Sequence[str] | None = None,
                 boundary: bool = False) -> None:  # fmt: skip
        if num_classes < 1:
            raise UsageError(f"num_classes must be at least 1; received {num_classes}.")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.classes = list(classes) if classes is not None else [str(k) for k in range(num_classes)]
        self.boundary = boundary
        self.confusion = np.zeros((num_classes, num_classes), np.int64)
        self._bf = np.zeros((num_classes, 4), np.int64)  # matched pred, pred, matched truth, truth
        self.images = 0

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        """Add one image: ``pred`` and ``target`` are ``(H, W)`` class-index maps of the same size."""
        p, t = np.asarray(pred), np.asarray(target)
        if p.shape != t.shape:
            raise UsageError(f"Prediction {p.shape} and target {t.shape} differ in size; map the prediction "
                             "to the image's pixels first (Geometry.mask_to_original).")  # fmt: skip
        c = self.num_classes
        valid = (t != self.ignore_index) & (t >= 0) & (t < c)
        tv, pv = t[valid].astype(np.int64), p[valid].astype(np.int64)
        if pv.size and (pv.min() < 0 or pv.max() >= c):
            raise UsageError(f"Predicted class indices must be in 0..{c - 1}; received {pv.min()}..{pv.max()}.")
        self.confusion += np.bincount(tv * c + pv, minlength=c * c).reshape(c, c)
        if self.boundary:
            self._bf += boundary_counts(p, t, c, self.ignore_index)
        self.images += 1

    def _parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cm = self.confusion.astype(np.float64)
        tp = np.diag(cm)
        return tp, cm.sum(axis=0) - tp, cm.sum(axis=1) - tp

    def iou(self) -> np.ndarray:
        """Per-class IoU (NaN for a class neither in the truth nor predicted)."""
        tp, fp, fn = self._parts()
        return _ratio(tp, tp + fp + fn)

    def dice(self) -> np.ndarray:
        """Per-class Dice / F1 (NaN like :meth:`iou`)."""
        tp, fp, fn = self._parts()
        return _ratio(2 * tp, 2 * tp + fp + fn)

    def class_accuracy(self) -> np.ndarray:
        """Per-class pixel recall (NaN for a class absent from the truth)."""
        tp, _, fn = self._parts()
        return _ratio(tp, tp + fn)

    def miou(self) -> float:
        return _nanmean(self.iou())

    def pixel_accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else float("nan")

    def boundary_f1(self) -> np.ndarray:
        """Per-class boundary F1 (NaN for a class with no boundary in truth or prediction)."""
        if not self.boundary:
            raise UsageError("Boundary F1 was not accumulated; create the accumulator with boundary=True.")
        mp, np_, mt, nt = (self._bf[:, k].astype(np.float64) for k in range(4))
        precision, recall = _ratio(mp, np_), _ratio(mt, nt)
        f1 = _ratio(2 * precision * recall, precision + recall)
        return np.where(np.isnan(precision) | np.isnan(recall), np.nan, np.nan_to_num(f1))

    def summary(self) -> dict[str, Any]:
        """JSON-able figures: ``miou``, ``pixel_accuracy``, ``mean_dice``, ``mean_accuracy``, per class."""
        iou, dice, acc = self.iou(), self.dice(), self.class_accuracy()
        per = {name: {"iou": _num(iou[k]), "dice": _num(dice[k]), "accuracy": _num(acc[k]),
                      "pixels": int(self.confusion[k].sum())} for k, name in enumerate(self.classes)}  # fmt: skip
        out = {"images": self.images, "miou": _num(self.miou()), "pixel_accuracy": _num(self.pixel_accuracy()),
               "mean_dice": _num(_nanmean(dice)), "mean_accuracy": _num(_nanmean(acc)), "per_class": per}  # fmt: skip
        if self.boundary:
            bf = self.boundary_f1()
            out["boundary_f1"] = _num(_nanmean(bf))
            for k, name in enumerate(self.classes):
                per[name]["boundary_f1"] = _num(bf[k])
        return out


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def _nanmean(v: np.ndarray) -> float:
    v = v[~np.isnan(v)]
    return float(v.mean()) if len(v) else float("nan")


def _num(v: float) -> float | None:
    return None if np.isnan(v) else round(float(v), 6)


def boundary_counts(pred: np.ndarray, target: np.ndarray, num_classes: int, ignore: int) -> np.ndarray:
    """``(C, 4)``: per class, pred boundary pixels near a truth boundary, pred boundary pixels,
    truth boundary pixels near a pred boundary, truth boundary pixels (one image)."""
    import cv2

    h, w = target.shape
    radius = max(1, round(BOUNDARY_FRACTION * float(np.hypot(h, w))))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    valid = target != ignore
    out = np.zeros((num_classes, 4), np.int64)
    for c in np.union1d(np.unique(pred[valid]), np.unique(target[valid])).tolist():
        if not 0 <= c < num_classes:
            continue
        bp, bt = _edge(pred == c) & valid, _edge(target == c) & valid
        near_t = cv2.dilate(bt.astype(np.uint8), disk) > 0
        near_p = cv2.dilate(bp.astype(np.uint8), disk) > 0
        out[c] = (int((bp & near_t).sum()), int(bp.sum()), int((bt & near_p).sum()), int(bt.sum()))
    return out


def _edge(mask: np.ndarray) -> np.ndarray:
    import cv2

    m = mask.astype(np.uint8)
    eroded = cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return (m > 0) & (eroded == 0)
