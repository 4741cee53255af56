"""``segment``: the class of every pixel (semantic segmentation).

Segmentation backends (torch, ONNX, TFLite) return one raw map per image over the model
input, in one of three layouts, and this task turns any of them into a :class:`Segmentation`
in the original image's pixels:

- ``(C, h, w)`` float scores (logits, or probabilities with :class:`SegmentOutput`): bilinear
  upsampling one class at a time, then argmax (:mod:`imgrec.tasks.upsample`);
- ``(h, w)`` integer class indices (argmax inside the graph, e.g. DeepLabV3 on Coral):
  nearest neighbour (``Geometry.mask_to_original``);
- ``(1, h, w)`` / ``(h, w)`` float: one sigmoid channel of a binary model (MediaPipe's selfie
  segmenter): the probability is upsampled, then ``threshold`` splits class 1 (foreground)
  from class 0 (background).

Probabilities are kept at the model's resolution (``C x h x w``, small) and upsampled one class
at a time when asked (:meth:`Segmentation.probability`, the cut-out's soft edge).

Example:
    >>> from imgrec.transforms.frame import Geometry
    >>> g = Geometry(original=(4, 4), scale=(1.0, 1.0), offset=(0.0, 0.0), size=4)
    >>> logits = np.zeros((2, 4, 4), np.float32); logits[1, :, 2:] = 5.0
    >>> (seg,) = SEGMENT.postprocess([logits], [g], ["a.jpg"], ["background", "cat"], SEGMENT.options())
    >>> seg.mask.tolist()[0], [s["label"] for s in seg.to_dict()["segments"]]
    ([0, 0, 1, 1], ['cat'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from imgrec.errors import UsageError
from imgrec.tasks.base import Task, register_task
from imgrec.tasks.detect import _class_filter
from imgrec.tasks.upsample import argmax_upsampled, upsample
from imgrec.transforms.frame import Geometry

RAW_KINDS = ("logits", "probabilities", "index")


@dataclass(frozen=True)
class SegmentOutput:
    """A raw map that says what it holds (a bare array is judged by its dtype and channels).

    Attributes:
        values: ``(C, h, w)`` scores, ``(h, w)`` indices, or ``(1, h, w)`` one binary channel.
        kind: ``"logits"`` (softmax / sigmoid applied here), ``"probabilities"`` or ``"index"``.
    """

    values: np.ndarray
    kind: str = "logits"


@dataclass(frozen=True)
class Segmentation:
    """The class of every pixel of one image.

    Attributes:
        mask: ``(H, W)`` uint8 (uint16 beyond 256 classes) class indices, the original's size.
        classes: the model's class names (``mask`` indexes them).
        image_size: ``(width, height)`` of the original image.
        path: where the image came from.
        probabilities: ``(C, h, w)`` float32 class probabilities at the model's resolution, or
            None (index-map models).
        geometry: where the image lay in the model input (maps ``probabilities`` back).
    """

    mask: np.ndarray
    classes: tuple[str, ...]
    image_size: tuple[int, int]
    path: str | None = None
    probabilities: np.ndarray | None = field(default=None, repr=False, compare=False)
    geometry: Geometry | None = field(default=None, repr=False, compare=False)

    @cached_property
    def scores(self) -> dict[str, float]:
        """Per class present, the mean probability of its pixels (at the model's resolution);
        empty for index-map models. Computed on first read (a mask alone does not pay for it)."""
        return _scores(self.probabilities, self.classes)

    def present(self) -> list[int]:
        """Class indices that cover at least one pixel."""
        counts = np.bincount(self.mask.reshape(-1), minlength=len(self.classes))
        return [int(c) for c in np.flatnonzero(counts[: len(self.classes)])]

    def probability(self, label: str | int) -> np.ndarray:
        """The ``(H, W)`` float32 probability of one class at the original resolution (bilinear)."""
        if self.probabilities is None or self.geometry is None:
            raise UsageError("This segmentation holds no probabilities (the model gives class indices only).")
        k = label if isinstance(label, int) else self.classes.index(label)
        return np.clip(upsample(self.probabilities[k], self.geometry), 0.0, 1.0)

    def to_png(self) -> bytes:
        """The mask as an index PNG (palette PNG with the VOC colours; 16-bit beyond 256 classes)."""
        from imgrec.imaging.masks import encode_mask_png

        return encode_mask_png(self.mask)

    def to_dict(self, *, background: bool = False) -> dict[str, Any]:
        """JSON: per class present, its pixels as a COCO RLE (``{"size": [h, w], "counts": str}``).

        Args:
            background: also list class 0 when it is ``background``.
        """
        from imgrec.data.rle import encode_rle

        skip = not background and self.classes and self.classes[0].lower() == "background"
        segments = []
        for c in self.present():
            if c == 0 and skip:
                continue
            rle = encode_rle(self.mask == c)
            seg: dict[str, Any] = {"label": self.classes[c], "class_id": c, "area": int((self.mask == c).sum()),
                                   "rle": {"size": rle["size"], "counts": rle["counts"].decode("ascii")}}  # fmt: skip
            if self.classes[c] in self.scores:
                seg["score"] = round(self.scores[self.classes[c]], 6)
            segments.append(seg)
        return {"path": self.path, "image_size": list(self.image_size), "segments": segments}


class SegmentTask(Task):
    """Semantic segmentation: a class per pixel."""

    name, aliases = "segment", ("segmentation", "semantic")
    description = "a class for every pixel (semantic segmentation)"
    batch_size = 8

    def options(
        self, *, threshold: float | None = None, classes: Sequence[str] | None = None, **other: Any
    ) -> dict[str, Any]:
        given = {k: v for k, v in other.items() if v is not None}
        if given:
            raise UsageError(f"Option(s) {', '.join(sorted(given))} do not apply to segmentation models.")
        threshold = 0.5 if threshold is None else threshold
        if not 0.0 <= float(threshold) <= 1.0:
            raise UsageError(f"threshold must be in [0, 1]; received {threshold}.")
        return {"threshold": float(threshold), "classes": list(classes or [])}

    def forward(self, model: Any, batch: np.ndarray) -> list[Any]:
        return list(model.segment(batch))

    def postprocess(
        self, raw: Sequence[Any], geometries: Sequence[Geometry], names: Sequence[str | None],
        classes: Sequence[str], options: Mapping[str, Any],
    ) -> list[Segmentation]:  # fmt: skip
        wanted = _class_filter(options.get("classes") or [], classes)
        return [
            segmentation(r, g, n, classes, options.get("threshold", 0.5), wanted)
            for r, g, n in zip(raw, geometries, names, strict=True)
        ]


def segmentation(
    raw: Any, geometry: Geometry, name: str | None, classes: Sequence[str], threshold: float = 0.5,
    wanted: np.ndarray | None = None,
) -> Segmentation:  # fmt: skip
    """One raw map -> a :class:`Segmentation` in original pixels (see the module docstring)."""
    values, kind = (raw.values, raw.kind) if isinstance(raw, SegmentOutput) else (np.asarray(raw), "")
    values = np.asarray(values)
    if kind not in ("", *RAW_KINDS):
        raise UsageError(f"SegmentOutput.kind must be one of {', '.join(RAW_KINDS)}; received {kind!r}.")
    if kind == "index" or values.dtype.kind in "uib":
        mask, proba = _from_index(values, geometry, len(classes)), None
    elif values.ndim == 2 or values.shape[0] == 1:
        mask, proba = _from_sigmoid(values.reshape(values.shape[-2:]), geometry, kind, threshold, len(classes))
    else:
        mask, proba = _from_scores(values, geometry, kind, len(classes), wanted)
    if wanted is not None:
        mask = np.where(np.isin(mask, wanted), mask, 0).astype(mask.dtype)
    return Segmentation(mask, tuple(classes), geometry.original, name, proba, geometry)


def _from_index(values: np.ndarray, geometry: Geometry, n: int) -> np.ndarray:
    idx = values.reshape(values.shape[-2:])
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= max(n, 1)):
        raise UsageError(f"The model's index map holds values {int(idx.min())}..{int(idx.max())}; "
                         f"it has {n} classes.")  # fmt: skip
    return geometry.mask_to_original(idx.astype(np.uint8 if n <= 256 else np.uint16))


def _from_sigmoid(
    values: np.ndarray, geometry: Geometry, kind: str, threshold: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    if n != 2:
        raise UsageError(f"A one-channel (sigmoid) output needs 2 classes (background, foreground); received {n}.")
    p: np.ndarray = np.asarray(values, np.float32)
    if kind == "logits":
        p = (1.0 / (1.0 + np.exp(-p))).astype(np.float32)
    full = upsample(p, geometry)
    mask = np.empty(full.shape, np.uint8)
    np.greater_equal(full, np.float32(threshold), out=mask.view(bool))
    proba = np.empty((2, *p.shape), np.float32)  # [1 - p, p], written in place (no stacked temporaries)
    np.subtract(np.float32(1.0), p, out=proba[0])
    proba[1] = p
    return mask, proba


def _from_scores(
    values: np.ndarray, geometry: Geometry, kind: str, n: int, wanted: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if values.ndim != 3 or values.shape[0] != n:
        raise UsageError(f"Expected (C, h, w) scores with C = {n} classes; received {values.shape}.")
    scores = values.astype(np.float32)
    proba = scores if kind == "probabilities" else _softmax(scores)
    consider = None if wanted is None else np.unique(np.concatenate([[0], wanted]))
    return argmax_upsampled(scores, geometry, consider), proba


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=0, keepdims=True))
    out: np.ndarray = e / e.sum(axis=0, keepdims=True)
    return out


def _scores(proba: np.ndarray | None, classes: Sequence[str]) -> dict[str, float]:
    """Per class that wins somewhere at the model's resolution, the mean of its winning
    probabilities (a running maximum over classes, ties to the lower index like argmax)."""
    if proba is None:
        return {}
    if len(proba) == 2:  # one sigmoid channel: class 1 wins where p1 > p0 (masked sums are slow in numpy)
        win = (proba[1] > proba[0]).reshape(-1).astype(np.float32)
        n1 = int(win.sum())
        s1 = float(np.einsum("i,i->", proba[1].reshape(-1), win, dtype=np.float64))
        s0 = float(np.maximum(proba[0], proba[1]).sum(dtype=np.float64)) - s1
        pairs = ((win.size - n1, s0), (n1, s1))
        return {classes[c]: total / n for c, (n, total) in enumerate(pairs) if n}
    best = proba[0].copy()
    top = np.zeros(best.shape, np.intp)
    for c in range(1, len(proba)):
        better = proba[c] > best
        np.copyto(best, proba[c], where=better)
        top[better] = c
    counts = np.bincount(top.reshape(-1), minlength=len(proba))
    sums = np.bincount(top.reshape(-1), weights=best.reshape(-1), minlength=len(proba))
    return {classes[c]: float(sums[c] / counts[c]) for c in np.flatnonzero(counts).tolist()}


SEGMENT = register_task(SegmentTask())
