"""The training loop for detectors. It reads top to bottom like the classifier's loop and shares
its machinery: the epoch driver (:func:`imgrec.training.epochs.drive_epochs`: checkpoints, last +
best, atomic; ``--resume``, Ctrl-C, early stopping and the history), the learning-rate plan, AMP.
What differs is the data (streamed batches of images with boxes, decoded by worker threads,
boxes moved by the augmentation), the loss (the model's own loss terms, each logged per epoch)
and the validation figure (COCO mAP).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.config import TrainConfig
from imgrec.data import ImageDataset
from imgrec.data.stream import Batch, stream_batches
from imgrec.training.callbacks import Callback, Callbacks
from imgrec.training.epochs import (
    EpochRun,
    check_config,
    check_finite,
    check_trained,
    drive_epochs,
    readable_validation,
    set_up_run,
    torch_threads,
)
from imgrec.training.optim import set_lr
from imgrec.training.schedule import lr_at
from imgrec.transforms.mosaic import mosaic
from imgrec.types import History

log = logging.getLogger(__name__)
MIN_BOX_SIDE = 1.0  # input pixels; smaller boxes (after letterbox and augmentation) are not trained on


def fit_detector(
    model: Any,
    train: ImageDataset,
    val: ImageDataset | None,
    cfg: TrainConfig,
    *,
    run_dir: Path,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
    augment: Any = None,
    cycles: Sequence[int] | None = None,
    validate: Any = None,
    targets: Any = None,
) -> History:
    """Train a detector in place on a detection dataset; return the per-epoch history.

    Args:
        model: a torch detector (``imgrec.models.torch_detect.TorchDetector``).
        train: the training images with their boxes (``ImageDataset.targets``).
        val: images for ``val_map`` (model selection, early stopping), or None.
        cfg: epochs, batch size, optimizer, schedule, device, monitor (``val_map``)...
        run_dir: where ``checkpoints/`` and ``history.json`` go.
        callbacks: progress hooks.
        resume: continue from ``run_dir/checkpoints/last.safetensors``.
        augment: an ``Augmenter`` (``with_boxes`` moves the boxes with the pixels), or None.
        cycles: learning-rate cycle ends (see ``fit_torch``).
        validate: ``validate(model, val) -> ({"val_map": ..., ...}, unreadable)`` (``unreadable``:
            ``[(source, message)]``, left out of later epochs after one warning); default: no validation.
        targets: ``targets(ds, batch, augment, rng, mosaic) -> (images, [target dicts])``, what
            ``model.losses`` takes; default :func:`training_targets` (boxes and labels).

    Raises:
        TrainingInterrupted: on Ctrl-C, after saving a resumable checkpoint.
        ConfigError: a loss became NaN or infinite.
    """
    ends = list(cycles or [cfg.epochs])
    check_config(cfg, ends)
    has_val = val is not None and len(val) > 0 and validate is not None
    with torch_threads(cfg.num_threads):
        run = set_up_run(model, cfg, len(train), Path(run_dir), resume, ends)
        cbs = Callbacks(callbacks)
        return drive_epochs(
            run,
            lambda epoch: _train_epoch(run, epoch, train, augment, cbs, targets or training_targets),
            readable_validation(lambda part: validate(model, part), val) if has_val else None,
            cbs,
        )


def _train_epoch(
    run: EpochRun, epoch: int, ds: ImageDataset, augment: Any, cbs: Callback, make_targets: Any
) -> dict[str, float]:
    """One pass over the shuffled training images; returns the mean of every loss term."""
    model: Any = run.model  # a torch detector
    opt = run.optimizer
    order = run.rng.permutation(len(ds))
    sums: dict[str, float] = defaultdict(float)
    seen, bad = 0, list[tuple[str, str]]()
    for i, batch in enumerate(stream_batches(ds, model.preprocessing, order, run.cfg.batch_size)):
        images, targets = make_targets(ds, batch, augment, run.rng, run.cfg.mosaic)
        bad += batch.bad  # unreadable images, and those make_targets left out
        if not len(images):
            continue
        set_lr(opt, lr_at(run.stages, run.state.step))
        with run.amp.autocast():
            terms = model.losses(images, targets)
        loss = sum(terms.values())
        opt.zero_grad(set_to_none=True)
        run.amp.backward_and_step(loss, opt)
        run.state.step += 1
        value = float(loss.detach())
        check_finite(value, epoch, i, opt, "the boxes")
        for name, term in terms.items():
            sums[name] += float(term.detach()) * len(images)
        sums["train_loss"] += value * len(images)
        seen += len(images)
        cbs.on_batch_end(epoch + 1, i, value)
    check_trained(seen, epoch, len(ds), bad, "usable image")
    lr = float(opt.param_groups[0]["lr"])
    return {"epoch": epoch + 1, "lr": lr, **{k: v / max(1, seen) for k, v in sums.items()}}


def training_targets(
    ds: ImageDataset, batch: Batch, augment: Any, rng: np.random.Generator, mosaic_p: float = 0.0
) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    """The batch's boxes in input pixels (crowd regions left out), mosaicked and augmented with the pixels."""
    assert ds.targets is not None  # a detection dataset; checked by train()
    boxes, labels = [], []
    for i, geometry in zip(batch.indices, batch.geometries, strict=True):
        t = ds.targets[int(i)]
        keep = ~np.asarray(t.crowd, bool)
        boxes.append(np.clip(geometry.to_input(t.boxes[keep]), 0, geometry.size))
        labels.append(np.asarray(t.labels, np.int64)[keep])
    images = batch.images
    if mosaic_p > 0 and len(images) > 1:
        images, boxes, labels = mosaic(images, boxes, labels, rng, mosaic_p)
    if augment is not None and len(images):
        images, boxes, kept = augment.with_boxes(images, boxes, rng)
        labels = [lab[k] for lab, k in zip(labels, kept, strict=True)]
    return images, [_sized(b, lab) for b, lab in zip(boxes, labels, strict=True)]


def _sized(boxes: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    ok = ((b[:, 2] - b[:, 0]) >= MIN_BOX_SIDE) & ((b[:, 3] - b[:, 1]) >= MIN_BOX_SIDE)
    return {"boxes": b[ok], "labels": np.asarray(labels, np.int64)[ok]}
