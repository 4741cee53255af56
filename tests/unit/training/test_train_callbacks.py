"""The callback base class and the fan-out helper."""

from __future__ import annotations

from imgrec.training.callbacks import Callback, Callbacks


class Log(Callback):
    def __init__(self, name: str, out: list[str]) -> None:
        self.name, self.out = name, out

    def on_epoch_start(self, epoch: int) -> None:
        self.out.append(f"{self.name}:{epoch}")


def test_base_hooks_are_no_ops_and_fan_out_keeps_order() -> None:
    out: list[str] = []
    cbs = Callbacks([Log("a", out), Callback(), Log("b", out)])
    cbs.on_train_start(3, 10, 0)
    cbs.on_epoch_start(1)
    cbs.on_batch_end(1, 0, 0.5)
    cbs.on_epoch_end(1, {"epoch": 1})
    cbs.on_train_end(None)
    assert out == ["a:1", "b:1"]
