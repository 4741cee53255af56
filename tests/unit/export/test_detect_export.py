"""Detector exports: yolo's dense graph (fp32 and int8), its decoding shared with torch, the gates, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from tests.detection_data import write_squares_yolo
from tests.parity_helpers import random_batch, settle_batchnorm

from imgrec.errors import ModelFileError, UsageError
from imgrec.export import export_run
from imgrec.export.detect_export import DetectionParity
from imgrec.models import create_model, load_model, save_model
from imgrec.models.onnx_detect import load_onnx_detector_file

pytest.importorskip("timm")
pytest.importorskip("torchvision")

TINY = {"width": 16, "head_convs": 1}
SIZE = 64


@pytest.fixture(scope="module")
def squares(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight images with boxes (the check data; read only)."""
    return write_squares_yolo(tmp_path_factory.mktemp("squares") / "data", n=8)


def _yolo_run(path: Path, seed: int = 0) -> Path:
    """An untrained yolo-n run (tiny neck and head) whose scores spread, so no two candidates tie."""
    import torch

    torch.manual_seed(seed)
    model = create_model("yolo-n", ["red", "blue"], image_size=SIZE, **TINY)
    settle_batchnorm(model.module, model.normalize(random_batch(4, SIZE, seed=seed + 10)))
    with torch.no_grad():
        for level in model.module.head:
            level.cls_pred.weight.normal_(0.0, 0.5)
    return save_model(model, path)


def _batch(n: int = 3) -> np.ndarray:
    return random_batch(n, SIZE)


def _props(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def test_a_yolo_run_exports_its_dense_outputs_and_decodes_them_like_torch(tmp_path, squares):
    run = _yolo_run(tmp_path / "run")
    report = export_run(run, data=squares)
    path = run / "model.onnx"
    props = _props(path)
    assert props["imgrec.task"] == "detect" and props["imgrec.layout"] == "xyxy-scores"
    graph = onnx.load(str(path)).graph
    assert [o.name for o in graph.output] == ["boxes", "scores"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param  # batches of any size
    assert abs(report.files[0].parity.map_drop) <= 0.5
    assert json.loads((run / "model.json").read_text())["exports"]["onnx"]["reference"] == "torch"
    torch_model, _ = load_model(run)
    onnx_model = load_onnx_detector_file(path)
    batch = _batch()
    for a, b in zip(torch_model.detect(batch), onnx_model.detect(batch), strict=True):
        assert len(a.boxes) == len(b.boxes) > 0
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
        assert (a.labels == b.labels).all()


def test_the_predictors_of_both_backends_give_the_same_detections(tmp_path, squares):
    from imgrec.inference import Predictor

    run = _yolo_run(tmp_path / "run", seed=1)
    export_run(run, data=squares)
    images = sorted(str(p) for p in (squares / "images").glob("*.jpg"))[:3]
    ref = Predictor.from_run(run, backend="torch").predict(images, conf=0.05)
    got = Predictor.from_run(run, backend="onnx").predict(images, conf=0.05)
    assert sum(len(r) for r in ref) > 0
    for a, b in zip(ref, got, strict=True):
        assert [d.label for d in a.detections] == [d.label for d in b.detections]
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-2)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


def test_int8_keeps_the_prediction_layers_in_float_and_passes_its_gate(tmp_path, squares):
    from imgrec.inference import Predictor

    run = _yolo_run(tmp_path / "run")
    report = export_run(run, data=squares, calibration=squares, int8=True)
    assert [f.backend for f in report.files] == ["onnx", "onnx-int8"]
    path = run / "model.int8.onnx"
    props = _props(path)
    assert props["imgrec.quantization"] != "none" and props["imgrec.layout"] == "xyxy-scores"
    nodes = onnx.load(str(path)).graph.node
    ops = [n.op_type for n in nodes]
    assert "QuantizeLinear" in ops and path.stat().st_size < 0.6 * (run / "model.onnx").stat().st_size
    quantized_inputs = {i for n in nodes if n.op_type == "Conv" for i in n.input}
    dequantized = {o for n in nodes if n.op_type == "DequantizeLinear" for o in n.output}
    pred = [n for n in nodes if n.op_type == "Conv" and ("cls_pred" in n.name or "box_pred" in n.name)]
    assert len(pred) == 6 and not any(set(n.input[1:2]) & dequantized for n in pred)  # float weights
    assert quantized_inputs & dequantized  # the other convolutions read int8 weights
    record = json.loads((run / "model.json").read_text())["exports"]["onnx-int8"]
    assert record["reference"] == "model.onnx" and record["gate"] == "mAP drop <= 2 points"
    assert record["map_drop_points"] <= 2.0 and "calibration" in record
    model = Predictor.from_run(run, backend="onnx-int8").model
    assert model.quantized and len(model.detect(_batch(2))) == 2


def test_an_int8_file_that_loses_too_much_map_is_not_written(tmp_path, squares, monkeypatch):
    from imgrec.export import detect_int8

    run = _yolo_run(tmp_path / "run")
    bad = DetectionParity(images=8, reference_map=0.5, candidate_map=0.4, reference_map50=0.8, candidate_map50=0.7,
                          reference_ms=1.0, candidate_ms=1.0, source="test")  # fmt: skip
    monkeypatch.setattr(detect_int8, "detection_parity", lambda *a: bad)
    with pytest.raises(ModelFileError, match=r"0\.4000 against model\.onnx's 0\.5000.*\+10\.00 points.*not written"):
        export_run(run, data=squares, calibration=squares, int8=True, max_map_drop=2.0)
    assert (run / "model.onnx").is_file() and not (run / "model.int8.onnx").exists()
    assert set(json.loads((run / "model.json").read_text())["exports"]) == {"onnx"}
    assert not list(run.glob(".export-*"))


def test_torchvision_detectors_are_refused_int8_with_the_reason_and_nothing_is_written(tmp_path):
    run = save_model(create_model("fasterrcnn_mobilenet_v3_large_fpn", ["a"], image_size=SIZE), tmp_path / "run")
    with pytest.raises(UsageError, match=r"torchvision detector.*NMS.*8-bit grid.*yolo-n and yolo-s") as err:
        export_run(run, int8=True)
    assert err.value.code == "not_quantizable"
    assert not (run / "model.onnx").exists() and "exports" not in json.loads((run / "model.json").read_text())


def test_bad_detector_options_and_an_unknown_layout_are_refused(tmp_path, squares):
    from imgrec.export import onnx_export

    run = _yolo_run(tmp_path / "run")
    with pytest.raises(UsageError, match="max_map_drop is in percentage points"):
        export_run(run, max_map_drop=-1.0)
    export_run(run, data=squares)
    odd = tmp_path / "odd.onnx"
    onnx_export.write_with_metadata(run / "model.onnx", odd, {"imgrec.layout": "yolo9000"})
    with pytest.raises(ModelFileError, match=r"layout 'yolo9000'.*known: .*xyxy-scores"):
        load_onnx_detector_file(odd)


def test_the_cli_default_int8_map_gate_is_the_librarys():
    from imgrec.cli import export_cmd
    from imgrec.export import api

    assert export_cmd.MAX_INT8_MAP_DROP == api.MAX_INT8_MAP_DROP


def test_check_runs_the_export_gates_again_on_the_files_as_they_are(tmp_path, squares, monkeypatch):
    """``export --check`` on a detector: both files pass again; figures that miss a gate (a file
    changed since its export) fail with the figures; another run's file (another input size) is refused."""
    from imgrec.export import check_exports, detect_export
    from imgrec.export.api import ExportReport

    run = _yolo_run(tmp_path / "run")
    export_run(run, data=squares, calibration=squares, int8=True)
    stamp = (run / "model.onnx").stat().st_mtime_ns
    report = check_exports(run, data=squares)
    assert isinstance(report, ExportReport) and [f.backend for f in report.files] == ["onnx", "onnx-int8"]
    assert abs(report.files[0].parity.map_drop) <= 0.5 and report.files[1].reference == "model.onnx"
    assert (run / "model.onnx").stat().st_mtime_ns == stamp  # nothing written
    bad = DetectionParity(images=8, reference_map=0.5, candidate_map=0.3, reference_map50=0.8, candidate_map50=0.6,
                          reference_ms=1.0, candidate_ms=1.0, source="test")  # fmt: skip
    monkeypatch.setattr(detect_export, "detection_parity", lambda *a: bad)
    failed = r"model\.onnx fails its check.*0\.3000 against.*\+20\.00 points.*export again"
    with pytest.raises(ModelFileError, match=failed):
        check_exports(run, data=squares)
    monkeypatch.undo()
    other = save_model(create_model("yolo-n", ["red", "blue"], image_size=SIZE + 32, **TINY), tmp_path / "other")
    export_run(other, data=squares)
    (run / "model.onnx").write_bytes((other / "model.onnx").read_bytes())
    with pytest.raises(ModelFileError, match="does not belong to"):
        check_exports(run, data=squares)
