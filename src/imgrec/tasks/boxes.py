"""Box arithmetic on numpy arrays: format conversion, IoU and (class-aware) non-maximum suppression.

Boxes are ``(K, 4)`` float arrays of x1, y1, x2, y2 in pixels. NMS is written here in numpy
rather than taken from ``torchvision.ops``: detectors imported as ONNX or TFLite files must not
pull in torch (a 1 GB import) to serve, and on the few hundred candidates a detector leaves
after its score threshold the numpy version takes well under a millisecond.

Example:
    >>> b = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32)
    >>> nms(b, np.array([0.9, 0.8, 0.7]), 0.5).tolist()
    [0, 2]
"""

from __future__ import annotations

import numpy as np


def cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    """Centre, width, height -> corners."""
    b = np.asarray(b, np.float32)
    half = b[..., 2:4] / 2
    return np.concatenate([b[..., :2] - half, b[..., :2] + half], axis=-1)


def xyxy_to_xywh(b: np.ndarray) -> np.ndarray:
    """Corners -> top-left, width, height (COCO's ``bbox``)."""
    b = np.asarray(b, np.float32)
    return np.concatenate([b[..., :2], b[..., 2:4] - b[..., :2]], axis=-1)


def area(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, np.float32)
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU ``(len(a), len(b))``."""
    a, b = np.asarray(a, np.float32).reshape(-1, 4), np.asarray(b, np.float32).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, max_keep: int | None = None) -> np.ndarray:
    """Indices kept by greedy NMS, best score first; the first ``max_keep`` only, when given
    (greedy NMS keeps boxes in score order, so stopping there changes nothing before it)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    x1, y1, x2, y2 = (np.ascontiguousarray(b[:, i]) for i in range(4))
    areas = area(b)
    keep: list[int] = []
    limit = len(order) if max_keep is None else max_keep
    while order.size and len(keep) < limit:
        best, rest = int(order[0]), order[1:]
        keep.append(best)
        # box_iou(b[best], b[rest]), with the same float32 operations, on precomputed columns
        w = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = w * h
        union = areas[best] + areas[rest] - inter
        overlap = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        order = rest[overlap <= iou]
    return np.asarray(keep, np.int64)


def batched_nms(
    boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou: float, max_keep: int | None = None
) -> np.ndarray:
    """NMS within each class (boxes of different classes never suppress each other)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    shift = (np.asarray(labels, np.float32) * (float(boxes.max()) + 1.0))[:, None]
    keep = nms(boxes + shift, scores, iou, max_keep)
    return keep
