"""Extending a finished run with more epochs (a warm restart) and what a resume refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.conftest import make_image_folder

pytest.importorskip("torch")

from imgrec.config import TrainConfig
from imgrec.errors import ConfigError
from imgrec.training import train
from imgrec.training.loop import fit_torch
from imgrec.training.resume import plan_resume

FAST = {"model": "cnn-small", "epochs": 2, "batch_size": 8, "image_size": 16, "num_threads": 1, "augment": "none"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 2-epoch cnn-small run (copy it before changing it)."""
    root = tmp_path_factory.mktemp("resume")
    data = make_image_folder(root / "shapes", per_class=8, size=16)
    return train(data, TrainConfig.from_dict(FAST), out=root / "run").path


@pytest.fixture
def run(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "run"))


def test_a_finished_run_without_more_epochs_has_nothing_to_do(run) -> None:
    plan = plan_resume(run)
    assert plan.nothing_to_do and plan.done_epochs == 2
    assert "already finished 2 epochs; pass --epochs M > 2 to train further" in plan.message()
    with pytest.raises(ConfigError, match="already finished 2 epochs"):
        train(plan.data, out=run, resume=True)


def test_more_epochs_extend_the_run_and_rewrite_its_files(run) -> None:
    before = json.loads((run / "model.json").read_text())
    plan = plan_resume(run, TrainConfig.from_dict({**FAST, "epochs": 4}))
    assert plan.extends and plan.cycles == [2, 4] and "from 2 to 4 epochs" in plan.message()
    result = train(plan.data, plan.config, out=run, resume=True)
    rows = json.loads((run / "history.json").read_text())["epochs"]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[2]["lr"] > rows[1]["lr"]  # the warm restart: the lr climbs again after epoch 2
    meta = json.loads((run / "model.json").read_text())
    assert meta["training"]["epochs"] == 4 and meta["training"]["cycles"] == [2, 4]
    assert meta["training"]["kept_weights"]["of"] == 4 and meta["created"] >= before["created"]
    assert json.loads((run / "config.json").read_text())["cycles"] == [2, 4]
    assert "learning rate restarted" in (run / "report.html").read_text()
    assert result.history is not None and len(result.history.epochs) == 4
    assert plan_resume(run).nothing_to_do  # config.json now says 4: resuming again does nothing


def test_other_changed_settings_are_refused_with_the_reason(run) -> None:
    refused = r"only epochs, device, num_threads may change.*lr \(run: None, given: 0\.5\)"
    with pytest.raises(ConfigError, match=refused):
        plan_resume(run, TrainConfig.from_dict({**FAST, "epochs": 4, "lr": 0.5}))
    assert plan_resume(run, TrainConfig.from_dict({**FAST, "epochs": 3, "num_threads": 2})).extends


def test_an_early_stopped_run_is_not_extended(run) -> None:
    cfg = json.loads((run / "config.json").read_text())
    cfg["training"].update(epochs=5, early_stopping=1)  # as if it had stopped after 2 of 5 epochs
    (run / "config.json").write_text(json.dumps(cfg))
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    state["train"]["best_epoch"] = 1
    (run / "checkpoints" / "state.json").write_text(json.dumps(state))
    with pytest.raises(ConfigError, match="stopped early after epoch 2 of 5"):
        plan_resume(run, TrainConfig.from_dict({**FAST, "epochs": 8, "early_stopping": 1}))


def test_an_interrupted_run_finishes_its_own_schedule_first(run) -> None:
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    state["train"]["interrupted"] = True
    (run / "checkpoints" / "state.json").write_text(json.dumps(state))
    (run / "model.json").unlink()
    assert not plan_resume(run).extends
    with pytest.raises(ConfigError, match="interrupted after epoch 2 of 2; resume it without --epochs"):
        plan_resume(run, TrainConfig.from_dict({**FAST, "epochs": 6}))


def test_the_loop_extends_with_a_warm_restart(tmp_path, tiny_data, new_model, tiny_cfg) -> None:
    train_xy, val = tiny_data
    fit_torch(new_model(), train_xy, val, tiny_cfg(epochs=2), run_dir=tmp_path)
    history = fit_torch(new_model(), train_xy, val, tiny_cfg(epochs=3), run_dir=tmp_path, resume=True, cycles=[2, 3])
    lrs = [r["lr"] for r in history.epochs]
    assert [r["epoch"] for r in history.epochs] == [1, 2, 3] and lrs[2] > lrs[1]
    with pytest.raises(ConfigError, match="cycles must be increasing"):
        fit_torch(new_model(), train_xy, val, tiny_cfg(epochs=3), run_dir=tmp_path, cycles=[3, 2])


def test_resuming_needs_neither_the_start_weights_nor_the_network(tmp_path) -> None:
    from safetensors.torch import save_file

    from imgrec.models import create_model

    data = make_image_folder(tmp_path / "shapes", per_class=6, size=16)
    start = tmp_path / "start.safetensors"
    save_file(create_model("cnn-small", ["circle", "square", "stripes"], image_size=16).state_tensors(), str(start))
    cfg = TrainConfig.from_dict({**FAST, "epochs": 1, "weights": str(start)})
    run = train(data, cfg, out=tmp_path / "run").path
    start.unlink()  # gone (or, for --pretrained, the weight server out of reach)
    extended = train(data, cfg.replace(epochs=2), out=run, resume=True)
    assert [r["epoch"] for r in extended.history.epochs] == [1, 2]
