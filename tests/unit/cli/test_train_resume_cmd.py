"""imgrec train --resume RUN [--epochs M]: finish, extend, or say why not (never silently re-report)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.conftest import make_image_folder

from imgrec.cli.main import main

pytest.importorskip("torch")

FAST = ("--epochs", "2", "--batch-size", "8", "--image-size", "16", "--threads", "1", "--augment", "none")


def imgrec(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A finished 2-epoch cnn-small run and a hog-svm run (copy them before changing them)."""
    root = tmp_path_factory.mktemp("cli-resume")
    data = make_image_folder(root / "shapes", per_class=8, size=16)
    assert main(["train", str(data), "--model", "cnn-small", *FAST, "--out", str(root / "cnn")]) == 0
    assert main(["train", str(data), "--model", "hog-svm", "--out", str(root / "hog")]) == 0
    return {"cnn": root / "cnn", "hog": root / "hog", "data": data}


@pytest.fixture
def cnn(runs, tmp_path) -> Path:
    return Path(shutil.copytree(runs["cnn"], tmp_path / "cnn"))


def test_a_finished_run_says_so_and_trains_nothing(cnn, capsys) -> None:
    before = (cnn / "model.json").read_bytes()
    code, text = imgrec(capsys, "train", "--resume", cnn)
    assert code == 0, text
    assert "already finished 2 epochs; pass --epochs M > 2 to train further" in text
    assert (cnn / "model.json").read_bytes() == before


def test_more_epochs_extend_the_run(cnn, capsys) -> None:
    code, text = imgrec(capsys, "train", "--resume", cnn, "--epochs", "3")
    assert code == 0, text
    assert "extending" in text and "from 2 to 3 epochs" in text
    assert "Weights kept: epoch" in text and "of 3, the best by val_accuracy" in text
    rows = json.loads((cnn / "history.json").read_text())["epochs"]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert json.loads((cnn / "model.json").read_text())["training"]["epochs"] == 3


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--epochs", "4", "--lr", "0.5"), "lr (run: None, given: 0.5)"),
        (("--optimizer", "sgd"), "optimizer (run: 'adamw', given: 'sgd')"),
        (("--model-arg", "dropout=0.5"), "model_args"),
        (("--val", "0.3"), "drop --val"),
    ],
)
def test_other_changed_flags_are_refused_with_the_reason(cnn, capsys, extra, needle) -> None:
    code, text = imgrec(capsys, "train", "--resume", cnn, *extra)
    assert code == 2 and needle in text and "Traceback" not in text
    assert [r["epoch"] for r in json.loads((cnn / "history.json").read_text())["epochs"]] == [1, 2]


def test_a_classical_run_cannot_be_resumed(runs, capsys) -> None:
    code, text = imgrec(capsys, "train", "--resume", runs["hog"], "--epochs", "5")
    assert code == 2 and "classical model" in text and "fits in one pass" in text
