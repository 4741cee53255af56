"""COCO JSON, YOLO txt and Pascal VOC readers: synthetic layouts, auto-detection, real data."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from tests.detection_data import CATEGORY_IDS, CLASSES, SAMPLES, write_coco, write_jpeg, write_voc, write_yolo

from imgrec.data import detect_format, load_dataset
from imgrec.data.boxes import NO_OBJECTS, BoxTarget
from imgrec.errors import DatasetError


def _by_name(ds) -> dict[str, BoxTarget]:
    return {Path(s).name: t for s, t in zip(ds.sources, ds.targets, strict=True)}


def _expected(name: str, with_crowd: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    objs = next(o for n, _, o in SAMPLES if n == name)
    objs = [o for o in objs if with_crowd or not o[5]]
    boxes = np.array([o[1:5] for o in objs], np.float32).reshape(-1, 4)
    return boxes, np.array([o[0] for o in objs], np.int64), np.array([o[5] for o in objs], bool)


def test_coco_folder_maps_category_ids_and_keeps_crowd(tmp_path: Path) -> None:
    ds = load_dataset(write_coco(tmp_path / "coco"))
    assert ds.task == "detect" and ds.classes == CLASSES and ds.class_ids == CATEGORY_IDS
    got = _by_name(ds)
    assert sorted(got) == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    for name in got:
        boxes, labels, crowd = _expected(name)
        assert np.allclose(got[name].boxes, boxes) and got[name].labels.tolist() == labels.tolist()
        assert got[name].crowd.tolist() == crowd.tolist()
    assert got["a.jpg"].image_size == (64, 48)
    assert (
        len(got["c.jpg"]) == 0
        and ds.labels[ds.sources.index(next(s for s in ds.sources if s.endswith("c.jpg")))] == NO_OBJECTS
    )
    assert ds.issues == []


def test_coco_json_file_as_source_and_detection(tmp_path: Path) -> None:
    root = write_coco(tmp_path / "coco")
    json_file = root / "annotations" / "instances_train.json"
    assert detect_format(str(root)) == "coco" and detect_format(str(json_file)) == "coco"
    assert len(load_dataset(json_file)) == 4


def test_coco_unknown_category_and_missing_image_are_issues(tmp_path: Path) -> None:
    import json

    root = write_coco(tmp_path / "coco")
    f = root / "annotations" / "instances_train.json"
    doc = json.loads(f.read_text())
    doc["annotations"].append({"id": 99, "image_id": 100, "category_id": 5, "bbox": [1, 1, 2, 2]})
    doc["images"].append({"id": 7, "file_name": "gone.jpg", "width": 5, "height": 5})
    doc["images"].append({"id": 8, "file_name": "../../etc/passwd", "width": 5, "height": 5})
    f.write_text(json.dumps(doc))
    write_jpeg(root / "images" / "train" / "extra.jpg", (8, 8))
    ds = load_dataset(root)
    codes = sorted(i.code for i in ds.issues)
    assert codes == ["bad_image_entry", "missing_image", "unknown_class", "unlabeled_image"]
    assert len(ds) == 4


@pytest.mark.parametrize("style", ["list", "dict", "classes.txt"])
def test_yolo_names_styles_and_pixels(tmp_path: Path, style: str) -> None:
    ds = load_dataset(write_yolo(tmp_path / "y", names_style=style))
    assert ds.task == "detect" and ds.classes == CLASSES and ds.class_ids is None
    got = _by_name(ds)
    for name in got:
        boxes, labels, _ = _expected(name, with_crowd=False)
        assert np.allclose(got[name].boxes, boxes, atol=1e-3), name
        assert got[name].labels.tolist() == labels.tolist()
    assert [i.code for i in ds.issues] == ["unlabeled_image"]  # c.jpg has no label file


def test_yolo_exif_rotated_image_uses_the_displayed_size(tmp_path: Path) -> None:
    root = tmp_path / "y"
    write_jpeg(root / "images" / "r.jpg", (40, 20), exif_orientation=6)  # displayed 20 x 40
    (root / "labels").mkdir()
    (root / "labels" / "r.txt").write_text("0 0.5 0.5 1 1\n")
    (root / "classes.txt").write_text("thing\n")
    ds = load_dataset(root)
    assert ds.load(0).shape[:2] == (40, 20)
    assert ds.targets[0].boxes.tolist() == [[0.0, 0.0, 20.0, 40.0]]


def test_yolo_splits_from_image_folders_and_orphan_labels(tmp_path: Path) -> None:
    root = tmp_path / "y"
    for split in ("train", "val"):
        write_jpeg(root / "images" / split / f"{split}.jpg", (10, 10))
        (root / "labels" / split).mkdir(parents=True)
        (root / "labels" / split / f"{split}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "labels" / "train" / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text("names: {0: thing}\n")
    ds = load_dataset(root)
    assert sorted(ds.splits.tolist()) == ["train", "val"]
    assert [(i.code, Path(i.file).name) for i in ds.issues] == [("missing_image", "ghost.txt")]


def test_yolo_without_names_says_where_they_go(tmp_path: Path) -> None:
    root = write_yolo(tmp_path / "y")
    (root / "data.yaml").unlink()
    with pytest.raises(DatasetError, match=r"data.yaml with 'names"):
        load_dataset(root, format="yolo")


def test_voc_reads_difficult_truncated_and_sorted_classes(tmp_path: Path) -> None:
    root = write_voc(tmp_path / "voc")
    assert detect_format(str(root)) == "voc"
    ds = load_dataset(root)
    assert ds.classes == sorted(CLASSES)
    got = _by_name(ds)
    b = got["b.jpg"]
    assert [ds.classes[k] for k in b.labels] == ["bird", "cat"] and b.difficult.tolist() == [False, True]
    assert b.truncated is not None and not b.truncated.any()
    assert np.allclose(got["a.jpg"].boxes, _expected("a.jpg")[0]) and got["a.jpg"].image_size == (64, 48)


def test_voc_image_sets_become_splits(tmp_path: Path) -> None:
    root = write_voc(tmp_path / "voc")
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (main / "train.txt").write_text("a\nb\nc\n")
    (main / "val.txt").write_text("d\n")
    ds = load_dataset(root)
    assert dict(zip([Path(s).stem for s in ds.sources], ds.splits.tolist(), strict=True))["d"] == "val"


# ---- real data ----------------------------------------------------------------------------


def test_real_coco128_json(shared_data) -> None:
    root = shared_data("coco128")
    started = time.perf_counter()
    ds = load_dataset(root)
    seconds = time.perf_counter() - started
    assert detect_format(str(root)) == "coco"
    assert len(ds) == 128 and len(ds.classes) == 80 and ds.class_ids[0] == 1 and max(ds.class_ids) == 90
    assert sum(len(t) for t in ds.targets) == 939
    assert sum(int(t.crowd.sum()) for t in ds.targets) == 10
    assert sum(ds.instance_counts().values()) == 929  # crowd boxes are not instances
    assert ds.issues == [] and seconds < 10


def test_real_coco128_yolo_labels(shared_data) -> None:
    ds = load_dataset(shared_data("coco128"), format="yolo")
    assert len(ds) == 128 and len(ds.classes) == 80
    no_file = sorted(Path(i.image).stem for i in ds.issues if i.code == "unlabeled_image")
    assert no_file == ["000000000250", "000000000508"]
    assert len(ds.issues) == 2 and sum(len(t) for t in ds.targets) == 929


def test_real_coco128_json_and_yolo_agree_box_for_box(shared_data) -> None:
    coco = _by_name(load_dataset(shared_data("coco128")))
    yolo = _by_name(load_dataset(shared_data("coco128"), format="yolo"))
    assert sorted(coco) == sorted(yolo)
    compared = 0
    for name, c in coco.items():
        y, keep = yolo[name], ~c.crowd
        assert len(y) == int(keep.sum()), name
        for box, label in zip(c.boxes[keep], c.labels[keep], strict=True):
            dist = np.abs(y.boxes - box).max(axis=1)
            dist[y.labels != label] = np.inf
            assert dist.min() <= 1.0, (name, box)
            compared += 1
    assert compared == 929


def test_real_bccd_voc(shared_data) -> None:
    root = shared_data("bccd")
    ds = load_dataset(root)
    assert detect_format(str(root)) == "voc"
    assert len(ds) == 364 and ds.classes == ["Platelets", "RBC", "WBC"]
    assert ds.instance_counts() == {"Platelets": 361, "RBC": 4155, "WBC": 372}
    assert sum(len(t) for t in ds.targets) == 4888
    assert {s: int((ds.splits == s).sum()) for s in ("train", "val", "test")} == {"train": 205, "val": 87, "test": 72}
    zero = sorted(
        Path(s).stem for s, t in zip(ds.sources, ds.targets, strict=True) if (t.boxes[:, 2] <= t.boxes[:, 0]).any()
    )
    assert zero == ["BloodImage_00338", "BloodImage_00343"]


def test_task_detect_reads_every_detection_format(tmp_path: Path) -> None:
    """`imgrec data check YOLO --task detect` was 'The yolo format holds no detect data'."""
    from imgrec.errors import UsageError

    for name, write in (("coco", write_coco), ("yolo", write_yolo), ("voc", write_voc)):
        assert load_dataset(write(tmp_path / name), task="detect").task == "detect", name
    with pytest.raises(UsageError, match="The yolo format holds no segment data"):
        load_dataset(tmp_path / "yolo", task="segment")
