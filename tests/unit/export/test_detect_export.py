"""Detector exports: yolo's dense graph, its decoding shared with torch, an unknown layout refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from tests.detection_data import write_squares_yolo
from tests.parity_helpers import random_batch, settle_batchnorm

from imgrec.errors import ModelFileError
from imgrec.export import export_run
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


def test_an_unknown_layout_is_refused(tmp_path, squares):
    from imgrec.export import onnx_export

    run = _yolo_run(tmp_path / "run")
    export_run(run, data=squares)
    odd = tmp_path / "odd.onnx"
    onnx_export.write_with_metadata(run / "model.onnx", odd, {"imgrec.layout": "yolo9000"})
    with pytest.raises(ModelFileError, match=r"layout 'yolo9000'.*known: .*xyxy-scores"):
        load_onnx_detector_file(odd)
