"""``imgrec train`` / ``evaluate`` / ``predict`` on a detection dataset, end to end through the CLI."""

from __future__ import annotations

import json

import pytest
from tests.detection_data import write_squares_yolo

pytest.importorskip("torchvision")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from imgrec.cli.main import main

    root = tmp_path_factory.mktemp("squares")
    data = write_squares_yolo(root / "data", n=12)
    code = main(["train", str(data), "--model", "fasterrcnn_mobilenet_v3_large_fpn", "--epochs", "2",
                 "--image-size", "96", "--batch-size", "8", "--out", str(root / "run")])  # fmt: skip
    assert code == 0
    return data, root / "run"


def test_a_detection_run_has_its_figures_history_and_report(trained):
    _, run = trained
    meta = json.loads((run / "model.json").read_text())
    assert meta["task"] == "detect" and meta["preprocessing"]["resize_mode"] == "letterbox"
    assert meta["training"]["monitor"] == "val_map" and meta["training"]["kept_weights"]["which"] == "best"
    history = json.loads((run / "history.json").read_text())["epochs"]
    assert len(history) == 2 and {"loss_classifier", "loss_box_reg", "val_map", "val_map50"} <= set(history[0])
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"map", "map50", "per_class", "confusion"} <= set(metrics["val"])
    assert metrics["val"]["confusion"]["labels"] == ["red", "blue", "background"]
    html = (run / "report.html").read_text()
    assert "Per class" in html and "Precision" in html and "data:image/png;base64" in html
    assert (run / "checkpoints" / "best.safetensors").is_file()


def test_evaluate_and_predict_on_the_trained_detector(cli, trained):
    data, run = trained
    code, out, err = cli("evaluate", run, data, "--format", "json")
    assert code == 0, out + err
    figures = json.loads(out)
    assert figures["images"] == 12 and figures["gt_boxes"] > 12 and 0.0 <= figures["map"] <= 1.0
    code, out, err = cli("predict", run, data / "images" / "000.jpg", "--format", "json", "--conf", "0.01")
    assert code == 0, out + err
    (row,) = json.loads(out)
    assert row["image_size"] == [120, 90] and all(d["label"] in ("red", "blue") for d in row["detections"])


def test_a_detector_on_class_folders_and_a_classifier_on_boxes_are_refused(cli, tmp_path, trained):
    from tests.conftest import make_image_folder

    data, _ = trained
    folders = make_image_folder(tmp_path / "shapes", per_class=3)
    code, _, err = cli("train", folders, "--model", "ssdlite320_mobilenet_v3_large", "--out", tmp_path / "a")
    assert code == 2 and "is a detector" in err
    code, _, err = cli("train", data, "--model", "hog-svm", "--out", tmp_path / "b")
    assert code == 2 and "detection dataset" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_export_passes_the_map_gate_and_predicts_like_torch(cli, trained, tmp_path):
    import shutil

    pytest.importorskip("onnxruntime")
    data, run = trained
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    code, out, err = cli("export", copy, "--json")
    assert code == 0, out + err
    (figures,) = json.loads(out)["files"].values()
    assert abs(figures["map_drop_points"]) <= 0.5 and figures["reference"] == "torch"
    recorded = json.loads((copy / "model.json").read_text())["exports"]["onnx"]
    assert recorded["map_drop_points"] == figures["map_drop_points"]
    image = data / "images" / "001.jpg"
    outs = [cli("predict", copy, image, "--format", "json", "--conf", "0.01", "--backend", b)
            for b in ("onnx", "torch")]  # fmt: skip
    assert all(code == 0 for code, _, _ in outs)
    onnx_boxes, torch_boxes = ([d["box"] for d in json.loads(o)[0]["detections"]] for _, o, _ in outs)
    assert len(onnx_boxes) == len(torch_boxes)
    assert _twins(onnx_boxes[:10], torch_boxes) == 10  # the best detections agree to 0.05 px
    assert _twins(onnx_boxes, torch_boxes) >= 0.9 * len(torch_boxes)  # near conf 0.01 NMS ties may flip

    code, _, err = cli("export", copy, "--int8")
    assert code == 2 and "int8" in err


def _twins(found: list[list[float]], expected: list[list[float]], tol: float = 0.05) -> int:
    """How many boxes of ``found`` have their own twin in ``expected`` within ``tol`` px (matched
    one to one, not by rank: a barely trained model's near-equal scores may swap between backends)."""
    left, matched = list(expected), 0
    for box in found:
        near = [i for i, other in enumerate(left) if max(abs(a - b) for a, b in zip(box, other, strict=True)) < tol]
        if near:
            left.pop(near[0])
            matched += 1
    return matched
