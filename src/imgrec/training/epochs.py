"""The epoch driver every torch training loop shares: early stopping, one training pass,
validation, the best weights, checkpoints, history, callbacks, Ctrl-C and resume.

A task's loop (classifiers: :mod:`imgrec.training.loop`; detectors:
:mod:`imgrec.training.detect_loop`; segmenters: :mod:`imgrec.training.segment_loop`) sets up an
:class:`EpochRun` (device, batches, learning-rate plan, optimizer, restored state) and gives
:func:`drive_epochs` what differs: ``train_epoch(epoch) -> row`` and ``validate() -> figures``.
One epoch here reads::

    stop early? -> on_epoch_start -> train_epoch -> validate -> keep the best -> checkpoint +
    history.json -> on_epoch_end

and at the end the best weights are loaded into the model.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch

from imgrec.config import TrainConfig
from imgrec.data.stream import NOTHING_READABLE
from imgrec.errors import ConfigError, DatasetError, TrainingInterrupted
from imgrec.files import write_json_atomic
from imgrec.training import checkpoint as ckpt
from imgrec.training.callbacks import Callback
from imgrec.training.data import batch_slices
from imgrec.training.optim import Amp, default_lr, make_optimizer, pick_device
from imgrec.training.schedule import Stage, plan_cycles
from imgrec.training.selection import improved
from imgrec.types import History

log = logging.getLogger(__name__)
HISTORY = "history.json"


@dataclass
class EpochRun:
    """Everything one training run carries from step to step."""

    model: Any
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


def drive_epochs(
    run: EpochRun,
    train_epoch: Callable[[int], dict[str, float]],
    validate: Callable[[], dict[str, float]] | None,
    cbs: Callback,
) -> History:
    """Run the epochs from the restored state to ``cfg.epochs``; returns the whole history.

    Args:
        run: the set-up run (:func:`start_state` restored or seeded its state).
        train_epoch: one pass over the training data for a 0-based epoch; returns its row
            (``epoch``, ``lr``, loss terms...).
        validate: the validation figures (``val_*``) to add to each row, or None (no
            validation: the last epoch is the best, early stopping is off).
        cbs: progress hooks.

    Raises:
        TrainingInterrupted: on Ctrl-C, after saving a resumable checkpoint.
    """
    cfg = run.cfg
    history = History(epochs=list(run.state.history))
    cbs.on_train_start(cfg.epochs, len(run.slices), run.state.epoch)
    try:
        for epoch in range(run.state.epoch, cfg.epochs):
            if patience_exhausted(run.state, cfg, validate is not None):
                log.info("early stopping: no better %s for %d epochs", cfg.monitor, cfg.early_stopping)
                break
            cbs.on_epoch_start(epoch + 1)
            started = time.perf_counter()
            row = train_epoch(epoch)
            figures = validation(validate) if validate is not None else None
            if figures is None:
                validate = None  # none of its images can be read: on without validation
            else:
                row.update(figures)
                check_val_loss(row)
            row["seconds"] = time.perf_counter() - started
            end_epoch(run, row, history)
            cbs.on_epoch_end(epoch + 1, row)
    except KeyboardInterrupt:
        raise interrupted(run) from None
    finally:
        cbs.on_train_end(history)
    ckpt.load_best(run.folder, run.model)  # finish with the best weights
    return history


def set_up_run(model: Any, cfg: TrainConfig, n: int, run_dir: Path, resume: bool, ends: list[int]) -> EpochRun:
    """Device, batches of ``n`` items, learning-rate plan (no head-only stage), optimizer; then a
    fresh or restored state (the detection and segmentation loops)."""
    model.to(pick_device(cfg.device))
    slices = batch_slices(n, cfg.batch_size)
    lr = cfg.lr or default_lr(model.name, cfg.optimizer)
    stages = plan_cycles(ends, len(slices), lr, cfg.warmup_epochs, 0, False)
    optimizer = make_optimizer(model, cfg, lr)
    amp = Amp(model.device, cfg.amp)
    folder, rng, state = start_state(run_dir, model, optimizer, amp, cfg.seed, resume)
    return EpochRun(model, cfg, run_dir, folder, slices, stages, optimizer, amp, None, rng, state)


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


def end_epoch(run: EpochRun, row: dict[str, float], history: History) -> None:
    """Record the row, keep the best weights, write the checkpoint and history.json."""
    run.state.epoch, run.state.interrupted = int(row["epoch"]), False
    run.state.history.append(row)
    history.epochs.append(row)
    if improved(run.state, row, run.cfg.monitor):
        ckpt.save_best(run.folder, run.model)
    ckpt.save_checkpoint(run.folder, run.model, run.optimizer, run.state, run.rng, run.amp.scaler)
    write_json_atomic(run.run_dir / HISTORY, history.to_dict())
    log.info("epoch %d: %s", run.state.epoch, " ".join(f"{k}={v:.4g}" for k, v in row.items()))


def check_finite(value: float, epoch: int, step: int, opt: torch.optim.Optimizer, what: str = "the data") -> None:
    """Stop at once when a training loss is NaN or infinite."""
    if not math.isfinite(value):
        raise ConfigError(
            f"Training diverged: the loss is {value} at epoch {epoch + 1}, step {step + 1}. "
            f"Lower the learning rate (now {opt.param_groups[0]['lr']:.3g}) or check {what}."
        )


def validation(validate: Callable[[], dict[str, float]]) -> dict[str, float] | None:
    """The validation figures; None, with a warning, when none of the validation images can be read
    (the run goes on without validation instead of being lost)."""
    try:
        return validate()
    except DatasetError as exc:
        if exc.code != NOTHING_READABLE:
            raise
        log.warning("No validation: %s The last epoch's weights are kept.", exc)
        return None


Evaluation = Callable[[Any], tuple[dict[str, float], list[tuple[str, str]]]]  # split -> (figures, unreadable)


def readable_validation(evaluate: Evaluation, val: Any) -> Callable[[], dict[str, float]]:
    """``validate()`` for :func:`drive_epochs` over the ``val`` dataset (``evaluate(split) -> (figures,
    unreadable)``): the first validation that meets unreadable items warns once, naming the first few,
    and later epochs validate without them (they never counted, so the figures are the same) instead of
    decoding them again."""
    current = [val]

    def validate() -> dict[str, float]:
        figures, bad = evaluate(current[0])
        if bad:
            log.warning("%d of %d validation image(s) could not be read and are left out of later validations "
                        "(%s). `imgrec data check` lists them.",
                        len(bad), len(current[0]), _first_few(bad))  # fmt: skip
            current[0] = without_sources(current[0], {source for source, _ in bad})
        return figures

    return validate


def without_sources(ds: Any, sources: set[str]) -> Any:
    """``ds`` (an ``ImageDataset``) less the items of the given sources."""
    return ds.subset([i for i, source in enumerate(ds.sources) if source not in sources])


def split_figures(evaluate: Callable[[Any], Any], parts: Any) -> dict[str, Any]:
    """``evaluate(split)`` for the val and test splits that hold images; a split none of whose images
    can be read gets no figures, with a warning, instead of losing the trained run."""
    out = {}
    for name in ("val", "test"):
        part = getattr(parts, name)
        if not len(part):
            continue
        try:
            out[name] = evaluate(part)
        except DatasetError as exc:
            if exc.code != NOTHING_READABLE:
                raise
            log.warning("No %s figures: %s", name, exc)
    return out


def check_trained(seen: int, epoch: int, n: int, bad: list[tuple[str, str]], what: str) -> None:
    """After a training pass: stop when it took no step (nothing in the ``n`` training images could be
    learnt from: all unreadable, or without ``what``); warn once, in the first epoch, about the items
    left out (``bad``: unreadable, or unusable such as masks of another size), naming the first few."""
    if not seen:
        first = f" (the first: {bad[0][0]}: {bad[0][1].rstrip('.')})" if bad else ""
        raise DatasetError(
            f"Epoch {epoch + 1} trained on nothing: of {n} training image(s), {len(bad)} could not be read{first} "
            f"and the others gave no {what}. Check the data with `imgrec data check`."
        )
    if bad and epoch == 0:
        log.warning("%d of %d training image(s) could not be read or used and are left out of every epoch (%s). "
                    "`imgrec data check` lists them.", len(bad), n, _first_few(bad))  # fmt: skip


def _first_few(bad: list[tuple[str, str]], k: int = 3) -> str:
    """``"a.jpg: why; b.jpg: why; and 5 more"`` for a warning."""
    shown = "; ".join(f"{source}: {why.rstrip('.')}" for source, why in bad[:k])
    return f"{shown}; and {len(bad) - k} more" if len(bad) > k else shown


def check_val_loss(row: dict[str, float]) -> None:
    """Stop at once when the validation loss is NaN/inf: the weights are no longer usable."""
    loss = row.get("val_loss")
    if loss is not None and not math.isfinite(loss):
        raise ConfigError(
            f"Training diverged: the validation loss is {loss} after epoch {int(row['epoch'])} "
            f"(training loss {row['train_loss']:.4g}). The model outputs are no longer finite; "
            f"lower the learning rate (now {row['lr']:.3g}), turn off mixed precision (amp=false) "
            "or check the data. Training was stopped."
        )


def check_config(cfg: TrainConfig, ends: list[int]) -> None:
    """The learning-rate cycles and the head-only stages must fit the epochs."""
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


def patience_exhausted(state: ckpt.TrainState, cfg: TrainConfig, has_val: bool) -> bool:
    return bool(has_val and cfg.early_stopping and state.epoch - state.best_epoch >= cfg.early_stopping)


def interrupted(run: EpochRun) -> TrainingInterrupted:
    """Save a resumable checkpoint after Ctrl-C; the error to raise says how to continue."""
    run.state.step = run.state.epoch * len(run.slices)  # an unfinished epoch restarts on resume
    run.state.interrupted = True
    ckpt.save_checkpoint(run.folder, run.model, run.optimizer, run.state, run.rng, run.amp.scaler)
    return TrainingInterrupted(
        f"Training interrupted during epoch {run.state.epoch + 1}; a resumable checkpoint is "
        f"in {run.folder}. Continue with resume=True (CLI: imgrec train --resume {run.run_dir})."
    )


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` torch threads meanwhile (None: leave them)."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
