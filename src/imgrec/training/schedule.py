"""Learning-rate plan: linear warm-up then cosine decay, per optimizer step, in one or two stages.

The schedule is a pure function of the global step, so resuming only needs the step count.

Two-stage fine-tuning (``head_epochs > 0``), the exact rule:

1. Stage 1, epochs ``1 .. head_epochs``: only the head trains (backbone frozen, its
   BatchNorm statistics fixed), peak learning rate ``lr``.
2. Stage 2, the remaining ``epochs - head_epochs`` epochs: everything trains, peak learning
   rate ``lr * FINETUNE_SCALE`` (a tenth), so the pretrained backbone moves gently.

Each stage has its own warm-up (``warmup_epochs``, at most half the stage) and cosine decay
towards zero at the end of the stage.

Extending a finished run (``--resume RUN --epochs M`` on a run that finished N < M epochs),
the exact rule (:func:`plan_cycles`): the first N epochs keep their plan unchanged, and the
new epochs ``N+1 .. M`` are one more stage, a warm restart (SGDR, Loshchilov & Hutter 2017):
its own linear warm-up (``warmup_epochs``, at most half the new stage) back up to the peak
learning rate of the run's last stage, then a cosine decay to zero at epoch M. Continuing
"from the current learning rate" would not train: the cosine has already decayed it to
about zero at epoch N. Extending twice (5 -> 10 -> 15) gives two restarts.

Example:
    >>> stages = plan(epochs=4, steps_per_epoch=10, lr=1e-3, warmup_epochs=1, head_epochs=0)
    >>> lr_at(stages, 0), round(lr_at(stages, 9), 6), lr_at(stages, 39) < 1e-5
    (0.0001, 0.001, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise

FINETUNE_SCALE = 0.1


@dataclass(frozen=True)
class Stage:
    """A stretch of training with one peak learning rate.

    Attributes:
        first_epoch: 0-based epoch the stage starts at.
        start: global step the stage starts at.
        steps: optimizer steps in the stage.
        peak_lr: learning rate after warm-up.
        warmup: warm-up steps.
        frozen: whether the backbone is frozen (head only).
    """

    first_epoch: int
    start: int
    steps: int
    peak_lr: float
    warmup: int
    frozen: bool


def plan(
    epochs: int,
    steps_per_epoch: int,
    lr: float,
    warmup_epochs: float,
    head_epochs: int = 0,
    freeze: bool = False,
) -> list[Stage]:
    """The stages of a run (see the module docstring for the two-stage rule)."""
    if head_epochs <= 0:
        return [_stage(0, epochs, steps_per_epoch, lr, warmup_epochs, freeze)]
    return [
        _stage(0, head_epochs, steps_per_epoch, lr, warmup_epochs, True),
        _stage(head_epochs, epochs - head_epochs, steps_per_epoch, lr * FINETUNE_SCALE, warmup_epochs, False),
    ]


def plan_cycles(
    ends: list[int],
    steps_per_epoch: int,
    lr: float,
    warmup_epochs: float,
    head_epochs: int = 0,
    freeze: bool = False,
) -> list[Stage]:
    """:func:`plan` for ``ends[0]`` epochs, then one warm restart ending at each later entry.

    Example:
        >>> stages = plan_cycles([2, 4], steps_per_epoch=10, lr=1e-3, warmup_epochs=1)
        >>> [(s.first_epoch, s.steps, s.peak_lr) for s in stages]
        [(0, 20, 0.001), (2, 20, 0.001)]
        >>> lr_at(stages, 19) < 1e-4 < lr_at(stages, 29)
        True
    """
    stages = plan(ends[0], steps_per_epoch, lr, warmup_epochs, head_epochs, freeze)
    for start, end in pairwise(ends):
        last = stages[-1]
        stages.append(_stage(start, end - start, steps_per_epoch, last.peak_lr, warmup_epochs, last.frozen))
    return stages


def _stage(first: int, epochs: int, spe: int, lr: float, warmup_epochs: float, frozen: bool) -> Stage:
    steps = epochs * spe
    warmup = min(round(warmup_epochs * spe), steps // 2)
    return Stage(first, first * spe, steps, lr, warmup, frozen)


def stage_at_epoch(stages: list[Stage], epoch: int) -> Stage:
    """The stage a 0-based epoch belongs to."""
    return [s for s in stages if s.first_epoch <= epoch][-1]


def lr_at(stages: list[Stage], step: int) -> float:
    """Learning rate for a 0-based global step."""
    s = [st for st in stages if st.start <= step][-1]
    i = step - s.start
    if i < s.warmup:
        return s.peak_lr * (i + 1) / s.warmup
    progress = min(1.0, (i - s.warmup) / max(1, s.steps - s.warmup))
    return s.peak_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
