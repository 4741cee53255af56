"""``imgrec train --model yolo-n``, ``imgrec export --int8``: both files pass their mAP gates, predict like torch."""

from __future__ import annotations

import json

import pytest
from tests.detection_data import write_squares_yolo

pytest.importorskip("timm")
pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A yolo-n run trained for a few seconds at 96 px (it finds some squares: val mAP about 0.3)."""
    from imgrec.cli.main import main

    root = tmp_path_factory.mktemp("yolo")
    data = write_squares_yolo(root / "data", n=16)
    run = root / "run"
    code = main(["train", str(data), "--model", "yolo-n", "--epochs", "6", "--image-size", "96", "--batch-size", "8",
                 "--lr", "0.005", "--out", str(run)])  # fmt: skip
    assert code == 0
    return data, run


def test_export_writes_both_files_through_their_gates_and_records_them(cli, exported):
    _, run = exported
    code, out, err = cli("export", run, "--int8", "--json")
    assert code == 0, out + err
    files = json.loads(out)["files"]
    assert set(files) == {"onnx", "onnx-int8"}
    assert abs(files["onnx"]["map_drop_points"]) <= 0.5 and files["onnx"]["reference"] == "torch"
    assert files["onnx-int8"]["map_drop_points"] <= 2.0 and files["onnx-int8"]["reference"] == "model.onnx"
    recorded = json.loads((run / "model.json").read_text())["exports"]
    assert {k: recorded[k]["map_drop_points"] for k in files} == {k: f["map_drop_points"] for k, f in files.items()}
    assert (run / "model.int8.onnx").stat().st_size < (run / "model.onnx").stat().st_size


def test_onnx_predicts_what_torch_predicts_and_int8_predicts_too(cli, exported):
    data, run = exported
    if not (run / "model.int8.onnx").is_file():
        pytest.skip("needs the export of the previous test")
    images = sorted((data / "images").glob("*.jpg"))[:3]
    rows = {}
    for backend in ("torch", "onnx", "onnx-int8"):  # the 5 best per image: scores there are far apart
        code, out, err = cli("predict", run, *images, "--format", "json", "--conf", "0.001", "--max-det", "5",
                             "--backend", backend)  # fmt: skip
        assert code == 0, out + err
        rows[backend] = json.loads(out)
    assert sum(len(r["detections"]) for r in rows["torch"]) > 0
    for ref, got in zip(rows["torch"], rows["onnx"], strict=True):
        assert [d["label"] for d in ref["detections"]] == [d["label"] for d in got["detections"]]
        for a, b in zip(ref["detections"], got["detections"], strict=True):
            assert abs(a["score"] - b["score"]) < 1e-4
            assert all(abs(x - y) < 0.05 for x, y in zip(a["box"], b["box"], strict=True))
    assert all(r["image_size"] == [120, 90] for r in rows["onnx-int8"])


def test_a_torchvision_run_is_refused_int8_before_anything_is_written(cli, tmp_path):
    from imgrec.models import create_model, save_model

    run = save_model(create_model("ssdlite320_mobilenet_v3_large", ["a"], image_size=64), tmp_path / "run")
    code, _, err = cli("export", run, "--int8")
    assert code == 2 and "torchvision detector" in err and "without --int8" in err
    assert not (run / "model.onnx").exists()
