"""Which epoch's weights a run keeps, and that model.json says so truthfully."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.conftest import make_image_folder

from imgrec.training.selection import kept_weights


def test_the_first_best_epoch_is_kept_and_val_loss_counts_down() -> None:
    rows = [{"epoch": 1, "val_accuracy": 0.6, "val_loss": 0.9}, {"epoch": 2, "val_accuracy": 0.8, "val_loss": 0.7},
            {"epoch": 3, "val_accuracy": 0.8, "val_loss": 0.5}]
    assert kept_weights(rows, "val_accuracy") == {
        "which": "best", "epoch": 2, "of": 3, "monitor": "val_accuracy", "value": 0.8}
    assert kept_weights(rows, "val_loss")["epoch"] == 3


def test_without_validation_the_last_epoch_is_kept() -> None:
    rows = [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 2.0}]
    assert kept_weights(rows, "val_accuracy") == {"which": "last", "epoch": 2, "of": 2, "monitor": None, "value": None}


def test_model_json_names_the_epoch_whose_weights_were_saved(tmp_path) -> None:
    pytest.importorskip("torch")
    from safetensors.numpy import load_file

    from imgrec.config import TrainConfig
    from imgrec.training import train

    data = make_image_folder(tmp_path / "shapes", per_class=8, size=16)
    cfg = TrainConfig.from_dict({"model": "cnn-small", "epochs": 3, "batch_size": 8, "image_size": 16,
                                 "num_threads": 1, "augment": "none", "lr": 0.01})
    run = train(data, cfg, out=tmp_path / "run")
    kept = run.meta["training"]["kept_weights"]
    state = json.loads((run.path / "checkpoints" / "state.json").read_text())["train"]
    rows = {r["epoch"]: r for r in state["history"]}
    assert kept["which"] == "best" and kept["monitor"] == "val_accuracy" and kept["of"] == 3
    assert kept["epoch"] == state["best_epoch"] and kept["value"] == rows[kept["epoch"]]["val_accuracy"]
    saved = load_file(str(run.path / "weights.safetensors"))
    best = load_file(str(run.path / "checkpoints" / "best.safetensors"))
    assert saved.keys() == best.keys() and all(np.array_equal(saved[k], best[k]) for k in saved)
