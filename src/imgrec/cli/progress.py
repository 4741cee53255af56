"""A rich progress bar per epoch and a per-epoch table for the training loop's callbacks."""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from imgrec.cli.output import console
from imgrec.training.callbacks import Callback

COLUMNS = ("epoch", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_macro_f1", "val_map",
           "val_map50", "val_mask_map", "val_mask_map50", "val_miou", "seconds")


class RichProgress(Callback):
    """A live bar (with the running loss) during each epoch, then one table row per epoch."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.total_epochs = 0
        self.steps = 0
        self.header_done = False

    def on_train_start(self, total_epochs: int, steps_per_epoch: int, start_epoch: int = 0) -> None:
        self.total_epochs, self.steps = total_epochs, steps_per_epoch
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.progress.start()

    def on_epoch_start(self, epoch: int) -> None:
        if self.progress is None:
            return
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task("train", total=self.steps, epoch=epoch, epochs=self.total_epochs, loss=0.0)

    def on_batch_end(self, epoch: int, step: int, loss: float) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=step + 1, loss=loss)

    def on_epoch_end(self, epoch: int, row: dict[str, float]) -> None:
        cols = [c for c in COLUMNS if c in row]
        if not self.header_done:
            console.print("".join(c.rjust(max(len(c), 8) + 2) for c in cols), style="bold")
            self.header_done = True
        console.print("".join(_cell(row[c]).rjust(max(len(c), 8) + 2) for c in cols))

    def on_train_end(self, history: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1e-3 and v else f"{v:.4f}"
    return str(v)
