"""``imgrec.train`` for instance segmentation (Mask R-CNN): the detector's steps, loop, run folder
and checkpoints (:mod:`imgrec.training.detect_api`), with masks in the targets and mask AP next
to box AP in the figures. ``train()`` comes here when the data or the model is an ``instance`` one.

Training targets: each image's objects (crowd regions left out) are painted into one id mask in
the image's pixels (object ``n`` -> ``n + 1``; the largest first, so a small object in front of
a large one keeps its overlap; an object without a segment fills its box), placed like the image
in the model input (nearest neighbour, padding 0), moved with the pixels by the augmentation's
own matrices (the boxes by the same ones), and split into one ``(S, S)`` uint8 mask per object.
An image whose masks were drawn on another size than its own (a wrong stated size) is left out
of its batch like an unreadable image: it joins ``Batch.bad``, and the loop warns once per run
with the count and the first few (not once per batch and epoch).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.config import TrainConfig
from imgrec.data import ImageDataset
from imgrec.data.stream import Batch
from imgrec.errors import ConfigError, DataError
from imgrec.evaluation import evaluate_instances, write_instance_report
from imgrec.training import detect_api
from imgrec.training.callbacks import Callback
from imgrec.training.detect_loop import MIN_BOX_SIDE
from imgrec.transforms.boxes import transform_boxes
from imgrec.transforms.masks import warp_masks


def instance_targets(
    ds: ImageDataset, batch: Batch, augment: Any, rng: np.random.Generator, mosaic_p: float = 0.0
) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    """The batch's boxes, labels and per-object masks in input pixels, augmented with the pixels.

    An image whose masks cannot be placed on it is left out and added to ``batch.bad``.
    """
    assert ds.targets is not None  # an instance dataset; checked by train()
    boxes, labels, ids, rows = [], [], [], []
    for k, (i, geometry) in enumerate(zip(batch.indices, batch.geometries, strict=True)):
        t = ds.targets[int(i)]
        keep = np.flatnonzero(~np.asarray(t.crowd, bool))
        try:
            ids.append(geometry.mask_to_input(id_mask(t, keep, geometry.original), fill=0))
        except DataError as exc:  # masks drawn on another size: the image is left out, like an unreadable one
            batch.bad.append((ds.sources[int(i)], str(exc)))
            continue
        rows.append(k)
        boxes.append(np.clip(geometry.to_input(t.boxes[keep]), 0, geometry.size))
        labels.append(np.asarray(t.labels, np.int64)[keep])
    images, objects = batch.images[rows], [np.arange(len(b)) for b in boxes]
    if augment is not None and len(images):
        images, matrices = augment.augment(images, rng)
        h, w = images.shape[1:3]
        moved = [transform_boxes(b, matrices[k], (w, h)) for k, b in enumerate(boxes)]
        boxes, objects = [b for b, _ in moved], [o[kept] for o, (_, kept) in zip(objects, moved, strict=True)]
        labels = [lab[o] for lab, o in zip(labels, objects, strict=True)]
        ids = list(warp_masks(np.stack(ids), matrices, augment.config.fill, 0)) if ids else ids
    return images, [_sized(*parts) for parts in zip(boxes, labels, ids, objects, strict=True)]


def id_mask(target: Any, keep: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` ids of the objects ``keep`` (``n + 1`` for ``keep[n]``, 0 = none), largest painted first."""
    w, h = size
    out = np.zeros((h, w), np.uint8 if len(keep) < 255 else np.uint16)
    areas = [_area(target, int(k)) for k in keep]
    for n in np.argsort(areas, kind="stable")[::-1].tolist():
        seg = target.segments[int(keep[n])]
        if seg is None:
            x1, y1, x2, y2 = np.round(target.boxes[int(keep[n])]).astype(int).tolist()
            out[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = n + 1
            continue
        if tuple(seg.size) != (h, w):  # checked before decoding: a stated size may be huge
            raise DataError(f"its masks are {seg.size[1]}x{seg.size[0]} but the image is {w}x{h}; expected the "
                            "image's pixels (imgrec data check lists such masks).")  # fmt: skip
        out[seg.decode()] = n + 1
    return out


def _area(target: Any, k: int) -> float:
    x1, y1, x2, y2 = target.boxes[k]
    return float((x2 - x1) * (y2 - y1))


def _sized(boxes: np.ndarray, labels: np.ndarray, ids: np.ndarray, objects: np.ndarray) -> dict[str, np.ndarray]:
    """Objects with boxes of at least MIN_BOX_SIDE, each with its ``(S, S)`` mask."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    ok = ((b[:, 2] - b[:, 0]) >= MIN_BOX_SIDE) & ((b[:, 3] - b[:, 1]) >= MIN_BOX_SIDE)
    masks = np.stack([ids == n + 1 for n in np.asarray(objects)[ok].tolist()]) if ok.any() else None
    if masks is None:
        masks = np.zeros((0, *ids.shape), np.uint8)
    return {"boxes": b[ok], "labels": np.asarray(labels, np.int64)[ok], "masks": masks.astype(np.uint8)}


INSTANCE = detect_api.BoxTask(
    "instance", "instance segmenter", "instance segmentation", "boxes and masks",
    "Give COCO JSON with polygons or RLE, read with --task instance (see `imgrec data check`).",
    evaluate_instances, write_instance_report, ("map", "map50", "mask_map", "mask_map50"),
    ("val_mask_map", "val_mask_map50", "val_map", "val_map50"), instance_targets,
)  # fmt: skip


def check_pair(ds: ImageDataset, model_name: str) -> None:
    """An instance segmenter needs masks, and masks read as instances need one; mosaic is refused."""
    detect_api.check_detection_pair(ds, model_name, INSTANCE)


def build(cfg: TrainConfig, ds: ImageDataset, resume: bool = False) -> Any:
    """The Mask R-CNN of ``cfg`` for ``ds``'s classes (before any run folder exists)."""
    if cfg.mosaic > 0:
        raise ConfigError(f"mosaic is not available for instance segmentation (masks); received mosaic={cfg.mosaic}. "
                          "Leave it at 0.")  # fmt: skip
    return detect_api.build_detector(cfg, ds)


def fit_and_evaluate(
    model: Any, parts: Any, cfg: TrainConfig, run_dir: Path, callbacks: Sequence[Callback], resume: bool,
    cycles: list[int],
) -> tuple[Any, dict[str, Any], float]:  # fmt: skip
    """Train, then evaluate the kept weights on val and test; returns (history, results, seconds)."""
    return detect_api.fit_and_evaluate(model, parts, cfg, run_dir, callbacks, resume, cycles, INSTANCE)


def save_run(
    model: Any, run_dir: Path, cfg: TrainConfig, ds: ImageDataset, parts: Any, results: dict[str, Any],
    history: Any, seconds: float,
) -> dict[str, Any]:  # fmt: skip
    """model.json (with the figures and the kept epoch), metrics.json and the report."""
    return detect_api.save_detection_run(model, run_dir, cfg, ds, parts, results, history, seconds, INSTANCE)
