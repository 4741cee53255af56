"""imgrec data convert through the CLI: a conversion that fails half-way leaves no output behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.detection_data import write_coco
from tests.segmentation_data import write_mask_folder

from imgrec.cli.main import main


def _boxes_with_a_corrupt_last_image(root: Path) -> Path:
    """COCO boxes, 4 images; the last one is not an image and its entry states no size."""
    write_coco(root)
    path = root / "annotations" / "instances_train.json"
    doc = json.loads(path.read_text())
    del doc["images"][-1]["width"], doc["images"][-1]["height"]
    path.write_text(json.dumps(doc))
    (root / "images" / "train" / "d.jpg").write_bytes(b"not an image")
    return root


def _masks_with_a_corrupt_last_mask(root: Path) -> Path:
    """A mask folder of 3 COCO128 photos; the last mask file is not a PNG."""
    write_mask_folder(root, n=3)
    sorted((root / "masks").glob("*.png"))[-1].write_bytes(b"not a png")
    return root


@pytest.mark.parametrize(
    ("make", "to"),
    [
        (_boxes_with_a_corrupt_last_image, "coco"),
        (_boxes_with_a_corrupt_last_image, "yolo"),
        (_boxes_with_a_corrupt_last_image, "voc"),
        (_masks_with_a_corrupt_last_mask, "masks"),
        (_masks_with_a_corrupt_last_mask, "coco"),
    ],
)
def test_a_failed_conversion_leaves_no_output_folder(tmp_path: Path, capsys, make, to: str) -> None:
    src = make(tmp_path / "src")
    work = tmp_path / "work"
    work.mkdir()
    assert main(["data", "convert", str(src), "--to", to, "--out", str(work / "out")]) == 65
    assert "unrecognised format" in capsys.readouterr().err  # the first bad file is named
    assert list(work.iterdir()) == []  # no --out folder, no hidden staging folder next to it


def test_a_failed_conversion_keeps_an_empty_out_folder_empty(tmp_path: Path) -> None:
    src = _boxes_with_a_corrupt_last_image(tmp_path / "src")
    out = tmp_path / "work" / "out"
    out.mkdir(parents=True)
    assert main(["data", "convert", str(src), "--to", "yolo", "--out", str(out)]) == 65
    assert [p.name for p in out.parent.iterdir()] == ["out"] and list(out.iterdir()) == []
    write_coco(tmp_path / "good")
    assert main(["data", "convert", str(tmp_path / "good"), "--to", "yolo", "--out", str(out)]) == 0
    assert (out / "data.yaml").is_file() and [p.name for p in out.parent.iterdir()] == ["out"]


def test_yolo_labels_that_could_not_be_placed_are_not_converted_to_unlabeled_images(tmp_path: Path, capsys) -> None:
    """A YOLO image that cannot be measured loses its boxes while reading; converting it would write
    it unlabeled (exit 0 before), so the conversion is refused, naming the file, nothing written."""
    from tests.detection_data import write_squares_yolo

    src = write_squares_yolo(tmp_path / "src", n=3)
    image = sorted((src / "images").rglob("*.jpg"))[-1]
    assert (src / "labels" / image.relative_to(src / "images")).with_suffix(".txt").stat().st_size > 0
    image.write_bytes(b"not an image")
    for to in ("yolo", "coco"):
        assert main(["data", "convert", str(src), "--to", to, "--out", str(tmp_path / to)]) == 65
        err = capsys.readouterr().err
        assert "lost their labels while reading" in err and image.name in err and "nothing was written" in err
        assert not (tmp_path / to).exists()
