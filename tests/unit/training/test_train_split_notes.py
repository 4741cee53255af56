"""A split's size notes (why val or test is not the size asked) travel with the run: splits.json keeps
them, model.json and report.html show them by the split sizes, and a run trained on a saved manifest
(``--splits``) or resumed logs them again."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from tests.conftest import make_image_folder

pytest.importorskip("torch")

from imgrec.config import DataConfig, TrainConfig
from imgrec.training import train
from imgrec.training.resume import plan_resume

FAST = {"model": "cnn-small", "epochs": 1, "batch_size": 8, "image_size": 16, "num_threads": 1, "augment": "none"}
EMPTY_TEST = "test: 0 images (asked 1% = 0): the fraction rounds to no image."


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch cnn-small run whose split asked 1% for test (a note: test is empty)."""
    root = tmp_path_factory.mktemp("notes")
    data = make_image_folder(root / "shapes", per_class=8, size=16)
    dcfg = DataConfig(val=0.2, test=0.01)
    return train(data, TrainConfig.from_dict(FAST), data_config=dcfg, out=root / "run").path


def _logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if EMPTY_TEST in r.getMessage()]


def test_the_run_keeps_its_split_notes_by_the_split_sizes(finished: Path) -> None:
    (note,) = json.loads((finished / "splits.json").read_text())["notes"]
    assert note["split"] == "test" and note["empty"] and note["text"].startswith(EMPTY_TEST)
    data = json.loads((finished / "model.json").read_text())["data"]
    assert data["splits"]["test"] == 0 and data["split_notes"] == [note["text"]]
    assert "split notes" in (finished / "report.html").read_text()
    assert EMPTY_TEST in (finished / "report.html").read_text()


def test_a_run_on_a_saved_manifest_logs_its_notes_again(finished: Path, tmp_path: Path, caplog) -> None:
    data = json.loads((finished / "config.json").read_text())["data"]
    with caplog.at_level(logging.WARNING):
        again = train(data, TrainConfig.from_dict(FAST), splits=finished / "splits.json", out=tmp_path / "again")
    assert len(_logged(caplog)) == 1
    assert json.loads((again.path / "model.json").read_text())["data"]["split_notes"][0].startswith(EMPTY_TEST)


def test_a_resumed_run_logs_its_notes_again(finished: Path, tmp_path: Path, caplog) -> None:
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    plan = plan_resume(run, TrainConfig.from_dict({**FAST, "epochs": 2}))
    with caplog.at_level(logging.WARNING):
        train(plan.data, plan.config, out=run, resume=True)
    assert len(_logged(caplog)) == 1
    assert json.loads((run / "splits.json").read_text())["notes"][0]["text"].startswith(EMPTY_TEST)
