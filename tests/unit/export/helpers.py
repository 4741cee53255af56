"""A tiny trained torch run (made once per session, copied per test) and ways to break ONNX files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import make_image_folder

_CACHE: dict[str, Path] = {}


def tiny_run_template(factory: pytest.TempPathFactory) -> Path:
    """A cnn-small run trained for one epoch on 36 generated 40-pixel images (once per session)."""
    if "run" not in _CACHE:
        import imgrec
        from imgrec.config import TrainConfig

        base = factory.mktemp("export-run")
        data = make_image_folder(base / "shapes", per_class=12, seed=0, size=40)
        cfg = TrainConfig(model="cnn-small", epochs=1, image_size=32, batch_size=16, augment="none", seed=0)
        imgrec.train(data, cfg, out=base / "run")
        _CACHE["run"], _CACHE["data"] = base / "run", data
    return _CACHE["run"]


def tiny_data(factory: pytest.TempPathFactory) -> Path:
    """The labeled image folder the tiny run was trained on."""
    tiny_run_template(factory)
    return _CACHE["data"]


def copy_run(template: Path, dest: Path) -> Path:
    """A private copy of a run (tests write model.onnx into it)."""
    return Path(shutil.copytree(template, dest))


def tamper_head(path: Path, boost: float = 50.0) -> None:
    """Add ``boost`` to the first class's bias of the last Gemm: the file stays valid, its answers change."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    gemm = [n for n in proto.graph.node if n.op_type == "Gemm"][-1]
    init = {t.name: t for t in proto.graph.initializer}
    bias = init[gemm.input[2]]
    values = numpy_helper.to_array(bias).copy()
    values[0] += boost
    bias.CopyFrom(numpy_helper.from_array(values.astype(np.float32), bias.name))
    onnx.save(proto, str(path))


def make_classical_run(dest: Path) -> Path:
    """A fitted hog-svm run saved with save_model (no full training job needed)."""
    from imgrec.models import create_model, save_model

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    y = np.arange(24) % 2
    x[y == 1, :, ::4] = 255
    model = create_model("hog-svm", ["plain", "striped"], image_size=32, classifier="logistic", pca=8)
    model.fit(x, y)  # type: ignore[attr-defined]
    return save_model(model, dest)
