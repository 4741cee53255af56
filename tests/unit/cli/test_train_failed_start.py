"""A train that fails before training leaves no half-made runs/<model>-<n>/ behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import make_image_folder

from imgrec.cli.main import main
from imgrec.models import hub

pytest.importorskip("torch")


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three classes x 6 PNGs of 16 px; the working directory is an empty folder."""
    folder = make_image_folder(tmp_path / "shapes", per_class=6, size=16)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return folder


def imgrec(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--model", "cnn-smal"), "Did you mean 'cnn-small'"),
        (("--model", "cnn-small", "--model-arg", "nonsense=1"), "nonsense"),
        (("--model", "cnn-small", "--image-size", "0"), "image_size must be >= 8"),
        (("--model", "cnn-small", "--image-size", "8"), "at least 10 pixels"),
    ],
)
def test_a_wrong_model_option_or_size_makes_no_run_folder(data, capsys, args, needle) -> None:
    code, text = imgrec(capsys, "train", data, "--epochs", "1", *args)
    assert code == 2 and needle in text and "Traceback" not in text
    assert not Path("runs").exists()


def test_offline_pretrained_makes_no_run_folder(data, capsys, monkeypatch) -> None:
    monkeypatch.setattr(hub, "cached_pretrained", lambda name: None)  # no local copy of the weights
    monkeypatch.setattr(hub, "reachable", lambda *a, **k: False)  # and the weight server is out of reach
    code, text = imgrec(capsys, "train", data, "--model", "resnet18", "--pretrained", "--epochs", "1")
    assert code == 66 and "offline" in text and "--weights FILE" in text
    assert not Path("runs").exists()


def test_after_failed_starts_the_next_run_is_number_one(data, capsys) -> None:
    for bad in (("--model-arg", "nonsense=1"), ("--image-size", "8")):
        assert imgrec(capsys, "train", data, "--model", "cnn-small", "--epochs", "1", *bad)[0] == 2
    code, text = imgrec(
        capsys, "train", data, "--model", "cnn-small", "--epochs", "1", "--image-size", "16", "--batch-size", "8"
    )
    assert code == 0, text
    assert sorted(p.name for p in Path("runs").iterdir()) == ["cnn-small-1"]
    assert (Path("runs") / "cnn-small-1" / "model.json").is_file()
