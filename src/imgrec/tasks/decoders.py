"""Output layouts of one-stage detectors: raw outputs -> :class:`BoxCandidates` in input pixels.

One function per layout, registered by name (``imgrec import FILE --task detect --layout NAME``).
Every decoder receives the model's outputs for a batch (a list of arrays, in the file's output
order), the input side and the number of classes, and returns one candidate set per image,
before score threshold and NMS (the ``detect`` task does those, shared by every backend).

- ``yolox``: ``(N, A, 5 + C)``, A anchors over strides 8/16/32; ``xy = (out + grid) * stride``,
  ``wh = exp(out) * stride``; objectness and class scores are already sigmoid; score = obj * cls.
- ``yolov5``: ``(N, A, 5 + C)`` decoded in the graph: cx, cy, w, h in input pixels, obj, cls.
- ``yolov8``: ``(N, 4 + C, A)`` (YOLOv8/v11 exports): cx, cy, w, h in input pixels, class scores.
- ``fastestdet``: ``(N, 5 + C, H, W)``: objectness (sigmoid), x/y offsets (tanh), w/h (sigmoid,
  image fractions), class scores (softmax); score = obj^0.6 * cls^0.4 as upstream.
- ``ssd``: two outputs, boxes ``(N, A, 4)`` normalized x1 y1 x2 y2 and scores ``(N, A, C or C+1)``
  (a leading background column is dropped).
- ``ultraface``: the ``ssd`` layout (``scores`` ``(N, A, 2)``, index 1 = face; ``boxes`` normalized).
- ``yunet``: twelve outputs ``cls``, ``obj``, ``bbox``, ``kps`` for strides 8/16/32, each ``(N, n*n, D)``
  over an n x n grid (row-major), D = 1, 1, 4, 10; score = sqrt(cls * obj); for the cell at
  (row, col) of stride s: ``cx = (col + dx) * s``, ``cy = (row + dy) * s``, ``w = exp(dw) * s``,
  ``h = exp(dh) * s``, and 5 landmarks ``((col + kx) * s, (row + ky) * s)`` (``BoxCandidates.keypoints``).
- ``xyxy-scores``: two outputs, boxes ``(N, A, 4)`` x1 y1 x2 y2 in input pixels (clipped to the
  input here) and per-class probabilities ``(N, A, C)``; the ``PRE_NMS`` best anchors are kept.
  imgrec's own ``yolo-n``/``yolo-s`` decode their torch outputs with it, and their ONNX exports
  give exactly these two tensors, so both backends share this one postprocessing.

Example:
    >>> out = np.zeros((1, 3549, 85), np.float32)
    >>> out[0, 0, :5] = [0.5, 0.5, 0.0, 0.0, 0.9]; out[0, 0, 5] = 1.0
    >>> (c,) = decode("yolox", [out], 416, 80)
    >>> c.boxes[c.scores.argmax()].tolist(), round(float(c.scores.max()), 3)
    ([0.0, 0.0, 8.0, 8.0], 0.9)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from imgrec.errors import ModelFileError, UnknownNameError, did_you_mean
from imgrec.tasks.boxes import cxcywh_to_xyxy
from imgrec.tasks.detect import BoxCandidates

Decoder = Callable[[Sequence[np.ndarray], int, int], list[BoxCandidates]]
DECODERS: dict[str, Decoder] = {}
MIN_SCORE = 1e-3  # candidates below this are dropped before NMS, whatever conf the caller asks for
PRE_NMS = 1000  # xyxy-scores: best anchors kept per image before NMS (bounds the NMS work)


def register_decoder(name: str) -> Callable[[Decoder], Decoder]:
    def add(fn: Decoder) -> Decoder:
        DECODERS[name] = fn
        return fn

    return add


def decode(layout: str, outputs: Sequence[np.ndarray], size: int, num_classes: int) -> list[BoxCandidates]:
    """Decode a batch's raw outputs with the named layout."""
    if layout not in DECODERS:
        raise UnknownNameError(
            f"Unknown detector layout {layout!r}.{did_you_mean(layout, list(DECODERS))} "
            f"Layouts: {', '.join(sorted(DECODERS))}."
        )
    return DECODERS[layout](outputs, size, num_classes)


def _best(boxes: np.ndarray, class_scores: np.ndarray, limit: int | None = None) -> BoxCandidates:
    """One candidate per anchor: its best class (as YOLO exports are evaluated); with ``limit``,
    only that many, best score first."""
    labels = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(labels)), labels]
    keep = np.flatnonzero(scores >= MIN_SCORE)
    if limit is not None and len(keep) > limit:
        keep = keep[np.argsort(-scores[keep], kind="stable")[:limit]]
    return BoxCandidates(boxes[keep].astype(np.float32), scores[keep].astype(np.float32), labels[keep].astype(np.int64))


def _check(out: np.ndarray, ndim: int, width: int, axis: int, layout: str) -> np.ndarray:
    if out.ndim != ndim or out.shape[axis] != width:
        raise ModelFileError(f"The {layout!r} layout expects an output with {width} values on axis {axis}; "
                             f"the model gives {tuple(out.shape)}. Check --layout and --classes.")  # fmt: skip
    return np.asarray(out, np.float32)


@functools.lru_cache(maxsize=16)
def _grids(size: int, strides: tuple[int, ...] = (8, 16, 32)) -> tuple[np.ndarray, np.ndarray]:
    """Cell corners and strides of every anchor (cached: read-only arrays, the same every call)."""
    cells, steps = [], []
    for s in strides:
        n = size // s
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel()], axis=1))
        steps.append(np.full((n * n, 1), s))
    grid, stride = np.concatenate(cells).astype(np.float32), np.concatenate(steps).astype(np.float32)
    grid.flags.writeable = stride.flags.writeable = False
    return grid, stride


@register_decoder("yolox")
def yolox(outputs: Sequence[np.ndarray], size: int, num_classes: int) -> list[BoxCandidates]:
    out = _check(outputs[0], 3, 5 + num_classes, 2, "yolox")
    grid, stride = _grids(size)
    if len(grid) != out.shape[1]:
        raise ModelFileError(f"yolox at {size} px has {len(grid)} anchors; the model gives {out.shape[1]}.")
    result = []
    for o in out:
        o, g, st = _objects(o, grid, stride)
        xy, wh = (o[:, :2] + g) * st, np.exp(np.clip(o[:, 2:4], -20, 20)) * st
        boxes = cxcywh_to_xyxy(np.concatenate([xy, wh], axis=1))
        result.append(_best(boxes, o[:, 4:5] * o[:, 5:]))
    return result


def _objects(o: np.ndarray, grid: np.ndarray, stride: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The anchors whose score (objectness x class score) can reach MIN_SCORE, with their
    cells and strides: most of the 3549 anchors of a 416 px input have almost no objectness,
    and skipping them leaves the same candidates for a fraction of the work."""
    top = max(float(o[:, 5:].max(initial=0.0)), 0.0)
    keep = np.flatnonzero(o[:, 4] * np.float32(top) >= MIN_SCORE)
    return o[keep], grid[keep], stride[keep]


@register_decoder("yolov5")
def yolov5(outputs: Sequence[np.ndarray], size: int, num_classes: int) -> list[BoxCandidates]:
    out = _check(outputs[0], 3, 5 + num_classes, 2, "yolov5")
    return [_best(cxcywh_to_xyxy(o[:, :4]), o[:, 4:5] * o[:, 5:]) for o in out]


@register_decoder("yolov8")
def yolov8(outputs: Sequence[np.ndarray], size: int, num_classes: int) -> list[BoxCandidates]:
    out = _check(outputs[0], 3, 4 + num_classes, 1, "yolov8")
    return [_best(cxcywh_to_xyxy(o[:4].T), o[4:].T) for o in out]


@register_decoder("fastestdet")
def fastestdet(outputs: Sequence[np.ndarray], size: int, num_classes: int) -> list[BoxCandidates]:
    out = _check(outputs[0], 4, 5 + num_classes, 1, "fastestdet")
    _, _, h, w = out.shape
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    result = []
    for o in out:
        cx, cy = (np.tanh(o[1]) + xs) / w, (np.tanh(o[2]) + ys) / h
        bw, bh = 1 / (1 + np.exp(-o[3])), 1 / (1 + np.exp(-o[4]))
        boxes = cxcywh_to_xyxy(np.stack([cx, cy, bw, bh], axis=-1).reshape(-1, 4)) * size
        cls = o[5:].reshape(num_classes, -1).T
        obj = np.clip(o[0].reshape(-1, 1), 0, None)
        result.append(_best(boxes, obj**0.6 * np.clip(cls, 0, None) ** 0.4))
    return result


@register_decoder("ssd")
def ssd(outputs: Sequence[np.ndarray], size: int, num_classes: int) -> list[BoxCandidates]:
    if len(outputs) < 2:
        raise ModelFileError("The 'ssd' layout expects two outputs (boxes and scores); the model gives one.")
    boxes, scores = (np.asarray(o, np.float32) for o in outputs[:2])
    if boxes.shape[-1] != 4 and scores.shape[-1] == 4:
        boxes, scores = scores, boxes
    if scores.shape[-1] == num_classes + 1:
        scores = scores[..., 1:]
    _check(scores, 3, num_classes, 2, "ssd")
    return [_best(b * size, s) for b, s in zip(boxes, scores, strict=True)]


DECODERS["ultraface"] = ssd


@register_decoder("yunet")
def yunet(outputs: Sequence[np.ndarray], size: int, num_classes: int) -> list[BoxCandidates]:
    if num_classes != 1 or len(outputs) != 12:
        raise ModelFileError(f"The 'yunet' layout expects 12 outputs (cls, obj, bbox, kps per stride) and one "
                             f"class; the model gives {len(outputs)} outputs, {num_classes} classes.")  # fmt: skip
    ones = _of_width(outputs, 1, 6)
    cls, obj = _joined(ones[:3]), _joined(ones[3:])
    box, kps = _joined(_of_width(outputs, 4, 3)), _joined(_of_width(outputs, 10, 3))
    grid, stride = _grids(size)
    if len(grid) != box.shape[1] or cls.shape[1] != box.shape[1]:
        raise ModelFileError(f"yunet at {size} px has {len(grid)} anchors; the model gives {box.shape[1]}.")
    return [_yunet_one(c, o, b, k, grid, stride) for c, o, b, k in zip(cls, obj, box, kps, strict=True)]


def _of_width(outputs: Sequence[np.ndarray], width: int, count: int) -> list[np.ndarray]:
    """The 3-d outputs whose last axis is ``width``, in the file's order (cls before obj)."""
    found = [np.asarray(o, np.float32) for o in outputs if np.ndim(o) == 3 and np.shape(o)[2] == width]
    if len(found) != count:
        raise ModelFileError(f"The 'yunet' layout expects {count} outputs (N, A, {width}); the model gives "
                             f"{len(found)}: {[tuple(np.shape(o)) for o in outputs]}.")  # fmt: skip
    return found


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """One kind's outputs from the finest grid (most anchors, stride 8) to the coarsest."""
    return np.concatenate(sorted(parts, key=lambda o: -o.shape[1]), axis=1)


def _yunet_one(
    cls: np.ndarray, obj: np.ndarray, box: np.ndarray, kps: np.ndarray, grid: np.ndarray, stride: np.ndarray
) -> BoxCandidates:  # fmt: skip
    """One image: score, box and landmarks of the anchors whose score reaches MIN_SCORE."""
    score = np.sqrt(np.clip(cls[:, 0], 0, 1) * np.clip(obj[:, 0], 0, 1))
    keep = np.flatnonzero(score >= MIN_SCORE)
    g, st, b = grid[keep], stride[keep], box[keep]
    centre = (b[:, :2] + g) * st
    wh = np.exp(np.clip(b[:, 2:4], -20, 20)) * st
    points = (kps[keep].reshape(-1, 5, 2) + g[:, None]) * st[:, None]
    boxes = cxcywh_to_xyxy(np.concatenate([centre, wh], axis=1))
    return BoxCandidates(boxes.astype(np.float32), score[keep].astype(np.float32),
                         np.zeros(len(keep), np.int64), points.astype(np.float32))  # fmt: skip


@register_decoder("xyxy-scores")
def xyxy_scores(outputs: Sequence[np.ndarray], size: int, num_classes: int) -> list[BoxCandidates]:
    if len(outputs) < 2:
        raise ModelFileError("The 'xyxy-scores' layout expects two outputs (boxes and scores); the model gives one.")
    boxes = _check(np.asarray(outputs[0]), 3, 4, 2, "xyxy-scores")
    scores = _check(np.asarray(outputs[1]), 3, num_classes, 2, "xyxy-scores")
    if boxes.shape[:2] != scores.shape[:2]:
        raise ModelFileError(f"The 'xyxy-scores' layout expects boxes (N, A, 4) and scores (N, A, C) over the same "
                             f"anchors; the model gives {boxes.shape} and {scores.shape}.")  # fmt: skip
    clipped = np.clip(boxes, 0.0, float(size))
    return [_best(b, s, PRE_NMS) for b, s in zip(clipped, scores, strict=True)]
