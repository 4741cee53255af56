"""The training loop for segmenters. It reads top to bottom like the detector's loop and shares
the epoch driver (:func:`imgrec.training.epochs.drive_epochs`: checkpoints, ``--resume``, Ctrl-C,
early stopping, history), the learning-rate plan and AMP. What differs: the data (images and
their index masks decoded by worker threads a batch ahead, masks placed like their images in
the input, tiled with them by ``mosaic_masks`` when ``mosaic`` > 0, moved with the pixels by
``Augmenter.with_masks``), the loss (pixel cross-entropy that skips the ignore index, plus
``dice_loss`` x soft Dice when asked) and the validation figure (``val_miou``, measured as
``imgrec evaluate`` measures it).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from imgrec.config import TrainConfig
from imgrec.data import ImageDataset
from imgrec.data.masks import ignore_index_for
from imgrec.data.stream import Batch, stream_chunks
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
from imgrec.transforms.mosaic import mosaic_masks
from imgrec.types import History

log = logging.getLogger(__name__)
EPS = 1.0  # soft Dice smoothing, in pixels


def fit_segmenter(
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
) -> History:
    """Train a segmenter in place on a ``segment`` dataset; return the per-epoch history.

    Args:
        model: a torch segmenter (``imgrec.models.torch_segment.TorchSegmenter``).
        train: the training images with their masks (``ImageDataset.masks``), classes = the model's.
        val: images for ``val_miou`` (model selection, early stopping), or None.
        cfg: epochs, batch size, optimizer, schedule, device, ``dice_loss``, monitor (``val_miou``)...
        run_dir: where ``checkpoints/`` and ``history.json`` go.
        callbacks: progress hooks.
        resume: continue from ``run_dir/checkpoints/last.safetensors``.
        augment: an ``Augmenter`` (``with_masks`` moves the masks with the pixels), or None.
        cycles: learning-rate cycle ends (see ``fit_torch``).
        validate: ``validate(model, val) -> ({"val_miou": ..., ...}, unreadable)`` (``unreadable``:
            ``[(source, message)]``, left out of later epochs after one warning); default: no validation.

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
            lambda epoch: _train_epoch(run, epoch, train, augment, cbs),
            readable_validation(lambda part: validate(model, part), val) if has_val else None,
            cbs,
        )


def _train_epoch(run: EpochRun, epoch: int, ds: ImageDataset, augment: Any, cbs: Callback) -> dict[str, float]:
    """One pass over the shuffled training images; returns the mean of every loss term."""
    model, opt = run.model, run.optimizer
    model.train_mode()
    order = run.rng.permutation(len(ds))
    chunks = [order[s] for s in run.slices]  # a last batch of one joins the one before (BatchNorm)
    ignore = ignore_index_for(model.num_classes)
    sums: dict[str, float] = defaultdict(float)
    seen, bad = 0, list[tuple[str, str]]()
    for i, batch in enumerate(stream_chunks(ds, model.preprocessing, chunks, masks=True)):
        bad += batch.bad
        images, masks = training_masks(ds, batch, augment, run.rng, model.num_classes, run.cfg.mosaic)
        if len(images) < 2 < len(ds) or not (masks != ignore).any():
            continue  # nothing to learn from (unreadable items, all pixels ignored)
        set_lr(opt, lr_at(run.stages, run.state.step))
        with run.amp.autocast():
            logits = model.logits(model.normalize(images))
        terms = segment_losses(logits.float(), torch.as_tensor(masks, device=logits.device), ignore, run.cfg.dice_loss)
        loss = torch.stack(list(terms.values())).sum()
        opt.zero_grad(set_to_none=True)
        run.amp.backward_and_step(loss, opt)
        run.state.step += 1
        value = float(loss.detach())
        check_finite(value, epoch, i, opt, "the masks")
        for name, term in terms.items():
            sums[name] += float(term.detach()) * len(images)
        sums["train_loss"] += value * len(images)
        seen += len(images)
        cbs.on_batch_end(epoch + 1, i, value)
    check_trained(seen, epoch, len(ds), bad, "labeled pixel (their masks hold only ignored pixels)")
    lr = float(opt.param_groups[0]["lr"])
    return {"epoch": epoch + 1, "lr": lr, **{k: v / max(1, seen) for k, v in sums.items()}}


def training_masks(
    ds: ImageDataset, batch: Batch, augment: Any, rng: np.random.Generator, num_classes: int, mosaic_p: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """The batch's images and int64 ``(N, S, S)`` class masks in input pixels, mosaicked (probability
    ``mosaic_p``) and augmented together.

    Padding, the data's ignore index and values that are no class become the model's ignore
    index (255, or 65535 beyond 255 classes); so does a mosaic's canvas where no image is.
    """
    ignore = ignore_index_for(num_classes)
    pairs = zip(batch.geometries, batch.masks or [], strict=True)
    placed = [g.mask_to_input(m, fill=ds.ignore_index) for g, m in pairs]
    masks = np.stack(placed) if placed else np.zeros((0, *batch.images.shape[1:3]), np.uint8)
    masks = np.where(masks < num_classes, masks, ignore).astype(np.uint8 if ignore == 255 else np.uint16)
    images = batch.images
    if mosaic_p > 0 and len(images) > 1:
        images, masks = mosaic_masks(images, masks, rng, mosaic_p, ignore)
    if augment is not None and len(images):
        images, masks = augment.with_masks(images, masks, rng, ignore_index=ignore)
    return images, masks.astype(np.int64)


def segment_losses(
    logits: torch.Tensor, target: torch.Tensor, ignore: int, dice: float = 0.0
) -> dict[str, torch.Tensor]:
    """``ce_loss`` (pixel cross-entropy, ``ignore`` left out) and, with ``dice`` > 0, ``dice_loss``
    = ``dice`` x (1 - soft Dice averaged over the classes in the batch's truth).

    Example:
        >>> logits = torch.tensor([[[[4.0, -4.0]], [[-4.0, 4.0]]]])  # (1, 2, 1, 2): a perfect guess
        >>> terms = segment_losses(logits, torch.tensor([[[0, 1]]]), 255, dice=1.0)
        >>> round(float(terms["ce_loss"]), 4), round(float(terms["dice_loss"]), 2)
        (0.0003, 0.0)
    """
    terms = {"ce_loss": F.cross_entropy(logits, target, ignore_index=ignore)}
    if dice > 0:
        terms["dice_loss"] = dice * soft_dice_loss(logits, target, ignore)
    return terms


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore: int) -> torch.Tensor:
    """1 - mean over the classes present in ``target`` of 2|P∩T| / (|P| + |T|), on softmax
    probabilities, ignored pixels left out."""
    c = logits.shape[1]
    valid = (target != ignore).unsqueeze(1)
    probs = torch.softmax(logits, dim=1) * valid
    onehot = F.one_hot(target.clamp(0, c - 1), c).permute(0, 3, 1, 2).to(probs.dtype) * valid
    inter = (probs * onehot).sum(dim=(0, 2, 3))
    total = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
    present = onehot.sum(dim=(0, 2, 3)) > 0
    dice = (2 * inter + EPS) / (total + EPS)
    return 1.0 - dice[present].mean() if bool(present.any()) else logits.sum() * 0.0
