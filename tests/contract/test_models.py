"""Every registered model honours the Classifier contract: build, predict_proba, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imgrec.models import create_model, get_model_spec, list_models, load_model, save_model

CLASSES = ["a", "b", "c"]
SMALL_SIZE = {"inception_v3": 75}  # the architectures that need more than the default below
DEFAULT_SMALL = 32


def _size(name: str) -> int:
    return SMALL_SIZE.get(name, min(DEFAULT_SMALL, get_model_spec(name).default_size))


def _model_args(family: str, size: int, tmp_path: Path) -> dict[str, str]:
    """A linear probe needs a backbone run: a small torch network saved here."""
    if family != "probe":
        return {}
    pytest.importorskip("torch")
    backbone = save_model(create_model("cnn-small", ["x", "y"], image_size=size), tmp_path / "backbone")
    return {"backbone": str(backbone)}


@pytest.mark.parametrize("name", list_models(task="classify"))
def test_model_contract(name: str, tmp_path: Path) -> None:
    spec = get_model_spec(name)
    if spec.family == "torch":
        pytest.importorskip("timm")
    size = _size(name)
    rng = np.random.default_rng(0)
    model = create_model(name, CLASSES, image_size=size, **_model_args(spec.family, size, tmp_path))
    assert (model.name, model.family, model.classes) == (name, spec.family, CLASSES)
    assert model.preprocessing.size == size
    if spec.family in ("classical", "probe"):
        x = rng.integers(0, 256, (12, size, size, 3), dtype=np.uint8)
        model.fit(x, np.arange(12) % 3)  # type: ignore[attr-defined]
    batch = rng.integers(0, 256, (1 if (spec.params or 0) > 1e6 else 3, size, size, 3), dtype=np.uint8)
    proba = model.predict_proba(batch)
    assert proba.shape == (len(batch), 3) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert model.num_params() > 0

    save_model(model, tmp_path / "run")
    loaded, meta = load_model(tmp_path / "run")
    assert (meta["model"], meta["family"], loaded.classes) == (name, spec.family, CLASSES)
    np.testing.assert_allclose(loaded.predict_proba(batch), proba, rtol=1e-5, atol=1e-6)


DETECT_SIZE = {"ssd300_vgg16": 268}


def _trainable_detectors() -> list[str]:
    """The detectors one can train (the pretrained face detectors have their own contract below)."""
    return [n for n in list_models(task="detect") if "pretrained-only" not in get_model_spec(n).tags]


@pytest.mark.parametrize("name", _trainable_detectors())
def test_detector_contract(name: str, tmp_path: Path) -> None:
    """Every registered detector: build, one training step, detect, save/load parity, Predictor."""
    torch = pytest.importorskip("torch")
    from imgrec.inference import Predictor
    from imgrec.tasks import Detections

    size = DETECT_SIZE.get(name, 96)
    model = create_model(name, CLASSES, image_size=size)
    assert (model.task, model.preprocessing.resize_mode) == ("detect", "letterbox")
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    targets = [{"boxes": np.array([[8.0, 8.0, size / 2, size / 2]]), "labels": np.array([2])},
               {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, np.int64)}]  # fmt: skip
    losses = model.losses(batch, targets)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.module.parameters())
    found = model.detect(batch)
    assert len(found) == 2 and all(c.boxes.shape[1] == 4 and len(c.boxes) == len(c.scores) for c in found)
    assert all(((c.labels >= 0) & (c.labels < 3)).all() for c in found)

    save_model(model, tmp_path / "run")
    loaded, meta = load_model(tmp_path / "run")
    assert (meta["task"], meta["model"]) == ("detect", name)
    for a, b in zip(found, loaded.detect(batch), strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)
    photo = rng.integers(0, 256, (50, 80, 3), dtype=np.uint8)
    (result,) = Predictor.from_run(tmp_path / "run").predict(photo, conf=0.0)
    assert isinstance(result, Detections) and result.image_size == (80, 50)
    assert (result.boxes[:, [0, 2]] <= 80).all() and (result.boxes[:, [1, 3]] <= 50).all()


FACE_WEIGHTS = {"yunet": ("yunet", "face_detection_yunet_2023mar.onnx"), "yunet-n": ("yunet", "yunet_n_640_640.onnx"),
                "ultraface": ("ultraface", "version-RFB-320.onnx"),
                "ultraface-slim": ("ultraface", "version-slim-320.onnx")}  # fmt: skip


def _pretrained_args(name: str) -> dict[str, object]:
    from tests.conftest import shared_data_path

    if name in FACE_WEIGHTS:
        return {"weights": shared_data_path("models", *FACE_WEIGHTS[name])}
    if name.startswith("dlib"):
        pytest.importorskip("dlib")
        return {"upsample": 0}  # random pixels: no face to find, so no need to pay 4x for small ones
    if name == "haar":
        cv2 = pytest.importorskip("cv2")
        if not hasattr(cv2, "CascadeClassifier"):
            pytest.skip(f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 moved them out)")
    return {}


@pytest.mark.parametrize("name", [n for n in list_models(task="detect") if n not in _trainable_detectors()])
def test_pretrained_detector_contract(name: str, tmp_path: Path) -> None:
    """Every pretrained-only detector: build with its one class, detect, save/load parity, Predictor."""
    from imgrec.inference import Predictor
    from imgrec.tasks import Detections

    model = create_model(name, ["face"], **_pretrained_args(name))
    assert (model.task, model.classes, model.family) == ("detect", ["face"], "faces")
    size = model.preprocessing.size
    batch = np.random.default_rng(0).integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    found = model.detect(batch)
    assert len(found) == 2 and all(c.boxes.shape[1] == 4 and len(c.boxes) == len(c.scores) for c in found)
    save_model(model, tmp_path / "run")
    loaded, meta = load_model(tmp_path / "run")
    assert (meta["task"], meta["model"]) == ("detect", name)
    for a, b in zip(found, loaded.detect(batch), strict=True):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-4)
    (result,) = Predictor.from_run(tmp_path / "run").predict(batch[0][:50, :80], conf=0.0)
    assert isinstance(result, Detections) and result.image_size == (80, 50)
