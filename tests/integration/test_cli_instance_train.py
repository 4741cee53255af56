"""``imgrec train --task instance`` / ``evaluate`` / ``predict`` / ``export`` on real COCO128 photos
with person and car polygons, end to end through the CLI: the MobileNetV3 Mask R-CNN trained 2
epochs at 96 px; the run's figures and ``imgrec evaluate`` agree; predict, the Predictor on bytes
and serve give identical instances (one path); export is refused with its reason."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.segmentation_data import write_few_class_coco

pytest.importorskip("torch")
pytestmark = [pytest.mark.slow, pytest.mark.realdata]
MODEL = "maskrcnn_mobilenet_v3_large_fpn"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from imgrec.cli.main import main

    root = tmp_path_factory.mktemp("instance")
    data = write_few_class_coco(root / "coco", ("person", "car"), n=12)
    code = main(["train", str(data), "--task", "instance", "--model", MODEL, "--epochs", "2", "--image-size", "96",
                 "--batch-size", "4", "--val", "0.25", "--test", "0.25", "--augment", "flip", "--threads", "2",
                 "--out", str(root / "run")])  # fmt: skip
    assert code == 0
    return data, root / "run"


def test_an_instance_run_has_box_and_mask_figures_history_and_report(trained):
    _, run = trained
    meta = json.loads((run / "model.json").read_text())
    assert (meta["task"], meta["model"], meta["classes"]) == ("instance", MODEL, ["person", "car"])
    assert meta["preprocessing"]["resize_mode"] == "letterbox" and meta["training"]["monitor"] == "val_mask_map"
    assert set(meta["metrics"]["test"]) == {"map", "map50", "mask_map", "mask_map50"}
    assert json.loads((run / "config.json").read_text())["data_config"]["task"] == "instance"
    history = json.loads((run / "history.json").read_text())["epochs"]
    assert len(history) == 2 and {"loss_mask", "loss_classifier", "val_map", "val_mask_map"} <= set(history[0])
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["images"] == 3 and 0.0 <= test["mask_map"] <= 1.0 and "mask_ap" in test["per_class"]["person"]
    html = (run / "report.html").read_text()
    assert "mask" in html.lower() and "data:image" in html


def test_evaluate_gives_the_runs_own_test_figures(cli, trained):
    _, run = trained
    code, out, err = cli("evaluate", run, "--format", "json")
    assert code == 0, out + err
    figures, own = json.loads(out), json.loads((run / "metrics.json").read_text())["test"]
    for key in ("map", "map50", "mask_map", "mask_map50"):
        assert figures[key] == pytest.approx(own[key], abs=1e-9), key


def test_predict_the_predictor_on_bytes_and_serve_agree(cli, trained, tmp_path):
    """One path: the same instances (boxes, scores, RLE masks) from every entry point."""
    from fastapi.testclient import TestClient

    from imgrec.inference import Predictor
    from imgrec.serve import ServeConfig, create_app

    data, run = trained
    files = sorted((data / "images").glob("*.jpg"))[:3]
    code, out, err = cli("predict", run, *files, "--conf", "0.05", "--format", "json", "--save", tmp_path / "over",
                         "--masks", tmp_path / "masks")  # fmt: skip
    assert code == 0, err
    rows, _ = json.JSONDecoder().raw_decode(out)  # the "wrote ..." lines follow the JSON
    predictor = Predictor.from_run(run)
    on_bytes = predictor.predict([f.read_bytes() for f in files], conf=0.05)
    with TestClient(create_app({"m": predictor}, ServeConfig())) as client:
        parts = [("files", (f.name, f.read_bytes(), "image/jpeg")) for f in files]
        served = client.post("/v1/models/m/predict", params={"conf": 0.05}, files=parts).json()["predictions"]
    for row, res, entry in zip(rows, on_bytes, served, strict=True):
        assert row["instances"] == res.to_dict()["instances"] == entry["instances"]
        assert row["image_size"] == list(res.image_size) == entry["image_size"]
    assert sum(len(r["instances"]) for r in rows) > 0
    assert len(list((tmp_path / "over").glob("*.jpg"))) == 3 and len(list((tmp_path / "masks").glob("*.png"))) == 3


def test_coco_results_and_export_refusal(cli, trained):
    data, run = trained
    photo = sorted((data / "images").glob("*.jpg"))[0]
    code, out, _ = cli("predict", run, photo, "--conf", "0.05", "--format", "coco")
    assert code == 0
    rows = json.loads(out)
    assert rows and {"bbox", "score", "category_id", "segmentation"} <= set(rows[0])
    assert np.all([r["segmentation"]["size"] == rows[0]["segmentation"]["size"] for r in rows])
    code, _, err = cli("export", run)
    assert code == 2 and "instance segmenter" in err and not (run / "model.onnx").exists()
    code, _, err = cli("predict", run, photo, "--top-k", "3")
    assert code == 2 and "--top-k" in err
