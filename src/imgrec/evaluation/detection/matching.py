"""Per-image matching for the detection confusion matrix and the error counts.

Predictions at or above a confidence threshold are matched, best score first, to the
unmatched ground-truth box of any class with the highest IoU, if that IoU reaches the
threshold (0.5). A match adds one to cell (true class, predicted class); an unmatched
prediction adds one to (background, predicted class) and is a false positive; an unmatched
box adds one to (true class, background) and is a miss. As in pycocotools, crowd regions
(``iscrowd``) are never missed, and a prediction left unmatched that lies mostly inside one
(intersection over the prediction's area at or above the threshold) counts nowhere.

Cost: O(D x G) per image for D predictions and G boxes (one IoU matrix), with a Python
loop over the D kept predictions.

Example:
    >>> gt = np.array([[0, 0, 10, 10]], np.float64)
    >>> m = match_image(gt, np.array([1]), np.array([False]), gt, np.array([0.9]), np.array([0]), 0.5)
    >>> m.pairs.tolist(), (m.false_positives, m.misses, m.wrong_class)
    ([[1, 0]], (0, 0, 1))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imgrec.tasks.boxes import area, box_iou

BACKGROUND = -1


@dataclass(frozen=True)
class ImageMatch:
    """The outcome for one image.

    Attributes:
        pairs: ``(M, 2)`` (true class, predicted class) per counted event; -1 is background.
        false_positives: predictions that matched no box (and no crowd region).
        misses: non-crowd boxes no prediction matched.
        wrong_class: matches whose predicted class is not the box's class.
    """

    pairs: np.ndarray
    false_positives: int
    misses: int
    wrong_class: int


def match_image(
    gt_boxes: np.ndarray, gt_labels: np.ndarray, gt_crowd: np.ndarray,
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou: float,
) -> ImageMatch:  # fmt: skip
    """Match one image's kept predictions to its boxes (see the module docstring)."""
    real = ~gt_crowd
    truth, true_labels = gt_boxes[real], gt_labels[real]
    order = np.argsort(-scores, kind="stable")
    boxes, labels = boxes[order], labels[order]
    gt_of = _greedy(box_iou(boxes, truth), iou)
    matched = gt_of >= 0
    loose = ~matched & ~_in_crowd(boxes, gt_boxes[gt_crowd], iou)
    missed = np.ones(len(truth), bool)
    missed[gt_of[matched]] = False
    pairs = np.concatenate([
        np.stack([true_labels[gt_of[matched]], labels[matched]], axis=1),
        np.stack([np.full(int(loose.sum()), BACKGROUND), labels[loose]], axis=1),
        np.stack([true_labels[missed], np.full(int(missed.sum()), BACKGROUND)], axis=1),
    ]).astype(np.int64)  # fmt: skip
    wrong = int((true_labels[gt_of[matched]] != labels[matched]).sum())
    return ImageMatch(pairs.reshape(-1, 2), int(loose.sum()), int(missed.sum()), wrong)


def _greedy(ious: np.ndarray, threshold: float) -> np.ndarray:
    """For each row (predictions, best first) the column it takes, or -1."""
    taken = np.zeros(ious.shape[1], bool)
    out = np.full(ious.shape[0], -1, np.int64)
    if ious.shape[1] == 0:
        return out
    for i, row in enumerate(ious):
        free = np.where(taken, -1.0, row)
        j = int(free.argmax())
        if free[j] >= threshold:
            out[i], taken[j] = j, True
    return out


def _in_crowd(boxes: np.ndarray, crowd: np.ndarray, threshold: float) -> np.ndarray:
    """Whether each box lies inside a crowd region (intersection over its own area, as
    pycocotools' IoU against ``iscrowd`` boxes)."""
    if len(crowd) == 0 or len(boxes) == 0:
        return np.zeros(len(boxes), bool)
    lt = np.maximum(boxes[:, None, :2], crowd[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], crowd[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    own = np.maximum(area(boxes), 1e-12)[:, None]
    return np.asarray(np.any(inter / own >= threshold, axis=1), bool)
