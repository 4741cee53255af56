"""Every registered instance segmenter (Mask R-CNN) honours its contract: build, one training step
with masks, candidates with a mask per box, save/load parity, the Predictor's Instances at the
original resolution, the serve route's JSON (and its index PNG), and a clear refusal to export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.contract.test_models import CLASSES, _check_entries, _photos, _served_json

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


def test_instance_export_refused(instance_run: tuple[str, Path]) -> None:
    """ONNX export of Mask R-CNN is not implemented: refused with the reason, nothing written."""
    from imgrec.errors import UsageError
    from imgrec.export import export_run

    _, run = instance_run
    with pytest.raises(UsageError, match="instance segmenter") as info:
        export_run(run)
    assert info.value.code == "not_exportable" and not (run / "model.onnx").exists()
