"""The torch training loop: ``fit_torch``. It reads top to bottom, nanoGPT style.

The images come from :class:`~imgrec.data.prepared.PreparedImages` (a memory cache when the
split fits, else decoded by worker threads a batch ahead), or from prepared arrays.

One epoch = shuffle, then for each batch: set the scheduled learning rate, augment, normalize,
forward (autocast on CUDA), loss (label smoothing, class weights), backward, step. After each
epoch: validate, pick the best, write ``checkpoints/`` and ``history.json`` atomically, tell
the callbacks. At the end the best weights are loaded into the model.

Same seed, same data, same CPU: same numbers (see :func:`seed_everything`).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from imgrec.config import TrainConfig
from imgrec.data.prepared import PreparedImages
from imgrec.errors import ConfigError, TrainingInterrupted
from imgrec.files import write_json_atomic
from imgrec.models.torch_classifier import TorchClassifier
from imgrec.training import checkpoint as ckpt
from imgrec.training.callbacks import Callback, Callbacks
from imgrec.training.data import as_prepared, batch_slices, class_weights, evaluate_split
from imgrec.training.optim import Amp, default_lr, make_optimizer, pick_device, set_lr
from imgrec.training.schedule import Stage, lr_at, plan_cycles, stage_at_epoch
from imgrec.training.selection import improved
from imgrec.types import History

log = logging.getLogger(__name__)
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]
HISTORY = "history.json"


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
    _check_config(cfg, ends)
    cbs = Callbacks(callbacks)
    with _threads(cfg.num_threads):
        run = _set_up(model, cfg, train_images.labels, Path(run_dir), resume, ends)
        history = History(epochs=list(run.state.history))
        cbs.on_train_start(cfg.epochs, len(run.slices), run.state.epoch)
        try:
            for epoch in range(run.state.epoch, cfg.epochs):
                if _patience_exhausted(run.state, cfg, val_images is not None):
                    log.info("early stopping: no better %s for %d epochs", cfg.monitor, cfg.early_stopping)
                    break
                cbs.on_epoch_start(epoch + 1)
                started = time.perf_counter()
                row = _train_epoch(run, epoch, train_images, augment, cbs)
                if val_images is not None:
                    row.update(evaluate_split(model, val_images))
                    _check_val_loss(row)
                row["seconds"] = time.perf_counter() - started
                _end_epoch(run, row, history)
                cbs.on_epoch_end(epoch + 1, row)
        except KeyboardInterrupt:
            raise interrupted(run, run_dir) from None
        finally:
            cbs.on_train_end(history)
        model.freeze_backbone(False)
        ckpt.load_best(run.folder, model)  # finish with the best weights
    return history


@dataclass
class _Run:
    """Everything one training run carries from step to step."""

    model: TorchClassifier
    cfg: TrainConfig
    run_dir: Path
    folder: Path
    slices: list[slice]
    stages: list[Stage]
    optimizer: torch.optim.Optimizer
    amp: Amp
    weight: torch.Tensor | None
    rng: np.random.Generator
    state: ckpt.TrainState


def _set_up(
    model: TorchClassifier, cfg: TrainConfig, y_train: np.ndarray, run_dir: Path, resume: bool, ends: list[int]
) -> _Run:
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
    return _Run(model, cfg, run_dir, folder, slices, stages, optimizer, amp, weight, rng, state)


def start_state(
    run_dir: Path, model: Any, optimizer: torch.optim.Optimizer, amp: Amp, seed: int, resume: bool
) -> tuple[Path, np.random.Generator, ckpt.TrainState]:
    """The checkpoint folder, the run's generator and its state: fresh and seeded, or restored."""
    folder = run_dir / ckpt.CHECKPOINTS
    rng = np.random.default_rng(seed)  # every random number comes from these states
    if resume:
        state = ckpt.load_checkpoint(folder, model, optimizer, rng, amp.scaler)
        log.info("resuming after epoch %d (step %d)", state.epoch, state.step)
    else:
        random.seed(seed)
        torch.manual_seed(seed)
        state = ckpt.TrainState()
    return folder, rng, state


def _train_epoch(
    run: _Run, epoch: int, data: PreparedImages, augment: Augment | None, cbs: Callback
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
        if not math.isfinite(batch_loss):
            raise ConfigError(
                f"Training diverged: the loss is {batch_loss} at epoch {epoch + 1}, step {i + 1}. "
                f"Lower the learning rate (now {opt.param_groups[0]['lr']:.3g}) or check the data."
            )
        loss_sum += batch_loss * len(labels)
        correct += int((logits.detach().argmax(1) == targets).sum())
        seen += len(labels)
        cbs.on_batch_end(epoch + 1, i, batch_loss)
    lr = float(opt.param_groups[0]["lr"])
    seen = max(1, seen)
    return {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / seen, "train_accuracy": correct / seen}


def _end_epoch(run: _Run, row: dict[str, float], history: History) -> None:
    """Record the row, keep the best weights, write the checkpoint and history.json."""
    run.state.epoch, run.state.interrupted = int(row["epoch"]), False
    run.state.history.append(row)
    history.epochs.append(row)
    if improved(run.state, row, run.cfg.monitor):
        ckpt.save_best(run.folder, run.model)
    ckpt.save_checkpoint(run.folder, run.model, run.optimizer, run.state, run.rng, run.amp.scaler)
    write_json_atomic(run.run_dir / HISTORY, history.to_dict())
    log.info("epoch %d: %s", run.state.epoch, _fmt(row))


def _check_val_loss(row: dict[str, float]) -> None:
    """Stop at once when the validation loss is NaN/inf: the weights are no longer usable."""
    loss = row.get("val_loss")
    if loss is not None and not math.isfinite(loss):
        raise ConfigError(
            f"Training diverged: the validation loss is {loss} after epoch {int(row['epoch'])} "
            f"(training loss {row['train_loss']:.4g}). The model outputs are no longer finite; "
            f"lower the learning rate (now {row['lr']:.3g}), turn off mixed precision (amp=false) "
            "or check the data. Training was stopped."
        )


def _check_config(cfg: TrainConfig, ends: list[int]) -> None:
    if ends[-1] != cfg.epochs or any(b <= a for a, b in pairwise(ends)) or ends[0] < 1:
        raise ConfigError(
            f"cycles must be increasing epoch counts ending at epochs ({cfg.epochs}); received {ends}."
        )
    if cfg.head_epochs and cfg.freeze == "backbone":
        raise ConfigError(
            "head_epochs (two-stage fine-tuning) unfreezes the backbone after the head epochs, "
            "but freeze='backbone' keeps it frozen. Use one or the other."
        )
    if cfg.head_epochs >= ends[0]:
        raise ConfigError(
            f"head_epochs ({cfg.head_epochs}) must be less than epochs ({ends[0]}); "
            "for head-only training use freeze='backbone'."
        )


def _patience_exhausted(state: ckpt.TrainState, cfg: TrainConfig, has_val: bool) -> bool:
    return bool(has_val and cfg.early_stopping and state.epoch - state.best_epoch >= cfg.early_stopping)


def interrupted(run: _Run, run_dir: Path) -> TrainingInterrupted:
    """Save a resumable checkpoint after Ctrl-C; the error to raise says how to continue."""
    _save_interrupted(run)
    return TrainingInterrupted(
        f"Training interrupted during epoch {run.state.epoch + 1}; a resumable checkpoint is "
        f"in {run.folder}. Continue with resume=True (CLI: imgrec train --resume {run_dir})."
    )


def _save_interrupted(run: _Run) -> None:
    """Save on Ctrl-C; an unfinished epoch restarts (from the current weights) on resume."""
    run.state.step = run.state.epoch * len(run.slices)
    run.state.interrupted = True
    ckpt.save_checkpoint(run.folder, run.model, run.optimizer, run.state, run.rng, run.amp.scaler)


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fmt(row: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in row.items())
