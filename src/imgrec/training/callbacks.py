"""Training callbacks: hooks the loop calls so callers can show progress (the library never prints).

Epoch numbers given to the hooks are 1-based, like the ``epoch`` column of the history.

Example:
    >>> class Losses(Callback):
    ...     def __init__(self):
    ...         self.seen = []
    ...     def on_epoch_end(self, epoch, row):
    ...         self.seen.append((epoch, row["train_loss"]))
    >>> cb = Losses()
    >>> Callbacks([cb]).on_epoch_end(1, {"train_loss": 0.5})
    >>> cb.seen
    [(1, 0.5)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class Callback:
    """Base class with no-op hooks; override the ones you need."""

    def on_train_start(self, total_epochs: int, steps_per_epoch: int, start_epoch: int = 0) -> None:
        """Before the first epoch; ``start_epoch`` is the number of epochs already done (resume)."""

    def on_epoch_start(self, epoch: int) -> None:
        """Before epoch ``epoch`` (1-based)."""

    def on_batch_end(self, epoch: int, step: int, loss: float) -> None:
        """After optimizer step ``step`` (0-based within the epoch) with that batch's loss."""

    def on_epoch_end(self, epoch: int, row: dict[str, float]) -> None:
        """After the epoch's validation and checkpoint; ``row`` is its history entry."""

    def on_train_end(self, history: Any) -> None:
        """After the last epoch, and also when training stops early or is interrupted."""


class Callbacks(Callback):
    """Calls every hook on each callback of a sequence, in order."""

    def __init__(self, callbacks: Sequence[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    def on_train_start(self, total_epochs: int, steps_per_epoch: int, start_epoch: int = 0) -> None:
        for cb in self.callbacks:
            cb.on_train_start(total_epochs, steps_per_epoch, start_epoch)

    def on_epoch_start(self, epoch: int) -> None:
        for cb in self.callbacks:
            cb.on_epoch_start(epoch)

    def on_batch_end(self, epoch: int, step: int, loss: float) -> None:
        for cb in self.callbacks:
            cb.on_batch_end(epoch, step, loss)

    def on_epoch_end(self, epoch: int, row: dict[str, float]) -> None:
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, row)

    def on_train_end(self, history: Any) -> None:
        for cb in self.callbacks:
            cb.on_train_end(history)
