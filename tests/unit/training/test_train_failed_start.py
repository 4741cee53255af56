"""train(): what a failed start removes (only what it created) and what it never touches."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import make_image_folder

from imgrec.config import TrainConfig
from imgrec.errors import DatasetError, UsageError
from imgrec.training import train


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("d") / "shapes", per_class=5, size=16)


def test_folders_made_by_a_failed_call_are_removed_parents_included(shapes, tmp_path) -> None:
    out = tmp_path / "a" / "b" / "run"
    with pytest.raises(UsageError):
        train(shapes, TrainConfig(model="hog-svm", model_args={"nonsense": 1}), out=out)
    assert list(tmp_path.iterdir()) == []


def test_a_user_folder_that_held_files_is_never_touched(shapes, tmp_path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError):
        train(shapes, TrainConfig(model="hog-svm", model_args={"nonsense": 1}), out=mine)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_a_failure_while_loading_the_data_removes_the_new_run(tmp_path) -> None:
    data = make_image_folder(tmp_path / "data", per_class=4, size=16)
    for i in range(3):
        (data / "circle" / f"broken{i}.jpg").write_bytes(b"\xff\xd8\xff" + bytes(10))
    (tmp_path / "runs").mkdir()
    with pytest.raises(DatasetError, match=r"broken0\.jpg"):
        train(data, TrainConfig(model="hog-svm"), runs_root=tmp_path / "runs")
    assert list((tmp_path / "runs").iterdir()) == []  # runs/ was there before: it stays, emptied


def test_a_fresh_split_that_is_not_the_size_asked_is_a_warning(shapes, tmp_path, caplog) -> None:
    from imgrec.config import DataConfig

    with caplog.at_level("WARNING"):
        train(shapes, TrainConfig(model="hog-svm"), data_config=DataConfig(val=0.2, test=0.02), out=tmp_path / "r")
    warned = [r.getMessage() for r in caplog.records if r.getMessage().startswith("test: ")]
    assert warned == ["test: 0 images (asked 2% = 0): the fraction rounds to no image. It is empty: there are no "
                      "held-out test figures; ask a larger fraction."]  # fmt: skip
