"""Every registered instance segmenter (Mask R-CNN) honours its contract: build, one training step
with masks, candidates with a mask per box, save/load parity, the Predictor's Instances at the
original resolution, the serve route's JSON (and its index PNG), and ONNX export parity (the same
candidates and 28 x 28 masks, the same instances and RLE masks through the Predictor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.contract.test_models import (
    CLASSES,
    NMS_SLACK,
    Exported,
    _check_entries,
    _exported_detector,
    _photos,
    _served_json,
)
from tests.parity_helpers import best, random_batch, unmatched

from imgrec.models import create_model, list_models, load_model, save_model

SIZE = 64  # torchvision's R-CNN transform takes 64 at least


def _targets() -> list[dict[str, np.ndarray]]:
    masks = np.zeros((1, SIZE, SIZE), np.uint8)
    masks[0, 10:30, 12:40] = 1
    empty = {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, np.int64), "masks": np.zeros((0, SIZE, SIZE), np.uint8)}
    return [{"boxes": np.array([[12.0, 10.0, 40.0, 30.0]]), "labels": np.array([2]), "masks": masks}, empty]


@pytest.fixture(scope="module", params=list_models(task="instance"))
def instance_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """Each model built, trained one step (losses finite, gradients reach the mask head), saved."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = create_model(request.param, CLASSES, image_size=SIZE)
    assert (model.task, model.preprocessing.resize_mode) == ("instance", "letterbox")
    batch = np.random.default_rng(0).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    losses = model.losses(batch, _targets())
    assert "loss_mask" in losses and torch.isfinite(sum(losses.values()))
    sum(losses.values()).backward()
    head = model.module.roi_heads.mask_predictor.mask_fcn_logits.weight
    assert head.grad is not None and float(head.grad.abs().sum()) > 0
    return request.param, save_model(model, tmp_path_factory.mktemp(request.param) / "run")


def test_instance_contract(instance_run: tuple[str, Path]) -> None:
    """Candidates with a 28 x 28 map per box; the saved run gives the same; the Predictor's masks
    cover the original image and lie inside their boxes."""
    from imgrec.inference import Predictor
    from imgrec.tasks.instance import Instances

    name, run = instance_run
    loaded, meta = load_model(run)
    assert (meta["task"], meta["model"], type(loaded).__name__) == ("instance", name, "TorchInstanceSegmenter")
    batch = np.random.default_rng(1).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    found = loaded.segment_instances(batch)
    c = found[0]
    assert c.mask_frame == "box" and c.masks.shape[1:] == (28, 28) and len(c.masks) == len(c.boxes) == len(c.scores)
    assert ((c.labels >= 0) & (c.labels < 3)).all() and (c.masks >= 0).all() and (c.masks <= 1).all()
    again = load_model(run)[0].segment_instances(batch)
    np.testing.assert_allclose(again[0].boxes, c.boxes, atol=1e-4)
    (result,) = Predictor.from_run(run).predict(_photos(1)[0], conf=0.0, threshold=0.3)
    assert isinstance(result, Instances) and result.image_size == (80, 50) and len(result) > 0
    for inst in result.instances:
        mask = inst.mask()
        assert mask.shape == (50, 80) and inst.area == int(mask.sum())
        ys, xs = np.nonzero(mask)
        if len(xs):  # the pasted mask stays in its box (one pixel of rounding)
            x1, y1, x2, y2 = inst.box
            assert xs.min() >= x1 - 1 and xs.max() <= x2 + 1 and ys.min() >= y1 - 1 and ys.max() <= y2 + 1


def test_instance_serve_schema(instance_run: tuple[str, Path]) -> None:
    """The predict route's JSON validates against ImageInstances; masks=png adds the index PNG."""
    from imgrec.inference import Predictor
    from imgrec.serve.schemas import ImageInstances, InstanceOut

    _, run = instance_run
    answers = _served_json({"own": Predictor.from_run(run)}, {"conf": 0.0, "max_det": 5, "masks": "png"})
    entries = answers["own"]
    _check_entries(entries, ImageInstances, ("instances", InstanceOut))
    for entry, photo in zip(entries[:2], _photos(), strict=True):
        assert entry["image_size"] == [photo.shape[1], photo.shape[0]] and 0 < len(entry["instances"]) <= 5
        assert entry["mask_png"]
        assert all(i["mask"]["size"] == [photo.shape[0], photo.shape[1]] for i in entry["instances"])


# Measured on 2 shared cores (SIZE 64): build + trace + ONNX session + one check of two images take
# 32 s for maskrcnn_resnet50_fpn and 39 s for maskrcnn_resnet50_fpn_v2 (the trace alone 11 and 13 s),
# against 19 s for the whole MobileNetV3 test below, whose graph is the same torchvision Mask R-CNN
# (transform, RPN, MultiScaleRoIAlign, box and mask heads) on a lighter backbone; the integration
# test exports a trained one end to end.
HEAVY_EXPORTS = {
    "maskrcnn_resnet50_fpn": "ONNX export over 20 s on 2 cores; maskrcnn_mobilenet_v3_large_fpn covers its graph",
    "maskrcnn_resnet50_fpn_v2": "ONNX export over 20 s on 2 cores; maskrcnn_mobilenet_v3_large_fpn covers its graph",
}


def _exportable() -> list[Any]:
    return [pytest.param(n, marks=pytest.mark.skip(reason=HEAVY_EXPORTS[n])) if n in HEAVY_EXPORTS else n
            for n in list_models(task="instance")]  # fmt: skip


@pytest.fixture(scope="module", params=_exportable())
def instance_export(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """Each model (BatchNorm statistics settled, so its scores spread) and its traced ONNX twin."""
    pytest.importorskip("onnxruntime")
    return _exported_detector(request.param, tmp_path_factory.mktemp(request.param))


@pytest.mark.slow  # 19 s on 2 cores with its fixture (the trace 7 s, the Predictors at conf 0 about 6 s)
def test_instance_export_parity(instance_export: Exported) -> None:
    """The ONNX twin gives the torch model's candidates with the same 28 x 28 box-frame masks and,
    through the Predictor, the same instances with the same RLE masks (IoU > 0.99)."""
    from imgrec.evaluation.instance.run import as_detections
    from imgrec.inference import Predictor

    e = instance_export
    assert (type(e.onnx).__name__, e.onnx.task) == ("OnnxInstanceSegmenter", "instance")
    batch = random_batch(2, SIZE)
    for a, b in zip(e.model.segment_instances(batch), e.onnx.segment_instances(batch), strict=True):
        assert b.mask_frame == "box" and b.masks.shape[1:] == (28, 28) and len(b.masks) == len(b.boxes)
        assert len(a.boxes) > 0 and unmatched(a, b) <= NMS_SLACK * len(a.boxes)
        pairs = _twins(a.boxes, a.labels, b.boxes, b.labels)
        assert len(pairs) >= (1 - NMS_SLACK) * len(a.boxes)
        for i, j in pairs:
            np.testing.assert_allclose(b.masks[j], a.masks[i], atol=1e-3)
    ref = Predictor(e.model, {"task": "instance"}).predict(_photos(), conf=0.0)
    got = Predictor(e.onnx, {"task": "instance"}).predict(_photos(), conf=0.0)
    for a, b in zip(ref, got, strict=True):
        # near-tied scores at conf 0: the best 10 match exactly, the rest within NMS's slack
        da, db = as_detections(a), as_detections(b)
        assert len(a) > 0 and a.image_size == b.image_size and unmatched(best(da, 10), best(db, 10)) == 0
        assert unmatched(da, db) <= NMS_SLACK * len(a)
        top = np.argsort(-da.scores, kind="stable")[:10]
        for i, j in _twins(da.boxes[top], da.class_ids[top], db.boxes, db.class_ids):
            assert _mask_iou(a.instances[top[i]], b.instances[j]) > 0.99


def _twins(boxes_a: Any, labels_a: Any, boxes_b: Any, labels_b: Any, tol: float = 0.05) -> list[tuple[int, int]]:
    """(i, j) pairs of boxes of the same label within ``tol`` px, each box of b taken once."""
    free, pairs = np.ones(len(boxes_b), bool), []
    for i, (box, label) in enumerate(zip(np.asarray(boxes_a), np.asarray(labels_a), strict=True)):
        near = free & (np.asarray(labels_b) == label)
        if len(boxes_b):
            near &= np.abs(np.asarray(boxes_b) - box).max(axis=1) <= tol
        hit = np.flatnonzero(near)
        if len(hit):
            free[hit[0]] = False
            pairs.append((i, int(hit[0])))
    return pairs


def _mask_iou(a: Any, b: Any) -> float:
    """IoU of two instances' masks (two empty masks agree)."""
    ma, mb = a.mask(), b.mask()
    union = int((ma | mb).sum())
    return 1.0 if union == 0 else int((ma & mb).sum()) / union
