"""``instance``: every object with its box, class, score and mask (instance segmentation).

Instance models return :class:`InstanceCandidates` per image: decoded boxes in input pixels
(before threshold and NMS, like detectors' :class:`~imgrec.tasks.detect.BoxCandidates`) and one
mask per box over the whole model input (``(K, h, w)`` probabilities or logits at any
resolution, e.g. the input's, or a quarter of it). This task thresholds, filters classes,
runs class-aware NMS, maps the boxes back, and upsamples each kept mask to the original
pixels (bilinear on the probability, then ``threshold``; a map over its own box, as Mask R-CNN
gives, is pasted into the box's original pixels), one object at a time, straight into
a compressed RLE: a 12-megapixel photo with 100 objects holds 100 RLEs, not 1.2 GB of masks.

Example:
    >>> from imgrec.transforms.frame import Geometry
    >>> m = np.zeros((1, 4, 4), np.float32); m[0, 1:3, 1:3] = 1.0
    >>> c = InstanceCandidates(np.array([[1, 1, 3, 3]], np.float32), np.array([0.9]), np.array([0]), m)
    >>> g = Geometry(original=(8, 8), scale=(0.5, 0.5), offset=(0.0, 0.0), size=4)
    >>> (res,) = INSTANCE.postprocess([c], [g], [None], ["cat"], INSTANCE.options())
    >>> res.instances[0].box, res.instances[0].area
    ((2.0, 2.0, 6.0, 6.0), 16)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imgrec.errors import UsageError
from imgrec.tasks.base import Task, register_task
from imgrec.tasks.boxes import batched_nms
from imgrec.tasks.detect import DETECT, _class_filter
from imgrec.tasks.upsample import box_region, upsample
from imgrec.transforms.frame import Geometry


@dataclass(frozen=True)
class InstanceCandidates:
    """Decoded objects of one image before NMS, in input pixels.

    Attributes:
        boxes: ``(K, 4)`` x1 y1 x2 y2.
        scores: ``(K,)``.
        labels: ``(K,)`` class indices.
        masks: ``(K, h, w)`` per-object maps over the whole input (``mask_frame="input"``), or
            each over its own box (``"box"``: Mask R-CNN's 28 x 28 maps).
        mask_kind: ``"probabilities"`` or ``"logits"`` (sigmoid applied here).
        mask_frame: what each map covers, ``"input"`` or ``"box"``.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    mask_kind: str = "probabilities"
    mask_frame: str = "input"


@dataclass(frozen=True)
class Instance:
    """One object: box (original pixels), class, score, and its mask as a compressed COCO RLE.

    ``extra``: what else the model says about the object, written into its JSON next to the rest
    (promptable segmenters: the prompt's index, the detector's score of a box prompt, SAM's
    stability score).
    """

    box: tuple[float, float, float, float]
    label: str
    score: float
    class_id: int
    rle: dict[str, Any] = field(repr=False)
    area: int = 0
    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def mask(self) -> np.ndarray:
        """The bool ``(H, W)`` mask (decoded now)."""
        from imgrec.data.rle import rle_segment

        return rle_segment(self.rle).decode()

    def to_dict(self) -> dict[str, Any]:
        counts = self.rle["counts"]
        text = counts.decode("ascii") if isinstance(counts, bytes) else counts
        mask = {"size": list(self.rle["size"]), "counts": text}
        return {"box": [round(v, 2) for v in self.box], "label": self.label, "score": round(self.score, 6),
                "area": self.area, **self.extra, "mask": mask}  # fmt: skip


@dataclass(frozen=True)
class Instances:
    """Every object found in one image, best score first."""

    instances: tuple[Instance, ...] = ()
    image_size: tuple[int, int] = (0, 0)
    path: str | None = None

    def __len__(self) -> int:
        return len(self.instances)

    @property
    def boxes(self) -> np.ndarray:
        return np.asarray([d.box for d in self.instances], np.float32).reshape(-1, 4)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "image_size": list(self.image_size),
                "instances": [d.to_dict() for d in self.instances]}  # fmt: skip

    def to_png(self) -> bytes:
        """The objects as one index PNG: 0 = none, k = the k-th instance (smaller masks over larger
        ones where they overlap); a palette PNG up to 254 instances, else 16-bit."""
        from imgrec.imaging.masks import encode_mask_png, label_palette

        w, h = self.image_size
        index = np.zeros((h, w), np.uint8 if len(self) < 255 else np.uint16)
        for k in sorted(range(len(self)), key=lambda i: -self.instances[i].area):
            index[self.instances[k].mask()] = k + 1
        return encode_mask_png(index, label_palette() if index.dtype == np.uint8 else None)


class InstanceTask(Task):
    """Instance segmentation: boxes, classes, scores and a mask per object."""

    name, aliases = "instance", ("instance-segmentation",)
    description = "every object with its outline: a box, a class, a score and a mask"
    batch_size = 8

    def options(self, *, threshold: float | None = None, **given: Any) -> dict[str, Any]:
        opts = DETECT.options(**given)
        threshold = 0.5 if threshold is None else threshold
        if not 0.0 <= float(threshold) <= 1.0:
            raise UsageError(f"threshold (mask binarization) must be in [0, 1]; received {threshold}.")
        return {**opts, "threshold": float(threshold)}

    def forward(self, model: Any, batch: np.ndarray) -> list[InstanceCandidates]:
        return list(model.segment_instances(batch))

    def postprocess(
        self, raw: Sequence[Any], geometries: Sequence[Geometry], names: Sequence[str | None],
        classes: Sequence[str], options: Mapping[str, Any],
    ) -> list[Instances]:  # fmt: skip
        wanted = _class_filter(options.get("classes") or [], classes)
        return [_one(c, g, n, classes, options, wanted) for c, g, n in zip(raw, geometries, names, strict=True)]


def _one(
    c: InstanceCandidates, geometry: Geometry, name: str | None, classes: Sequence[str],
    options: Mapping[str, Any], wanted: np.ndarray | None,
) -> Instances:  # fmt: skip
    from imgrec.data.rle import encode_rle, encode_rle_region

    scores, labels = np.asarray(c.scores, np.float32), np.asarray(c.labels, np.int64)
    keep = scores >= options["conf"]
    if wanted is not None:
        keep &= np.isin(labels, wanted)
    idx = np.flatnonzero(keep)
    order = idx[batched_nms(np.asarray(c.boxes)[idx], scores[idx], labels[idx], options["iou"], options["max_det"])]
    boxes = geometry.to_original(np.asarray(c.boxes)[order])
    frames = geometry.to_original(np.asarray(c.boxes)[order], clip=False)  # what a box-frame map covers
    found = []
    for box, frame, k in zip(boxes, frames, order.tolist(), strict=True):
        m: np.ndarray = np.asarray(c.masks[k], np.float32)
        if c.mask_kind == "logits":
            m = (1.0 / (1.0 + np.exp(-m))).astype(np.float32)
        if c.mask_frame == "box":  # only the box's pixels are resampled and encoded
            region, at = box_region(m, frame, geometry.original, options["threshold"])
            rle, area = encode_rle_region(region, at, geometry.original), int(region.sum())
        else:
            binary = upsample(m, geometry) >= options["threshold"]
            rle, area = encode_rle(binary), int(binary.sum())
        lab = int(labels[k])
        found.append(Instance(tuple(float(v) for v in box), classes[lab], float(scores[k]), lab,  # type: ignore[arg-type]
                              rle, area))  # fmt: skip
    return Instances(tuple(found), geometry.original, name)


INSTANCE = register_task(InstanceTask())
