"""imgrec compare: each row shows what it was scored on; mixed runs get a warning under the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import make_image_folder

from imgrec.cli.main import main


def imgrec(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """hog-svm on 5 and on 9 images per class: different data, different test sizes."""
    root = tmp_path_factory.mktemp("compare")
    out = []
    for n in (5, 9):
        data = make_image_folder(root / f"shapes{n}", per_class=n, seed=n, size=16)
        assert main(["train", str(data), "--model", "hog-svm", "--out", str(root / f"hog{n}")]) == 0
        out.append(root / f"hog{n}")
    return out


def test_json_has_rows_with_data_facts_and_warnings(runs, capsys) -> None:
    code, text = imgrec(capsys, "compare", *runs, "--format", "json")
    assert code == 0, text
    board = json.loads(text)
    assert {r["run"] for r in board["runs"]} == {"hog5", "hog9"}
    assert all(len(r["fingerprint"]) == 16 and r["images"] > 0 for r in board["runs"])
    assert any("different data" in w for w in board["warnings"])
    assert any("numbers of images" in w for w in board["warnings"])


def test_the_table_shows_data_and_images_and_warns_below(runs, capsys) -> None:
    code, text = imgrec(capsys, "compare", *runs)
    assert code == 0, text
    assert "images" in text and "data" in text
    table, _, below = text.partition("warning:")
    assert "hog5" in table and "different data" in below


def test_one_run_twice_gets_no_warning(runs, capsys) -> None:
    code, text = imgrec(capsys, "compare", runs[0], runs[0], "--format", "json")
    assert code == 0 and json.loads(text)["warnings"] == []
