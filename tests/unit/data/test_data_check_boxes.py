"""check_dataset on detection data: box geometry, label-file problems, thresholds, instance counts."""

from __future__ import annotations

import json
from pathlib import Path

from tests.detection_data import write_coco, write_jpeg

from imgrec.data import check_dataset, load_dataset


def _yolo(root: Path, labels: dict[str, str], n_clean: int = 0) -> Path:
    (root / "labels").mkdir(parents=True)
    for k, (name, text) in enumerate(labels.items()):
        write_jpeg(root / "images" / f"{name}.jpg", (100, 50), 10 * k)
        (root / "labels" / f"{name}.txt").write_text(text)
    for k in range(n_clean):
        write_jpeg(root / "images" / f"clean{k}.jpg", (100, 50), 100 + 3 * k)
        (root / "labels" / f"clean{k}.txt").write_text(f"{k % 2} 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text("names: [cat, dog]\n")
    return root


def _codes(report) -> dict[str, str]:
    return {p["code"]: p["severity"] for p in report.problems}


def test_box_problems_name_file_and_line(tmp_path: Path) -> None:
    bad = "0 0.5 0.5 0.2 0.2\n1 0.95 0.5 0.3 0.2\n0 0.5 0.5 0 0.2\n0 0.5 0.5 0.2 0.2\n5 0.5 0.5 0.1 0.1\nzzz\n"
    root = _yolo(tmp_path / "y", {"bad": bad, "ok": "1 0.5 0.5 0.5 0.5\n"})
    report = check_dataset(load_dataset(root), near_dup_distance=-1)
    issues = {(i["code"], Path(i["file"]).name, i["line"]) for i in report.label_issues}
    assert issues == {
        ("outside_image", "bad.txt", 2),
        ("zero_area_box", "bad.txt", 3),
        ("duplicate_boxes", "bad.txt", 4),
        ("unknown_class", "bad.txt", 5),
        ("unparsable_line", "bad.txt", 6),
    }
    problems = {p["code"]: p for p in report.problems}
    assert "labels/bad.txt:2: " in problems["outside_image"]["message"]
    assert problems["outside_image"]["severity"] == "error"  # 1 of 2 images: over 5%
    assert problems["duplicate_boxes"]["severity"] == "warning"
    assert not report.ok
    assert report.instance_counts == {"cat": 3, "dog": 2} and report.num_boxes == 5


def test_rare_problems_are_warnings_and_report_is_ok(tmp_path: Path) -> None:
    root = _yolo(tmp_path / "y", {"bad": "0 0.5 0.5 0 0.2\n"}, n_clean=30)
    report = check_dataset(load_dataset(root), near_dup_distance=-1)
    assert _codes(report)["zero_area_box"] == "warning" and report.ok


def test_unlabeled_images_and_orphan_labels(tmp_path: Path) -> None:
    root = _yolo(tmp_path / "y", {"a": "0 0.5 0.5 0.2 0.2\n"}, n_clean=30)
    write_jpeg(root / "images" / "nolabel.jpg", (20, 20))
    (root / "labels" / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    codes = _codes(check_dataset(load_dataset(root), near_dup_distance=-1))
    assert codes["unlabeled_image"] == "info" and codes["missing_image"] == "warning"


def test_coco_stated_size_mismatch_and_outside(tmp_path: Path) -> None:
    root = write_coco(tmp_path / "coco")
    f = root / "annotations" / "instances_train.json"
    doc = json.loads(f.read_text())
    doc["images"][0]["width"] = 640  # a.jpg is 64x48
    doc["annotations"][0]["bbox"] = [50, 10, 20, 10]  # reaches x=70 > 64
    f.write_text(json.dumps(doc))
    report = check_dataset(load_dataset(root), near_dup_distance=-1)
    codes = _codes(report)
    assert codes["size_mismatch"] == "warning" and codes["outside_image"] == "error"
    msg = next(p["message"] for p in report.problems if p["code"] == "outside_image")
    assert "annotations[0]" in msg and "a.jpg" in msg


def test_class_imbalance_is_judged_on_boxes(tmp_path: Path) -> None:
    nine_cats = "".join(f"0 0.{k} 0.{k} 0.05 0.05\n" for k in range(1, 10))
    labels = {"i0": nine_cats + "1 0.5 0.5 0.1 0.1\n", "i1": nine_cats, "i2": nine_cats}
    report = check_dataset(load_dataset(_yolo(tmp_path / "y", labels)), near_dup_distance=-1)
    assert report.instance_counts == {"cat": 27, "dog": 1} and report.class_counts == {"cat": 3, "dog": 1}
    assert report.imbalance_ratio == 27.0
    assert "27 boxes" in next(p["message"] for p in report.problems if p["code"] == "class_imbalance")


def test_real_bccd_reports_the_two_zero_area_boxes(shared_data) -> None:
    report = check_dataset(load_dataset(shared_data("bccd")))
    zero = sorted(Path(i["image"]).stem for i in report.label_issues if i["code"] == "zero_area_box")
    assert zero == ["BloodImage_00338", "BloodImage_00343"]
    assert _codes(report)["zero_area_box"] == "warning" and report.ok
    assert report.instance_counts == {"Platelets": 361, "RBC": 4155, "WBC": 372} and report.num_boxes == 4888
    assert report.unreadable == []


def test_images_no_coco_file_lists_get_no_share_of_the_dataset(tmp_path: Path) -> None:
    """They are not items of it: 5 of them beside 4 items were '125.0% of the images'."""
    root = write_coco(tmp_path / "coco")
    for k in range(5):
        write_jpeg(root / "images" / "train" / f"extra{k}.jpg", (20, 20), 7 * k)
    report = check_dataset(load_dataset(root), near_dup_distance=-1)
    msg = next(p["message"] for p in report.problems if p["code"] == "unlabeled_image")
    assert msg.startswith("5 image(s) have no label file") and "in 5 file(s); e.g." in msg and "%" not in msg
