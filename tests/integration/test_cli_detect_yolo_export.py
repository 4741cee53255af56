"""``imgrec train --model yolo-n``, ``imgrec export``: model.onnx passes the mAP gate and predicts like torch."""

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


def test_export_passes_the_map_gate_and_is_recorded(cli, exported):
    _, run = exported
    code, out, err = cli("export", run, "--json")
    assert code == 0, out + err
    (figures,) = json.loads(out)["files"].values()
    assert abs(figures["map_drop_points"]) <= 0.5 and figures["reference"] == "torch"
    recorded = json.loads((run / "model.json").read_text())["exports"]["onnx"]
    assert recorded["map_drop_points"] == figures["map_drop_points"]


def test_onnx_predicts_what_torch_predicts(cli, exported):
    data, run = exported
    if not (run / "model.onnx").is_file():
        pytest.skip("needs the export of the previous test")
    images = sorted((data / "images").glob("*.jpg"))[:3]
    rows = {}
    for backend in ("torch", "onnx"):  # the 5 best per image: scores there are far apart
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
