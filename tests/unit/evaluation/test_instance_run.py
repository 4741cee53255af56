"""``evaluate_instances``: box AP exactly as ``evaluate_detection`` gives it, mask AP next to it,
through a stand-in Predictor that answers each image's own objects; the report, ``evaluate``,
``evaluate_run`` and ``imgrec evaluate`` on instance runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.instance_data import CLASSES, GroundTruthPredictor, write_instance_coco

from imgrec.data import load_dataset
from imgrec.errors import DatasetError
from imgrec.evaluation import InstanceResult, evaluate, evaluate_instances, evaluate_run, write_instance_report
from imgrec.evaluation.detection import DetectionAccumulator
from imgrec.evaluation.instance.run import as_detections

PERFECT = 1.0 - 1e-12  # pycocotools divides by tp + fp + eps


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_instance_coco(tmp_path_factory.mktemp("inst") / "tiny")


@pytest.fixture(scope="module")
def ds(data: Path):  # type: ignore[no-untyped-def]
    return load_dataset(data, task="instance")


def test_perfect_instances_score_one_for_boxes_and_masks(ds) -> None:  # type: ignore[no-untyped-def]
    result = evaluate(GroundTruthPredictor(ds, list(reversed(CLASSES))), ds, workers=1)  # classes matched by name
    assert isinstance(result, InstanceResult)
    m = result.metrics
    assert m["images"] == 4 and m["gt_boxes"] == 5 and m["crowd_boxes"] == 1
    assert m["map"] >= PERFECT and m["mask_map"] >= PERFECT
    for key in ("mask_map50", "mask_map75", "mask_map_medium"):
        assert m[key] >= PERFECT
    assert (m["gt_masks"], m["ignored_masks"], m["no_mask"]) == (4, 2, 1)  # the box without a mask is ignored
    for name in CLASSES:
        row = m["per_class"][name]
        assert set(row) == {"ap", "ap50", "gt", "detections", "mask_ap", "mask_ap50"}
        assert row["ap"] >= PERFECT and row["mask_ap"] >= PERFECT and row["mask_ap50"] >= PERFECT
    assert m["per_image"]["mask_iou"] == [1.0, 1.0, 1.0, None]
    assert result.options["threshold"] == 0.5 and result.options["conf"] == 0.001
    assert json.loads(json.dumps(result.to_dict()))["mask_map"] == m["mask_map"]


def test_eroded_masks_lower_mask_ap_and_leave_box_ap_as_detection_gives_it(ds) -> None:  # type: ignore[no-untyped-def]
    predictor = GroundTruthPredictor(ds, erode=3)
    m = evaluate_instances(predictor, ds, workers=1).metrics
    assert m["map"] >= PERFECT and m["mask_map"] < 0.6
    assert m["mask_map50"] > m["mask_map75"]
    assert all(r["mask_ap"] < r["ap"] for r in m["per_class"].values())
    assert m["worst_mask_images"][0]["mask_iou"] < 1.0
    # The box figures are the DetectionAccumulator's on the same boxes.
    acc = DetectionAccumulator(predictor.classes)
    for i in range(len(ds)):
        t, found = ds.targets[i], predictor.answer(i)
        acc.add(ds.sources[i], t.boxes, t.labels, t.crowd, as_detections(found), found.image_size, gt_area=t.areas)
    box = acc.compute()
    assert box["stats"] == m["stats"] and box["confusion"] == m["confusion"]
    assert box["worst_images"] == m["worst_images"]


def test_a_dataset_without_masks_is_refused(data: Path, ds) -> None:  # type: ignore[no-untyped-def]
    boxes_only = load_dataset(data)  # read as a detection dataset
    assert boxes_only.task == "detect"
    with pytest.raises(DatasetError, match="instance dataset"):
        evaluate_instances(GroundTruthPredictor(ds), boxes_only)
    with pytest.raises(DatasetError, match="empty"):
        evaluate_instances(GroundTruthPredictor(ds), ds.subset(np.arange(0)))


def test_the_report_puts_mask_ap_next_to_box_ap(ds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    predictor = GroundTruthPredictor(ds, erode=2)
    result = evaluate_instances(predictor, ds, workers=1)
    history = [{"epoch": e, "lr": 1e-3, "mask_loss": 1.0 / e, "box_loss": 0.9 / e, "val_map": 0.1 * e,
                "val_mask_map": 0.05 * e} for e in (1, 2)]  # fmt: skip
    path = write_instance_report(tmp_path, meta=predictor.meta, results={"test": result}, history=history,
                                 dataset=ds, predictor=predictor)  # fmt: skip
    html = path.read_text()
    for title in ("Summary", "Per class (test)", "mask AP", "box AP", "Box precision", "Box confusion",
                  "Worst masks", "Training", "mask IoU"):  # fmt: skip
        assert title in html
    assert html.count("data:image/png;base64") >= 3 + 3  # curves, confusion, training; 3 images with objects
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test"]["mask_map"] == pytest.approx(result.metrics["mask_map"])
    assert "mask_ap" in saved["test"]["per_class"]["cat"]


def test_evaluate_run_and_the_cli_read_instance_data(ds, data: Path, tmp_path: Path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    """No instance model is trained here: ``Predictor.from_run`` is replaced by the stand-in."""
    import imgrec.evaluation.runs as runs
    from imgrec.cli.main import main

    class FromRun:
        @staticmethod
        def from_run(run_dir):  # type: ignore[no-untyped-def]
            return GroundTruthPredictor(load_dataset(data, task="instance"), erode=2)

    monkeypatch.setattr(runs, "Predictor", FromRun)
    result, out = evaluate_run(tmp_path, data)
    assert isinstance(result, InstanceResult) and out == tmp_path / "eval" / "tiny"
    assert (out / "report.html").is_file() and (out / "metrics.json").is_file()
    assert main(["evaluate", str(tmp_path), str(data)]) == 0
    printed = capsys.readouterr().out
    assert "mask AP" in printed and "box AP" in printed and "mask" in printed.split("per class")[0]
    assert main(["evaluate", str(tmp_path), str(data), "--format", "json"]) == 0
    assert '"mask_map"' in capsys.readouterr().out


@pytest.mark.realdata
def test_perfect_instances_on_coco128(shared_data) -> None:  # type: ignore[no-untyped-def]
    """The real annotations (polygons, RLE crowds, EXIF-free JPEGs of many sizes) answered by the stand-in."""
    ds = load_dataset(shared_data("coco128"), task="instance")
    assert ds.task == "instance" and len(ds) == 128
    m = evaluate_instances(GroundTruthPredictor(ds), ds, workers=2).metrics
    assert m["images"] == 128 and m["crowd_boxes"] == 10
    assert m["map"] >= PERFECT and m["mask_map"] >= PERFECT
    eroded = evaluate_instances(GroundTruthPredictor(ds, erode=2), ds, workers=2).metrics
    assert eroded["map"] >= PERFECT and eroded["mask_map"] < 0.9


def test_the_train_summary_of_an_instance_run_shows_box_and_mask_map(ds, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from imgrec.cli.run_cmds import print_run_summary
    from imgrec.training import Run

    m = evaluate_instances(GroundTruthPredictor(ds, erode=3), ds, workers=1).metrics
    print_run_summary(Run(tmp_path, {"val": m}, None, [], {"task": "instance"}))
    out = capsys.readouterr().out
    assert "box mAP" in out and "mask mAP" in out and f"{m['mask_map']:.4f}"[:4] in out
