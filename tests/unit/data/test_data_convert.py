"""convert_dataset: round trips between COCO, YOLO and VOC; linked images; atomic outputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from tests.detection_data import CATEGORY_IDS, CLASSES, write_coco, write_voc, write_yolo

from imgrec.data import load_dataset
from imgrec.data.convert import convert_dataset, list_label_formats
from imgrec.errors import DatasetError, OutputError, UnknownNameError


def _named(ds) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return {Path(s).name: (t.boxes, t.labels, t.crowd) for s, t in zip(ds.sources, ds.targets, strict=True)}


def test_formats() -> None:
    assert list_label_formats() == ["coco", "masks", "voc", "yolo"]


def test_coco_yolo_coco_round_trip_restores_boxes_and_ids(tmp_path: Path) -> None:
    src = load_dataset(write_coco(tmp_path / "coco"))
    result = convert_dataset(src, "yolo", tmp_path / "yolo")
    assert result.images == 4 and result.boxes == 4 and result.linked == 4
    assert any("crowd" in n for n in result.notes)
    mid = load_dataset(tmp_path / "yolo")
    assert mid.classes == CLASSES and mid.class_ids == CATEGORY_IDS
    convert_dataset(mid, "coco", tmp_path / "back")
    back = load_dataset(tmp_path / "back")
    assert back.class_ids == CATEGORY_IDS and back.classes == CLASSES
    a, b = _named(src), _named(back)
    assert sorted(a) == sorted(b)
    for name, (boxes, labels, crowd) in a.items():
        assert np.abs(b[name][0] - boxes[~crowd]).max(initial=0) < 1e-3
        assert b[name][1].tolist() == labels[~crowd].tolist()


def test_coco_to_coco_is_exact_and_keeps_crowd(tmp_path: Path) -> None:
    src = load_dataset(write_coco(tmp_path / "coco"))
    convert_dataset(src, "coco", tmp_path / "out")
    back = load_dataset(tmp_path / "out")
    for name, (boxes, labels, crowd) in _named(src).items():
        got = _named(back)[name]
        assert np.array_equal(got[0], boxes) and np.array_equal(got[1], labels) and np.array_equal(got[2], crowd)


def test_voc_rounds_to_integers_and_says_so(tmp_path: Path) -> None:
    src = load_dataset(write_coco(tmp_path / "coco"))
    result = convert_dataset(src, "voc", tmp_path / "voc")
    assert any("integer pixels: 1 box" in n for n in result.notes)  # a.jpg's first box has fractions
    assert any("written as difficult" in n for n in result.notes)
    back = load_dataset(tmp_path / "voc")
    assert back.classes == CLASSES  # classes.txt keeps the order
    got = _named(back)["a.jpg"][0]
    assert got.tolist() == [[2.0, 3.0, 31.0, 40.0], [10.0, 5.0, 20.0, 15.0]]
    b = next(t for s, t in zip(back.sources, back.targets, strict=True) if s.endswith("b.jpg"))
    assert b.difficult.tolist() == [False, True]


def test_voc_yolo_voc_round_trip_is_exact_for_integer_boxes(tmp_path: Path) -> None:
    src = load_dataset(write_voc(tmp_path / "voc"))
    convert_dataset(src, "yolo", tmp_path / "yolo")
    convert_dataset(load_dataset(tmp_path / "yolo"), "voc", tmp_path / "back")
    a, b = _named(src), _named(load_dataset(tmp_path / "back"))
    for name in ("a.jpg", "d.jpg"):
        assert np.array_equal(np.round(a[name][0]), b[name][0][: len(a[name][0])])


def test_images_are_linked_not_reencoded(tmp_path: Path) -> None:
    root = write_yolo(tmp_path / "y")
    convert_dataset(load_dataset(root), "coco", tmp_path / "c")
    for img in (root / "images").iterdir():
        out = tmp_path / "c" / "images" / img.name
        assert out.read_bytes() == img.read_bytes() and os.stat(out).st_ino == os.stat(img).st_ino


def test_copy_when_linking_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(*args: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    result = convert_dataset(load_dataset(write_yolo(tmp_path / "y")), "voc", tmp_path / "v")
    assert result.copied == 4 and result.linked == 0
    assert not list((tmp_path / "v").rglob(".*.tmp"))


def test_splits_are_kept(tmp_path: Path) -> None:
    root = write_voc(tmp_path / "voc")
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "train.txt").write_text("a\nb\nc\n")
    (main / "val.txt").write_text("d\n")
    src = load_dataset(root)
    for fmt in ("coco", "yolo", "voc"):
        convert_dataset(src, fmt, tmp_path / f"out-{fmt}")
        back = load_dataset(tmp_path / f"out-{fmt}")
        assert dict(zip([Path(s).stem for s in back.sources], back.splits.tolist(), strict=True)) == {
            "a": "train",
            "b": "train",
            "c": "train",
            "d": "val",
        }, fmt


def test_refuses_non_empty_output_and_classification_data(tmp_path: Path, image_folder: Path) -> None:
    src = load_dataset(write_coco(tmp_path / "coco"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep me")
    with pytest.raises(OutputError, match="not an empty folder"):
        convert_dataset(src, "yolo", tmp_path / "full")
    assert (tmp_path / "full" / "x").read_text() == "keep me"
    with pytest.raises(DatasetError, match="classify dataset"):
        convert_dataset(load_dataset(image_folder), "yolo", tmp_path / "o")
    with pytest.raises(UnknownNameError, match="Did you mean 'yolo'"):
        convert_dataset(src, "yollo", tmp_path / "o2")


def test_a_failed_write_leaves_no_file_under_its_final_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import imgrec.data.convert as convert

    real_replace = os.replace
    calls = {"n": 0}

    def failing_replace(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(convert.os, "replace", failing_replace)
    src = load_dataset(write_coco(tmp_path / "coco"))
    with pytest.raises(OutputError, match="No space left"):
        convert_dataset(src, "yolo", tmp_path / "out" / "y")
    assert list((tmp_path / "out").iterdir()) == []  # neither the output nor its staging folder


def test_an_interrupted_conversion_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import imgrec.data.convert as convert

    real_place = convert._place_image
    calls = {"n": 0}

    def interrupted(*args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        real_place(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(convert, "_place_image", interrupted)
    src = load_dataset(write_coco(tmp_path / "coco"))
    with pytest.raises(KeyboardInterrupt):
        convert_dataset(src, "voc", tmp_path / "out" / "v")
    assert list((tmp_path / "out").iterdir()) == []


def test_real_coco128_to_yolo_and_back_to_the_pixel(shared_data, tmp_path: Path) -> None:
    src = load_dataset(shared_data("coco128"))
    result = convert_dataset(src, "yolo", tmp_path / "yolo")
    assert result.images == 128 and result.boxes == 929
    convert_dataset(load_dataset(tmp_path / "yolo"), "coco", tmp_path / "coco")
    back = load_dataset(tmp_path / "coco")
    assert back.class_ids == src.class_ids and back.classes == src.classes
    a, b = _named(src), _named(back)
    worst = max(float(np.abs(b[n][0] - a[n][0][~a[n][2]]).max(initial=0)) for n in a)
    assert worst < 0.01
    assert all(b[n][1].tolist() == a[n][1][~a[n][2]].tolist() for n in a)


def test_coco_areas_are_read_and_kept_by_conversion(shared_data, tmp_path: Path) -> None:
    """COCO's ``area`` (the segmentation's) decides small/medium/large; it is not the box area."""
    import json

    path = shared_data("coco128", "annotations", "instances_train2017.json")
    stated = {a["id"]: a["area"] for a in json.loads(path.read_text())["annotations"]}
    src = load_dataset(shared_data("coco128"))
    areas = np.concatenate([t.areas for t in src.targets if len(t)])
    boxes = np.concatenate([t.boxes for t in src.targets if len(t)])
    assert len(areas) == len(stated) == 939  # crowd regions included
    assert sorted(np.round(areas, 2).tolist()) == sorted(np.round(np.float32(list(stated.values())), 2).tolist())
    box_areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert (areas < box_areas).mean() > 0.9  # a mask covers less than its box
    convert_dataset(src, "coco", tmp_path / "coco")
    back = load_dataset(tmp_path / "coco")
    np.testing.assert_allclose(np.concatenate([t.areas for t in back.targets if len(t)]), areas, rtol=1e-6)
