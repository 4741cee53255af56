"""Imported detectors (YOLOX-Nano, FastestDet) through the CLI and the HTTP app, on real photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import shared_data_path

pytestmark = [pytest.mark.realdata]
pytest.importorskip("onnxruntime")

# COCO's own annotation of 000000000009.jpg includes this bowl (x, y, w, h = 1.08, 187.69, 611.59, 285.84)
BOWL = np.array([1.08, 187.69, 612.67, 473.53])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)


@pytest.fixture(scope="module")
def detectors(tmp_path_factory) -> dict[str, Path]:
    from imgrec.cli.main import main

    names = shared_data_path("coco128", "coco80.names")
    root = tmp_path_factory.mktemp("detectors")
    files = {"yolox": ("yolox-nano", "yolox_nano.onnx"), "fastestdet": ("fastestdet", "fastestdet.onnx")}
    for layout, parts in files.items():
        code = main(["import", str(shared_data_path("models", *parts)), "--task", "detect", "--layout", layout,
                     "--classes", str(names), "--out", str(root / layout)])  # fmt: skip
        assert code == 0
    return {k: root / k for k in files}


@pytest.mark.parametrize("layout", ["yolox", "fastestdet"])
def test_both_detectors_find_the_annotated_bowl(cli, detectors, layout):
    image = shared_data_path("coco128", "images", "train2017", "000000000009.jpg")
    code, out, err = cli("predict", detectors[layout], image, "--format", "json", "--conf", "0.2")
    assert code == 0, out + err
    (row,) = json.loads(out)
    assert row["image_size"] == [640, 480]
    bowls = [np.array(d["box"]) for d in row["detections"] if d["label"] == "bowl"]
    assert bowls and max(_iou(b, BOWL) for b in bowls) > 0.6
    meta = json.loads((detectors[layout] / "model.json").read_text())
    assert meta["task"] == "detect" and meta["external"]["decoder"] == layout


def test_table_csv_coco_formats_and_class_filter(cli, detectors):
    images = shared_data_path("test-images")
    code, out, _ = cli("predict", detectors["yolox"], images / "pets.jpg", "--format", "csv", "--classes", "dog")
    rows = out.strip().splitlines()
    assert code == 0 and rows[0].startswith("path,label,score,x1,y1,x2,y2")
    assert len(rows) >= 2 and all(",dog," in r for r in rows[1:])
    code, out, _ = cli("predict", detectors["yolox"], images / "pets.jpg", "--format", "coco")
    results = json.loads(out)
    assert code == 0 and results and {"image", "category_id", "category", "bbox", "score"} <= set(results[0])
    code, _, err = cli("predict", detectors["yolox"], images / "pets.jpg", "--top-k", "3")
    assert code == 2 and "--conf" in err
    code, _, err = cli("predict", detectors["yolox"], images / "pets.jpg", "--classes", "unicorn")
    assert code == 2 and "Unknown class" in err


def test_save_writes_each_image_with_its_boxes_drawn(cli, detectors, tmp_path):
    from PIL import Image

    image = shared_data_path("coco128", "images", "train2017", "000000000009.jpg")
    code, out, err = cli("predict", detectors["yolox"], image, "--save", tmp_path / "drawn", "--conf", "0.3")
    assert code == 0 and "wrote 1 annotated image" in out, out + err
    drawn = np.asarray(Image.open(tmp_path / "drawn" / "000000000009.jpg"))
    original = np.asarray(Image.open(image))
    assert drawn.shape == original.shape and np.abs(drawn.astype(int) - original).mean() > 1
    code, _, err = cli("predict", shared_data_path("models", "yolox-nano"), image, "--save", tmp_path / "x")
    assert code != 0


@pytest.mark.slow
def test_evaluate_yolox_on_coco128_coco_json_through_the_cli(cli, detectors):
    # coco128 is train2017: the model saw these images, so its mAP is above the published 0.258
    code, out, err = cli("evaluate", detectors["yolox"], shared_data_path("coco128"), "--format", "json")
    assert code == 0, out + err
    m = json.loads(out)
    assert m["images"] == 128 and m["gt_boxes"] == 929 and m["crowd_boxes"] == 10
    assert 0.30 < m["map"] < 0.38 and 0.47 < m["map50"] < 0.56
    assert m["per_class"]["motorbike"]["gt"] > 0  # COCO's "motorcycle" matched to the model's spelling


def test_a_wrong_layout_is_refused_at_import(cli, tmp_path):
    code, _, err = cli("import", shared_data_path("models", "fastestdet", "fastestdet.onnx"), "--task", "detect",
                       "--layout", "yolox", "--classes", shared_data_path("coco128", "coco80.names"),
                       "--out", tmp_path / "wrong")  # fmt: skip
    assert code == 65 and "layout" in err
    assert not (tmp_path / "wrong" / "model.json").exists()


def test_serve_answers_boxes_in_original_pixels(detectors):
    from fastapi.testclient import TestClient

    from imgrec.inference import Predictor
    from imgrec.serve import ServeConfig, create_app

    image = shared_data_path("coco128", "images", "train2017", "000000000009.jpg")
    predictor = Predictor.from_run(detectors["yolox"])
    expected = predictor.predict(image, conf=0.3)[0]
    with TestClient(create_app({"yolox": predictor}, ServeConfig())) as client:
        listed = client.get("/v1/models").json()
        upload = [("files", ("9.jpg", image.read_bytes(), "image/jpeg"))]
        r = client.post("/v1/models/yolox/predict?conf=0.3", files=upload)
        bad = client.post("/v1/models/yolox/predict?conf=0.3&classes=unicorn", content=image.read_bytes(),
                          headers={"content-type": "image/jpeg"})  # fmt: skip
    assert [m["task"] for m in listed["models"]] == ["detect"]
    assert r.status_code == 200, r.text
    (entry,) = r.json()["predictions"]
    assert entry["filename"] == "9.jpg" and entry["image_size"] == [640, 480]
    assert [d["label"] for d in entry["detections"]] == [d.label for d in expected.detections]
    np.testing.assert_allclose([d["box"] for d in entry["detections"]], expected.boxes, atol=0.01)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
