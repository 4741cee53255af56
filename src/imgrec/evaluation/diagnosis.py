"""Degenerate outcomes a single accuracy figure hides: one class for everything, chance level, NaN.

:func:`diagnose` is the one place that decides; the report and the CLI (after ``train`` and
``evaluate``) show what it finds. When it finds something, a train/validation accuracy gap
is not overfitting, and the report does not say so.

Example:
    >>> m = {"accuracy": 0.5, "num_samples": 4, "classes": ["ant", "bee"],
    ...      "confusion_matrix": [[2, 0], [2, 0]], "log_loss": 0.69}
    >>> [f.code for f in diagnose(m)]
    ['single_class']
    >>> print(diagnose(m)[0].message.split(":")[0])
    The model predicts a single class
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

LOSS_KEYS = ("train_loss", "val_loss")


@dataclass(frozen=True)
class Finding:
    """One degenerate outcome.

    Attributes:
        code: stable snake_case name: ``nan_loss``, ``single_class`` or ``chance_level``.
        message: what happened, with the figures, and what to try.
    """

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def diagnose(
    metrics: Mapping[str, Any] | None, history: Sequence[Mapping[str, Any]] | None = None
) -> list[Finding]:
    """Degenerate outcomes of a run or an evaluation, most serious first (empty when none).

    Args:
        metrics: classification metrics of one split (``classification_metrics`` output).
        history: per-epoch rows of a torch run, if any.
    """
    found = [_nan_loss(metrics or {}, history or ())]
    if metrics and int(metrics.get("num_samples") or 0) > 0:
        collapse = _single_class(metrics)  # a collapsed model is also at chance: say the sharper thing
        found.append(collapse or _chance_level(metrics))
    return [f for f in found if f is not None]


def _nan_loss(metrics: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> Finding | None:
    for row in history:
        bad = [k for k in LOSS_KEYS if k in row and not _finite(row[k])]
        if bad:
            return Finding("nan_loss", (
                f"The loss became {row[bad[0]]} ({bad[0]}) at epoch {row.get('epoch', '?')}: the weights are "
                "not usable. Lower the learning rate, turn off mixed precision, or check the data."))
    loss = metrics.get("log_loss")
    if loss is not None and not _finite(loss):
        return Finding("nan_loss", (
            f"The log loss on these images is {loss}: the model outputs non-finite probabilities. "
            "Retrain with a lower learning rate."))
    return None


def _single_class(metrics: Mapping[str, Any]) -> Finding | None:
    cm = np.asarray(metrics.get("confusion_matrix") or [[0]])
    predicted = cm.sum(axis=0)
    if cm.shape[0] < 2 or int((predicted > 0).sum()) != 1:
        return None
    name = _class_name(metrics, int(predicted.argmax()))
    return Finding("single_class", (
        f"The model predicts a single class: all {int(predicted.sum())} images are predicted {name!r} "
        f"(accuracy {100 * float(metrics['accuracy']):.1f}% is that class's share). Training collapsed; "
        "this is not overfitting. Train longer, lower the learning rate, use pretrained weights "
        "(--pretrained / --weights) for a large network, or try a smaller model."))


def _chance_level(metrics: Mapping[str, Any]) -> Finding | None:
    cm = np.asarray(metrics.get("confusion_matrix") or [[0]])
    support = cm.sum(axis=1)
    total = int(support.sum())
    if cm.shape[0] < 2 or total == 0:
        return None
    majority = float(support.max()) / total
    acc = float(metrics["accuracy"])
    if acc > majority + 1e-9:
        return None
    name = _class_name(metrics, int(support.argmax()))
    return Finding("chance_level", (
        f"Accuracy {100 * acc:.1f}% is no better than always answering the most common class {name!r} "
        f"({100 * majority:.1f}% of these {total} images): the model has learned nothing usable. "
        "Train longer, check the labels, or try another model."))


def _class_name(metrics: Mapping[str, Any], i: int) -> str:
    classes = metrics.get("classes") or list(metrics.get("per_class") or [])
    return str(classes[i]) if i < len(classes) else str(i)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
