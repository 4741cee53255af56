"""imgrec data check | convert | split on detection datasets, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.detection_data import write_coco, write_jpeg

from imgrec.cli.main import main


def _bad_yolo(root: Path, n_bad: int, n_clean: int) -> Path:
    (root / "labels").mkdir(parents=True)
    for k in range(n_bad + n_clean):
        write_jpeg(root / "images" / f"{k}.jpg", (40, 30), 7 * k)
        line = "0 0.9 0.5 0.5 0.2\n" if k < n_bad else "1 0.5 0.5 0.2 0.2\n"  # the bad ones reach outside
        (root / "labels" / f"{k}.txt").write_text(line)
    (root / "data.yaml").write_text("names: [cat, dog]\n")
    return root


def test_check_strict_exits_65_when_many_boxes_are_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _bad_yolo(tmp_path / "y", n_bad=3, n_clean=10)
    assert main(["data", "check", str(data)]) == 0
    out = capsys.readouterr().out
    assert "outside_image" in out and "labels/0.txt:1" in out
    assert main(["data", "check", str(data), "--strict", "--json", str(tmp_path / "r.json")]) == 65
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["task"] == "detect" and {i["code"] for i in report["label_issues"]} == {"outside_image"}


def test_check_strict_passes_when_few_boxes_are_bad(tmp_path: Path) -> None:
    assert main(["data", "check", str(_bad_yolo(tmp_path / "y", n_bad=1, n_clean=30)), "--strict"]) == 0


def test_check_real_bccd(shared_data, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", str(shared_data("bccd")), "--strict"]) == 0
    out = capsys.readouterr().out
    assert "4888 boxes" in out and "zero_area_box" in out and "BloodImage_00338.xml" in out


def test_convert_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_coco(tmp_path / "coco")
    assert main(["data", "convert", str(src), "--to", "yolo", "--out", str(tmp_path / "y")]) == 0
    out = capsys.readouterr().out
    assert "4 images, 4 boxes" in out and "crowd" in out
    assert (tmp_path / "y" / "labels" / "a.txt").is_file() and (tmp_path / "y" / "data.yaml").is_file()
    assert main(["data", "convert", str(src), "--to", "voc", "--out", str(tmp_path / "y")]) == 73
    assert main(["data", "convert", str(tmp_path / "nope"), "--to", "voc", "--out", str(tmp_path / "v")]) == 66
    with pytest.raises(SystemExit) as exc:
        main(["data", "convert", str(src), "--to", "xml", "--out", str(tmp_path / "v")])
    assert exc.value.code == 2
    assert (
        main(["data", "convert", str(tmp_path / "y"), "--from", "yolo", "--to", "coco", "--out", str(tmp_path / "c")])
        == 0
    )


def test_split_cli_on_detection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_coco(tmp_path / "coco")
    manifest = tmp_path / "splits.json"
    assert main(["data", "split", str(src), "--val", "0.25", "--test", "0", "--out", str(manifest)]) == 0
    data = json.loads(manifest.read_text())
    assert sum(data["sizes"].values()) == 4 and data["classes"] == ["cat", "dog", "bird"]
    assert main(["data", "check", str(src), "--splits", str(manifest)]) == 0


def test_preview_draws_boxes_after_augmentation(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    src = write_coco(tmp_path / "coco")
    out = tmp_path / "preview.png"
    args = ["data", "preview", str(src), "--augment", "flip", "--n", "2", "--variants", "2", "--size", "48"]
    assert main([*args, "--out", str(out)]) == 0
    grid = np.asarray(Image.open(out).convert("RGB")).astype(int)
    red = (grid[..., 0] > 200) & (grid[..., 1] < 90) & (grid[..., 2] < 90)
    assert red.sum() > 20  # the box outlines


def test_check_format_option_reads_coco128_yolo_labels(shared_data, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "check", str(shared_data("coco128")), "--format", "yolo", "--near-dup-distance", "-1"]) == 0
    out = capsys.readouterr().out
    assert "929 boxes" in out and "unlabeled_image" in out and "000000000250" in out
