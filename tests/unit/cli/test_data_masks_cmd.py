"""imgrec data check / convert / preview on segmentation data, through the CLI."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from tests.conftest import shared_data_path
from tests.segmentation_data import save_palette_png, write_mask_folder

from imgrec.cli.main import main


def test_check_reports_pixels_and_mask_problems(tmp_path, capsys) -> None:
    root, masks = write_mask_folder(tmp_path / "m", n=4)
    save_palette_png(sorted((root / "masks").glob("*.png"))[0], masks[0][:, :-1])
    out = tmp_path / "check.json"
    assert main(["data", "check", str(root), "--json", str(out), "--near-dup-distance", "-1"]) == 0
    text = capsys.readouterr().out
    assert "pixels" in text and "mask_size_mismatch" in text
    report = json.loads(out.read_text())
    assert report["task"] == "segment" and report["pixel_counts"]["giraffe"] > 0
    assert main(["data", "check", str(root), "--strict", "--near-dup-distance", "-1"]) == 65


def test_convert_coco_to_masks_and_preview(tmp_path, capsys) -> None:
    coco = shared_data_path("coco128")
    out = tmp_path / "masks"
    assert main(["data", "convert", str(coco), "--task", "instance", "--to", "masks", "--out", str(out)]) == 0
    assert len(list((out / "masks").rglob("*.png"))) == 128 and (out / "classes.txt").is_file()
    small, _ = write_mask_folder(tmp_path / "small", n=3)
    assert main(["data", "convert", str(small), "--to", "coco", "--mask-encoding", "polygon",
                 "--out", str(tmp_path / "back")]) == 0  # fmt: skip
    assert "polygon" in capsys.readouterr().out.lower()
    png = tmp_path / "p.png"
    assert main(["data", "preview", str(out), "--n", "2", "--variants", "2", "--size", "48", "--out", str(png)]) == 0
    grid = np.asarray(Image.open(png))
    assert grid.shape[1] == 3 * 48
