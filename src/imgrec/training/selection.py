"""Which epoch's weights a torch run keeps: the best by the monitored figure (torch-free).

The loop calls :func:`improved` after every epoch and writes ``best.safetensors`` when it
says so; :func:`kept_weights` replays the same rule over a finished history, so model.json
can say which epoch the saved weights come from without loading anything.

Example:
    >>> rows = [{"epoch": 1, "val_accuracy": 0.5}, {"epoch": 2, "val_accuracy": 0.7}, {"epoch": 3, "val_accuracy": 0.6}]
    >>> kept_weights(rows, "val_accuracy")
    {'which': 'best', 'epoch': 2, 'of': 3, 'monitor': 'val_accuracy', 'value': 0.7}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

LOWER_IS_BETTER = {"val_loss"}


class Scored(Protocol):
    """What :func:`improved` updates (``checkpoint.TrainState`` is one)."""

    best_score: float | None
    best_epoch: int


class _Best:
    def __init__(self) -> None:
        self.best_score: float | None = None
        self.best_epoch = 0


def improved(state: Scored, row: Mapping[str, float], monitor: str) -> bool:
    """Update the best score with this epoch's row; True when it is the new best.

    Without validation figures (``monitor`` not in the row) the latest epoch is the best.
    """
    if monitor not in row:
        score = float(row["epoch"])
    else:
        score = -row[monitor] if monitor in LOWER_IS_BETTER else row[monitor]
    if state.best_score is not None and score <= state.best_score:
        return False
    state.best_score, state.best_epoch = score, int(row["epoch"])
    return True


def kept_weights(rows: Sequence[Mapping[str, float]], monitor: str) -> dict[str, Any]:
    """``{"which": "best" | "last", "epoch", "of", "monitor", "value"}`` for model.json.

    ``which`` is ``"last"`` when there was no validation data (the latest epoch is kept).
    """
    best = _Best()
    for row in rows:
        improved(best, row, monitor)
    if not rows:
        return {"which": "last", "epoch": 0, "of": 0, "monitor": None, "value": None}
    has_val = any(monitor in r for r in rows)
    value = next((r.get(monitor) for r in rows if int(r["epoch"]) == best.best_epoch), None) if has_val else None
    return {
        "which": "best" if has_val else "last",
        "epoch": best.best_epoch,
        "of": int(rows[-1]["epoch"]),
        "monitor": monitor if has_val else None,
        "value": None if value is None else float(value),
    }
