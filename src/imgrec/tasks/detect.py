"""``detect``: boxes around every object, with a class and a score.

Detector backends (torch, ONNX, TFLite) return :class:`BoxCandidates` per image, in model-input
pixels, after their layout's decoding (:mod:`imgrec.tasks.decoders`). This task does what is
common to all of them: score threshold, class filter, class-aware NMS, the ``max_det`` best,
and the mapping back to the original image's pixels through the preprocessing's geometry.
Detectors that find keypoints with each box (face detectors: 5 landmarks) return them in
``BoxCandidates.keypoints``; they follow their box through NMS and the geometry and end in
``Detection.landmarks``.

Example:
    >>> from imgrec.transforms.frame import Geometry
    >>> cands = BoxCandidates(np.array([[10, 10, 50, 50]], np.float32), np.array([0.9]), np.array([1]))
    >>> g = Geometry(original=(200, 200), scale=(0.5, 0.5), offset=(0.0, 0.0), size=100)
    >>> (det,) = DETECT.postprocess([cands], [g], ["a.jpg"], ["cat", "dog"], DETECT.options())
    >>> det.detections[0].label, det.detections[0].box
    ('dog', (20.0, 20.0, 100.0, 100.0))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgrec.errors import UsageError
from imgrec.tasks.base import Task, register_task
from imgrec.tasks.boxes import batched_nms
from imgrec.transforms.frame import Geometry

MAX_DET_LIMIT = 10_000


@dataclass(frozen=True)
class BoxCandidates:
    """Decoded boxes of one image before NMS: ``boxes`` (K, 4) x1 y1 x2 y2 in input pixels,
    ``scores`` (K,), ``labels`` (K,) class indices, and optionally ``keypoints`` (K, P, 2)
    x, y in input pixels (P points per box, e.g. a face's 5 landmarks)."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    keypoints: np.ndarray | None = None

    @classmethod
    def empty(cls) -> BoxCandidates:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


@dataclass(frozen=True)
class Detection:
    """One object: its box in original-image pixels (x1, y1, x2, y2), class and score, and the
    keypoints its detector found with it (``landmarks``: ``((x, y), ...)`` in original pixels;
    face detectors give 5: the eye on the image's left, the other eye, the nose tip, the mouth
    corner on the image's left, the other mouth corner), or None."""

    box: tuple[float, float, float, float]
    label: str
    score: float
    class_id: int = -1
    landmarks: tuple[tuple[float, float], ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"box": [round(v, 2) for v in self.box], "label": self.label,
                               "score": round(self.score, 6)}  # fmt: skip
        if self.landmarks is not None:
            out["landmarks"] = [[round(x, 2), round(y, 2)] for x, y in self.landmarks]
        return out


@dataclass(frozen=True)
class Detections:
    """Every object found in one image, best score first.

    Attributes:
        detections: the objects.
        image_size: ``(width, height)`` of the original image the boxes refer to.
        path: where the image came from, when it came from a file.
    """

    detections: tuple[Detection, ...] = ()
    image_size: tuple[int, int] = (0, 0)
    path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.detections)

    @property
    def boxes(self) -> np.ndarray:
        return np.asarray([d.box for d in self.detections], np.float32).reshape(-1, 4)

    @property
    def scores(self) -> np.ndarray:
        return np.asarray([d.score for d in self.detections], np.float32)

    @property
    def class_ids(self) -> np.ndarray:
        return np.asarray([d.class_id for d in self.detections], np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "image_size": list(self.image_size),
                "detections": [d.to_dict() for d in self.detections]}  # fmt: skip


class DetectTask(Task):
    """Object detection: boxes, classes and scores per image."""

    name, aliases = "detect", ("detection",)
    description = "where things are: a box, a class and a score for every object"
    batch_size = 8  # detectors take larger images; 8 keeps a batch's activations small on a CPU

    def options(
        self, *, conf: float | None = None, iou: float | None = None, max_det: int | None = None,
        classes: Sequence[str] | None = None, **other: Any,
    ) -> dict[str, Any]:  # fmt: skip
        given = {k: v for k, v in other.items() if v is not None}
        if given:
            raise UsageError(f"Option(s) {', '.join(sorted(given))} do not apply to detection models.")
        conf = 0.25 if conf is None else conf
        iou = 0.45 if iou is None else iou
        max_det = 100 if max_det is None else max_det
        for name, value in (("conf", conf), ("iou", iou)):
            if not 0.0 <= float(value) <= 1.0:
                raise UsageError(f"{name} must be in [0, 1]; received {value}.")
        if isinstance(max_det, bool) or not isinstance(max_det, int) or not 1 <= max_det <= MAX_DET_LIMIT:
            raise UsageError(f"max_det must be an integer from 1 to {MAX_DET_LIMIT}; received {max_det!r}.")
        return {"conf": float(conf), "iou": float(iou), "max_det": max_det, "classes": list(classes or [])}

    def forward(self, model: Any, batch: np.ndarray) -> list[BoxCandidates]:
        return list(model.detect(batch))

    def postprocess(
        self, raw: Sequence[Any], geometries: Sequence[Geometry], names: Sequence[str | None],
        classes: Sequence[str], options: Mapping[str, Any],
    ) -> list[Detections]:  # fmt: skip
        wanted = _class_filter(options.get("classes") or [], classes)
        return [
            _one(c, g, n, classes, options, wanted) for c, g, n in zip(raw, geometries, names, strict=True)
        ]


def _class_filter(names: Sequence[str], classes: Sequence[str]) -> np.ndarray | None:
    if not names:
        return None
    unknown = [n for n in names if n not in classes]
    if unknown:
        raise UsageError(f"Unknown class(es) {', '.join(map(repr, unknown))}; the model knows {len(classes)}: "
                         f"{', '.join(list(classes)[:12])}{' ...' if len(classes) > 12 else ''}.")  # fmt: skip
    return np.asarray([list(classes).index(n) for n in names], np.int64)


def _one(
    c: BoxCandidates, geometry: Geometry, name: str | None, classes: Sequence[str],
    options: Mapping[str, Any], wanted: np.ndarray | None,
) -> Detections:  # fmt: skip
    keep = np.asarray(c.scores) >= options["conf"]
    if wanted is not None:
        keep &= np.isin(c.labels, wanted)
    boxes, scores, labels = c.boxes[keep], np.asarray(c.scores)[keep], np.asarray(c.labels)[keep]
    order = batched_nms(boxes, scores, labels, options["iou"], options["max_det"])
    mapped = geometry.to_original(boxes[order])
    points = _landmarks(c.keypoints, keep, order, geometry)
    found = tuple(
        Detection(tuple(float(v) for v in box), classes[int(lab)], float(s), int(lab), pts)  # type: ignore[arg-type]
        for box, s, lab, pts in zip(mapped, scores[order], labels[order], points, strict=True)
    )
    return Detections(found, geometry.original, name)


def _landmarks(
    keypoints: np.ndarray | None, keep: np.ndarray, order: np.ndarray, geometry: Geometry
) -> list[tuple[tuple[float, float], ...] | None]:
    """The kept candidates' keypoints in original pixels (None per box when the detector gives none)."""
    if keypoints is None:
        return [None] * len(order)
    mapped = geometry.points_to_original(np.asarray(keypoints, np.float32)[keep][order])
    return [tuple((float(x), float(y)) for x, y in pts) for pts in mapped]


DETECT = register_task(DetectTask())
