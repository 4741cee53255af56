"""``imgrec predict``: every input that can be predicted is, failures exit 65/66, tables fit 80 columns."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image
from rich.console import Console
from tests.unit.export.helpers import make_classical_run
from tests.unit.imaging.image_server import image_server, png_bytes

from imgrec.cli.main import main
from imgrec.cli.predict_cmd import render
from imgrec.types import ClassScore, ItemError, Prediction


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return make_classical_run(tmp_path_factory.mktemp("runs") / "hog")


@pytest.fixture
def images(tmp_path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, value in enumerate((20, 240)):
        Image.new("RGB", (32, 32), (value,) * 3).save(folder / f"good{i}.png")
    return folder


def _corrupt(folder: Path, n: int = 2) -> list[Path]:
    paths = [folder / f"broken{i}.jpg" for i in range(n)]
    for p in paths:
        p.write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    return paths


def _predict(capsys, *args) -> tuple[int, str, str]:
    code = main(["predict", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_input_failing_exits_65(run, tmp_path, capsys):
    bad = _corrupt(tmp_path)
    code, out, err = _predict(capsys, run, *bad, "--format", "json")
    assert code == 65
    rows = json.loads(out)
    assert [r["error"]["code"] for r in rows] == ["image_invalid", "image_invalid"]
    assert "2 of 2 input(s) could not be predicted" in err


def test_a_failed_input_is_reported_the_rest_predicted_and_the_exit_is_65(run, images, capsys):
    _corrupt(images, 1)
    code, out, err = _predict(capsys, run, images, "--format", "csv")
    assert code == 65, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [Path(r["path"]).name for r in rows] == ["broken0.jpg", "good0.png", "good1.png"]
    assert rows[0]["error"].startswith("image_invalid") and all(r["label"] for r in rows[1:])


def test_missing_inputs_are_error_rows_and_exit_66(run, images, capsys):
    code, out, err = _predict(capsys, run, images / "good0.png", images / "nope.png", "--format", "json")
    assert code == 66, err
    rows = json.loads(out)
    assert "label" in rows[0] and rows[1]["error"]["code"] == "not_found"
    assert rows[1]["path"] == str(images / "nope.png")
    (images / "empty").mkdir()
    code, out, err = _predict(capsys, run, images / "empty", "--format", "json")
    assert code == 66 and json.loads(out)[0]["error"]["message"].startswith("No image in")


def test_an_unknown_row_still_names_its_top_class_in_table_csv_and_json(run, images, capsys):
    args = (run, images / "good0.png", "--threshold", "1.0")
    code, out, _ = _predict(capsys, *args, "--format", "csv")
    assert code == 0
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["label"] == "unknown"
    top, score = row["top1"].split()
    assert top in ("plain", "striped") and float(score) == pytest.approx(float(row["score"]), abs=1e-3)
    code, out, _ = _predict(capsys, *args, "--format", "json")
    (got,) = json.loads(out)
    assert got["label"] == "unknown" and got["top_class"] == top and got["top_k"][0]["label"] == top
    code, out, _ = _predict(capsys, *args)
    assert "unknown" in out and f"{top} " in out


def test_top_k_above_the_number_of_classes_is_clamped(run, images, capsys):
    code, out, _ = _predict(capsys, run, images / "good0.png", "--top-k", "5", "--format", "csv")
    assert code == 0
    assert out.splitlines()[0] == "path,label,score,top2,error"
    code, out, _ = _predict(capsys, run, images / "good0.png", "--top-k", "5")
    header = out.splitlines()[0].split()
    assert header == ["path", "label", "score", "top2"]


def test_max_pixels_refuses_larger_images(run, images, capsys):
    code, out, _ = _predict(capsys, run, images / "good0.png", "--max-pixels", "100", "--format", "json")
    assert code == 65
    (row,) = json.loads(out)
    assert row["error"]["code"] == "image_too_large" and "32x32" in row["error"]["message"]
    for bad in ("0", "-1", "lots"):  # refused every image as 'over -0.0 megapixels'
        with pytest.raises(SystemExit) as exit_:
            _predict(capsys, run, images / "good0.png", "--max-pixels", bad)
        assert exit_.value.code == 2 and "whole number of pixels >= 1" in capsys.readouterr().err


def _pred(path: str, label: str = "golden_retriever") -> Prediction:
    top = (ClassScore(label, 0.91), ClassScore("labrador_retriever", 0.05), ClassScore("beagle", 0.02))
    return Prediction(label=label, score=0.91, top_k=top, path=path)


def test_long_paths_keep_their_file_name_on_one_line_at_80_columns():
    deep = "/home/someone/pictures/holidays/2024/summer-at-the-lake/day-three"
    results = [_pred(f"{deep}/IMG_20240712_181512.jpg"), ItemError("image_invalid", "x.jpg is broken", f"{deep}/x.jpg")]
    for top_k in (1, 3):
        lines = _lines(render(results, "table", top_k, width=80))
        assert max(len(line) for line in lines) <= 80
        assert any(line.startswith("…/") and "IMG_20240712_181512.jpg  golden_retriever " in line for line in lines)
    lines = _lines(render(results[:1], "table", 2, width=80))
    assert any("/IMG_20240712_181512.jpg" in line and "labrador_retriever 0.050" in line for line in lines)


def _lines(renderable) -> list[str]:
    buf = io.StringIO()
    Console(width=80, file=buf, color_system=None).print(renderable)
    return buf.getvalue().splitlines()


def test_stdin_is_one_image_named_stdin(run, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(png_bytes(240, (32, 32)))))
    code, out, err = _predict(capsys, run, "-", "--format", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["path"] == "<stdin>" and row["label"] in ("plain", "striped")


def test_a_terminal_on_stdin_is_a_usage_error(run, capsys, monkeypatch):
    tty = SimpleNamespace(buffer=SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr(sys, "stdin", tty)
    code, _, err = _predict(capsys, run, "-")
    assert code == 2 and "stdin is a terminal" in err


def test_urls_are_refused_on_loopback_unless_allowed_and_keep_their_name(run, capsys):
    with image_server() as (base, log):
        url = f"{base}/img.png"
        code, out, err = _predict(capsys, run, url, "--format", "json")
        assert code == 65 and log.hits["/img.png"] == 0
        (row,) = json.loads(out)
        assert row["path"] == url and row["error"]["code"] == "url_not_allowed"
        assert "--allow-private-urls" in row["error"]["message"]
        code, out, err = _predict(capsys, run, url, f"{base}/missing", "--allow-private-urls", "--format", "json")
    assert code == 66, err  # the only failure is a missing image
    ok, missing = json.loads(out)
    assert ok["path"] == url and ok["label"] in ("plain", "striped")
    assert missing["error"]["code"] == "not_found" and "404" in missing["error"]["message"]
    assert "Traceback" not in out + err
