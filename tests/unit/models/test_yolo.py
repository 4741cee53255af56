"""imgrec's YOLO-style detector: the assigner, the loss, decoding, weights and runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from imgrec.errors import ConfigError, MissingInputError  # noqa: E402
from imgrec.models import create_model, load_model, save_model  # noqa: E402
from imgrec.models.yolo.assign import assign, candidates, detection_losses  # noqa: E402
from imgrec.models.yolo.net import cell_points  # noqa: E402

TINY = {"width": 16, "head_convs": 1}


def _grid(size: int = 64) -> torch.Tensor:
    return torch.cat([cell_points(size // s, size // s, s, torch.device("cpu")) for s in (8, 16, 32)])


def _inside(points: torch.Tensor, box: list[float]) -> torch.Tensor:
    x, y = points[:, 0], points[:, 1]
    return (x > box[0]) & (x < box[2]) & (y > box[1]) & (y < box[3])


def test_a_box_gets_positives_only_in_cells_whose_centre_it_holds() -> None:
    points = _grid()
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand((len(points), 3), generator=gen)
    gt = [[4.0, 6.0, 40.0, 30.0]]
    boxes = torch.tensor(gt).repeat(len(points), 1)  # every cell, inside or not, predicts the box exactly
    a = assign(scores, boxes, points, torch.tensor(gt), torch.tensor([2]))
    positive = a.positive
    assert 0 < int(positive.sum()) <= 10
    assert bool(_inside(points, gt[0])[positive].all())
    assert (a.scores[positive].argmax(1) == 2).all() and (a.scores[~positive] == 0).all()
    assert (a.boxes[positive] == torch.tensor(gt)).all()
    assert float(a.scores.max()) <= 1.0 + 1e-6


def test_a_cell_wanted_by_two_boxes_goes_to_the_one_it_overlaps_most() -> None:
    points = torch.tensor([[20.0, 20.0, 8.0]])
    pred = torch.tensor([[10.0, 10.0, 30.0, 30.0]])
    gts = torch.tensor([[0.0, 0.0, 40.0, 40.0], [9.0, 9.0, 31.0, 31.0]])
    a = assign(torch.full((1, 2), 0.5), pred, points, gts, torch.tensor([0, 1]))
    assert a.gt_index.tolist() == [1] and a.scores.argmax(1).tolist() == [1]


def test_a_box_too_small_to_hold_a_centre_gets_its_nearest_cell() -> None:
    points = _grid()
    inside = candidates(points, torch.tensor([[1.0, 1.0, 3.0, 3.0]]))
    assert int(inside.sum()) == 1 and points[inside[0]][0, :2].tolist() == [4.0, 4.0]


def test_an_image_without_boxes_has_only_background_and_still_trains() -> None:
    points = _grid()
    a = assign(torch.rand(len(points), 3), torch.rand(len(points), 4), points, torch.zeros((0, 4)),
               torch.zeros(0, dtype=torch.long))  # fmt: skip
    assert not a.positive.any() and (a.scores == 0).all()
    logits = torch.zeros((1, len(points), 3), requires_grad=True)
    boxes = torch.rand((1, len(points), 4), requires_grad=True)
    terms = detection_losses(boxes, logits, points, [torch.zeros((0, 4))], [torch.zeros(0, dtype=torch.long)])
    assert float(terms["loss_box"].detach()) == 0.0 and float(terms["loss_cls"].detach()) > 0
    sum(terms.values()).backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0


def _squares(n: int = 2, size: int = 64) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 60, (n, size, size, 3), dtype=np.uint8)
    targets = []
    for i in range(n):
        x, y, s = 4 + 10 * i, 8 + 6 * i, 28
        images[i, y : y + s, x : x + s] = (230, 30, 30) if i % 2 == 0 else (30, 60, 230)
        targets.append({"boxes": np.array([[x, y, x + s, y + s]], np.float32), "labels": np.array([i % 2])})
    return images, targets


def test_the_loss_falls_when_overfitting_one_tiny_batch() -> None:
    torch.manual_seed(0)
    model = create_model("yolo-n", ["red", "blue"], image_size=64, **TINY)
    images, targets = _squares()
    opt = torch.optim.AdamW(model.module.parameters(), lr=3e-3)
    first = last = 0.0
    for step in range(30):
        terms = model.losses(images, targets)
        loss = sum(terms.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        last = float(loss.detach())
        first = last if step == 0 else first
        assert {"loss_cls", "loss_box"} <= set(terms)
    assert last < 0.5 * first, (first, last)


def test_detect_gives_each_cells_best_class_in_input_pixels() -> None:
    model = create_model("yolo-n", ["a", "b", "c"], image_size=96, **TINY)
    batch = np.random.default_rng(0).integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    found = model.detect(batch)
    cells = (96 // 8) ** 2 + (96 // 16) ** 2 + (96 // 32) ** 2
    assert len(found) == 3
    for c in found:
        assert len(c.boxes) == cells and c.boxes.dtype == np.float32  # untrained scores are all about 0.01
        assert (c.boxes >= 0).all() and (c.boxes <= 96).all() and (c.boxes[:, 2:] >= c.boxes[:, :2]).all()
        assert set(np.unique(c.labels)) <= {0, 1, 2} and np.allclose(c.scores, 0.01, atol=0.005)


def test_a_run_saves_and_loads_with_its_architecture_options(tmp_path: Path) -> None:
    model = create_model("yolo-n", ["a", "b"], image_size=64, width=24, head_convs=2)
    batch = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    before = model.detect(batch)
    save_model(model, tmp_path / "run")
    loaded, meta = load_model(tmp_path / "run")
    assert meta["model_args"] == {"backbone": "mobilenetv4_conv_small", "width": 24, "head_convs": 2}
    assert type(loaded).__name__ == "YoloDetector" and loaded.num_params() == model.num_params()
    for a, b in zip(before, loaded.detect(batch), strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)


def test_weights_from_a_detector_of_other_classes_keep_a_fresh_class_head(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = create_model("yolo-n", ["a", "b", "c"], image_size=64, **TINY)
    with torch.no_grad():
        for p in source.module.parameters():
            p.add_(1.0)
    save_file(source.state_tensors(), str(tmp_path / "det.safetensors"))
    model = create_model("yolo-n", ["x"], image_size=64, weights=str(tmp_path / "det.safetensors"), **TINY)
    own, theirs = model.module.state_dict(), source.module.state_dict()
    assert torch.equal(own["neck.lateral.0.0.weight"], theirs["neck.lateral.0.0.weight"])
    assert torch.equal(own["head.0.box_pred.weight"], theirs["head.0.box_pred.weight"])
    assert own["head.0.cls_pred.weight"].shape[0] == 1 and float(own["head.0.cls_pred.bias"][0]) < -4


def test_a_backbone_state_dict_alone_initializes_the_backbone(tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    classifier = timm.create_model("mobilenetv4_conv_small", num_classes=5)
    save_file({k: v.contiguous() for k, v in classifier.state_dict().items()}, str(tmp_path / "cls.safetensors"))
    model = create_model("yolo-n", ["x"], image_size=64, weights=str(tmp_path / "cls.safetensors"), **TINY)
    key = "conv_stem.weight"
    assert torch.equal(model.module.backbone.state_dict()[key], classifier.state_dict()[key])


def test_pretrained_offline_says_to_pass_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from imgrec.models import hub

    monkeypatch.setattr(hub, "cached_pretrained", lambda name: None)
    monkeypatch.setattr(hub, "reachable", lambda host, **kw: False)
    with pytest.raises(MissingInputError, match="weights=FILE"):
        create_model("yolo-n", ["x"], image_size=64, pretrained=True)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [({"backbone": "mobilenetv4_conv_smal"}, ConfigError, "Did you mean"), ({"width": 0}, ConfigError, "width"),
     ({"depth": 3}, ConfigError, "unknown depth"), ({"image_size": 32}, ConfigError, "at least 64")],
)  # fmt: skip
def test_bad_options_are_refused_with_the_fix(args: dict, error: type, match: str) -> None:
    size = args.pop("image_size", 64)
    with pytest.raises(error, match=match):
        create_model("yolo-n", ["x"], image_size=size, **args)


def test_backbone_weights_from_a_classification_run_and_none_from_train(tmp_path: Path) -> None:
    """``imgrec train`` passes backbone_weights (None unless --backbone-weights): both work."""
    classifier = create_model("mobilenetv4_conv_small", ["a", "b", "c"], image_size=64)
    run = save_model(classifier, tmp_path / "cls-run")
    model = create_model("yolo-n", ["x"], image_size=64, backbone_weights=str(run), **TINY)
    key = "conv_stem.weight"
    assert torch.equal(model.module.backbone.state_dict()[key], classifier.module.state_dict()[key])
    assert create_model("yolo-n", ["x"], image_size=64, backbone_weights=None, weights=None, **TINY)
    with pytest.raises(ConfigError, match="received several"):
        create_model("yolo-n", ["x"], image_size=64, backbone_weights=str(run), weights=str(run), **TINY)
