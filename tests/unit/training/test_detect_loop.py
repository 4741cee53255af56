"""The detector loop keeps the classifier loop's promises: Ctrl-C saves a resumable checkpoint,
and an interrupted then resumed run equals a continuous one (same seed, same data, same CPU)."""

from __future__ import annotations

import json

import pytest
from tests.detection_data import write_squares_yolo

pytest.importorskip("torch")

from imgrec.config import TrainConfig
from imgrec.data import load_dataset
from imgrec.errors import TrainingInterrupted
from imgrec.models import create_model
from imgrec.training.callbacks import Callback
from imgrec.training.detect_loop import fit_detector
from imgrec.training.loop import seed_everything


class StopAt(Callback):
    """Raises KeyboardInterrupt (what Ctrl-C raises) at ``("batch", epoch, step)`` or ``("epoch", epoch)``."""

    def __init__(self, where: tuple) -> None:
        self.where = where

    def on_batch_end(self, epoch: int, step: int, loss: float) -> None:
        if self.where == ("batch", epoch, step):
            raise KeyboardInterrupt

    def on_epoch_end(self, epoch: int, row: dict[str, float]) -> None:
        if self.where == ("epoch", epoch):
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def squares(tmp_path_factory):
    return load_dataset(write_squares_yolo(tmp_path_factory.mktemp("sq") / "data", n=12))


def _model(ds, seed=0):
    seed_everything(seed)
    return create_model("yolo-n", ds.classes, image_size=64)


def _cfg(**changes):
    base = {"model": "yolo-n", "epochs": 3, "batch_size": 4, "image_size": 64, "num_threads": 1,
            "augment": "standard", "warmup_epochs": 0.5, "monitor": "val_map"}  # fmt: skip
    return TrainConfig.from_dict({**base, **changes})


def _losses(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history.epochs]


def test_ctrl_c_mid_epoch_saves_a_checkpoint_that_resumes(squares, tmp_path) -> None:
    with pytest.raises(TrainingInterrupted, match="resumable checkpoint") as err:
        fit_detector(_model(squares), squares, None, _cfg(), run_dir=tmp_path, callbacks=[StopAt(("batch", 1, 1))])
    assert isinstance(err.value, KeyboardInterrupt) and err.value.exit_code == 130
    state = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert state["train"]["epoch"] == 0 and state["train"]["step"] == 0 and state["train"]["interrupted"]
    history = fit_detector(_model(squares, seed=5), squares, None, _cfg(), run_dir=tmp_path, resume=True)
    assert [r["epoch"] for r in history.epochs] == [1, 2, 3]


def test_interrupted_then_resumed_equals_a_continuous_run(squares, tmp_path) -> None:
    from imgrec.transforms.augment import create_augmenter

    aug = create_augmenter("standard")
    straight = fit_detector(_model(squares), squares, None, _cfg(), run_dir=tmp_path / "straight", augment=aug)
    with pytest.raises(TrainingInterrupted):
        fit_detector(_model(squares), squares, None, _cfg(), run_dir=tmp_path / "cut", augment=aug,
                     callbacks=[StopAt(("epoch", 2))])  # fmt: skip
    resumed = fit_detector(_model(squares, seed=9), squares, None, _cfg(), run_dir=tmp_path / "cut", augment=aug,
                           resume=True)  # fmt: skip
    assert _losses(resumed) == _losses(straight)
    assert len(resumed.epochs) == 3
