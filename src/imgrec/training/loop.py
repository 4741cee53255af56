"""The torch training loop: ``fit_torch``. It reads top to bottom, nanoGPT style.

The images come from :class:`~imgrec.data.prepared.PreparedImages` (a memory cache when the
split fits, else decoded by worker threads a batch ahead), or from prepared arrays.

One epoch = shuffle, then for each batch: set the scheduled learning rate, augment, normalize,
forward (autocast on CUDA), loss (label smoothing, class weights), backward, step. Around the
epochs, :func:`imgrec.training.epochs.drive_epochs` (shared with the detection and segmentation
loops): validate, pick the best, write ``checkpoints/`` and ``history.json`` atomically, tell
the callbacks, Ctrl-C and resume. At the end the best weights are loaded into the model.

Same seed, same data, same CPU: same numbers (see :func:`seed_everything`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from imgrec.config import TrainConfig
from imgrec.data.prepared import PreparedImages
from imgrec.models.torch_classifier import TorchClassifier
from imgrec.training.callbacks import Callback, Callbacks
from imgrec.training.data import as_prepared, batch_slices, class_weights, evaluate_split
from imgrec.training.epochs import EpochRun, check_config, check_finite, drive_epochs, start_state, torch_threads
from imgrec.training.optim import Amp, default_lr, make_optimizer, pick_device, set_lr
from imgrec.training.schedule import lr_at, plan_cycles, stage_at_epoch
from imgrec.types import History

log = logging.getLogger(__name__)
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def seed_everything(seed: int) -> None:
    """Seed torch, numpy's legacy global and Python's ``random`` (call before building a model)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fit_torch(
    model: TorchClassifier,
    train: PreparedImages | tuple[np.ndarray, np.ndarray],
    val: PreparedImages | tuple[np.ndarray, np.ndarray] | None,
    cfg: TrainConfig,
    *,
    run_dir: Path,
    callbacks: Sequence[Callback] = (),
    resume: bool = False,
    augment: Augment | None = None,
    cycles: Sequence[int] | None = None,
) -> History:
    """Train ``model`` in place; return the per-epoch history.

    Args:
        model: a torch classifier from ``create_model``.
        train: the training images: a scanned :class:`PreparedImages`, or prepared uint8
            NHWC ``(images, labels)`` arrays.
        val: the same for model selection and early stopping, or None (then the last epoch
            is the best).
        cfg: epochs, batch size, optimizer, schedule, regularization, device...
        run_dir: where ``checkpoints/`` and ``history.json`` go.
        callbacks: progress hooks.
        resume: continue from ``run_dir/checkpoints/last.safetensors``.
        augment: ``augment(batch, rng) -> batch`` on uint8 NHWC training batches.
        cycles: the epochs at which each learning-rate cycle ends, the last one
            ``cfg.epochs``; default ``[cfg.epochs]``. A finished N-epoch run is extended to M
            epochs by resuming it with ``cfg.epochs = M`` and ``cycles = [N, M]`` (a warm
            restart, see ``imgrec.training.schedule.plan_cycles``).

    Raises:
        TrainingInterrupted: on Ctrl-C, after saving a resumable checkpoint.
        ConfigError: the loss became NaN or infinite (training stops at once).

    Example:
        >>> import numpy as np, tempfile
        >>> from imgrec.config import TrainConfig
        >>> from imgrec.models import create_model
        >>> x = np.random.default_rng(0).integers(0, 255, (16, 12, 12, 3), dtype=np.uint8)
        >>> y = np.arange(16) % 2
        >>> m = create_model("cnn-bn", ["a", "b"], image_size=12)
        >>> h = fit_torch(m, (x, y), None, TrainConfig(epochs=1, batch_size=8), run_dir=Path(tempfile.mkdtemp()))
        >>> [row["epoch"] for row in h.epochs]
        [1]
    """
    train_images = as_prepared(train, model, "train")
    val_images = as_prepared(val, model, "val") if val is not None else None
    if val_images is not None and len(val_images) == 0:
        val_images = None  # an empty validation split is no validation
    ends = list(cycles or [cfg.epochs])
    check_config(cfg, ends)
    with torch_threads(cfg.num_threads):
        run = _set_up(model, cfg, train_images.labels, Path(run_dir), resume, ends)
        cbs = Callbacks(callbacks)
        history = drive_epochs(
            run,
            lambda epoch: _train_epoch(run, epoch, train_images, augment, cbs),
            None if val_images is None else lambda: evaluate_split(model, val_images),
            cbs,
        )
        model.freeze_backbone(False)
    return history


def _set_up(
    model: TorchClassifier, cfg: TrainConfig, y_train: np.ndarray, run_dir: Path, resume: bool, ends: list[int]
) -> EpochRun:
    """Device, batches, schedule, optimizer, loss weights; then a fresh or restored state."""
    model.to(pick_device(cfg.device))
    slices = batch_slices(len(y_train), cfg.batch_size)
    lr = cfg.lr or default_lr(model.name, cfg.optimizer)
    stages = plan_cycles(ends, len(slices), lr, cfg.warmup_epochs, cfg.head_epochs, cfg.freeze == "backbone")
    optimizer = make_optimizer(model, cfg, lr)
    amp = Amp(model.device, cfg.amp)
    auto = cfg.class_weights == "auto"
    weight = class_weights(y_train, model.num_classes, model.device) if auto else None
    folder, rng, state = start_state(run_dir, model, optimizer, amp, cfg.seed, resume)
    return EpochRun(model, cfg, run_dir, folder, slices, stages, optimizer, amp, weight, rng, state)


def _train_epoch(
    run: EpochRun, epoch: int, data: PreparedImages, augment: Augment | None, cbs: Callback
) -> dict[str, float]:
    """One pass over the shuffled training data; returns the epoch's training figures."""
    model, cfg, opt = run.model, run.cfg, run.optimizer
    model.freeze_backbone(stage_at_epoch(run.stages, epoch).frozen)
    model.train_mode()
    perm = run.rng.permutation(len(data))
    loss_sum, correct, seen = 0.0, 0, 0
    for i, (labels, batch) in enumerate(data.batches(perm, run.slices)):
        set_lr(opt, lr_at(run.stages, run.state.step))
        images = batch if augment is None else augment(batch, run.rng)
        inputs = model.normalize(images)
        targets = torch.as_tensor(labels, device=model.device)
        with run.amp.autocast():
            logits = model.module(inputs)
        loss = F.cross_entropy(logits.float(), targets, weight=run.weight, label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        run.amp.backward_and_step(loss, opt)
        run.state.step += 1
        batch_loss = float(loss.detach())
        check_finite(batch_loss, epoch, i, opt)
        loss_sum += batch_loss * len(labels)
        correct += int((logits.detach().argmax(1) == targets).sum())
        seen += len(labels)
        cbs.on_batch_end(epoch + 1, i, batch_loss)
    lr = float(opt.param_groups[0]["lr"])
    seen = max(1, seen)
    return {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / seen, "train_accuracy": correct / seen}
