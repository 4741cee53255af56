"""imgrec data split says when val or test is not the size asked, and why; warns when one is empty."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import shared_data_path
from tests.segmentation_data import link

from imgrec.cli.main import main


def _first_coco128_images(root: Path, n: int) -> Path:
    """A COCO folder of COCO128's first ``n`` images (all 80 categories listed, few present)."""
    src = shared_data_path("coco128")
    doc = json.loads((src / "annotations" / "instances_train2017.json").read_text())
    images = doc["images"][:n]
    ids = {im["id"] for im in images}
    doc = {**doc, "images": images, "annotations": [a for a in doc["annotations"] if a["image_id"] in ids]}
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_train2017.json").write_text(json.dumps(doc))
    for im in images:
        link(src / "images" / "train2017" / im["file_name"], root / "images" / "train2017" / im["file_name"])
    return root


def test_split_notes_a_larger_val_and_warns_of_empty_ones(tmp_path, capsys) -> None:
    out = tmp_path / "s.json"
    assert main(["data", "split", str(shared_data_path("coco128")), "--val", "0.1", "--test", "0",
                 "--out", str(out)]) == 0  # fmt: skip
    text = " ".join(capsys.readouterr().out.split())
    assert "note val: 28 images (asked 10% = 13): 15 added so that every class held by two or more images" in text
    assert "warning" not in text and json.loads(out.read_text())["sizes"]["val"] == 28
    small = _first_coco128_images(tmp_path / "small", 8)
    assert main(["data", "split", str(small), "--val", "0.25", "--test", "0.25", "--out", str(out)]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "warning: val: 0 images (asked 25% = 2)" in text and "training has no validation images" in text
    assert "warning: test: 0 images (asked 25% = 2)" in text and "no held-out test figures" in text
