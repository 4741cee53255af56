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


@pytest.mark.parametrize("name", list_models())
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
