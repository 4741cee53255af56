"""``linear-probe``: a scikit-learn head on a frozen backbone's embeddings, saved as one run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
from tests.unit.models.test_importer import gap_linear

from imgrec.errors import ConfigError
from imgrec.models import create_model, load_model, save_model
from imgrec.models.importer import ImportOptions, import_model


def colour_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Reddish (label 0) and bluish (label 1) noisy images."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.integers(0, 120, (n, 8, 8, 3)).astype(np.int16)
    x[y == 0, ..., 0] += 120
    x[y == 1, ..., 2] += 120
    return x.astype(np.uint8), y


@pytest.fixture
def backbone(tmp_path: Path) -> Path:
    labels = ["a", "b", "c"]
    return import_model(gap_linear(tmp_path / "m.onnx"), ImportOptions(classes=labels), tmp_path / "backbone")


def test_fits_on_embeddings_and_round_trips_as_one_run(backbone, tmp_path):
    probe = create_model("linear-probe", ["red", "blue"], backbone=str(backbone))
    assert probe.preprocessing.size == 8 and probe.model_args["embedding_layer"] == "features"
    x, y = colour_images(40)
    probe.fit(x, y)  # type: ignore[attr-defined]
    test_x, test_y = colour_images(20, seed=1)
    proba = probe.predict_proba(test_x)
    assert (proba.argmax(1) == test_y).mean() == 1.0
    run = save_model(probe, tmp_path / "probe")
    assert (run / "backbone" / "imported.onnx").is_file() and (run / "head.npz").is_file()
    loaded, meta = load_model(run)
    assert meta["family"] == "probe" and meta["model_args"]["backbone_model"] == "m"
    np.testing.assert_array_equal(loaded.predict_proba(test_x), proba)


def test_svm_head_and_option_errors(backbone):
    x, y = colour_images(30)
    probe = create_model("linear-probe", ["red", "blue"], backbone=str(backbone), head="svm")
    assert (probe.fit(x, y).predict(x) == y).mean() > 0.9  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="needs a backbone"):
        create_model("linear-probe", ["a", "b"])
    with pytest.raises(ConfigError, match="head must be one of"):
        create_model("linear-probe", ["a", "b"], backbone=str(backbone), head="forest")
    with pytest.raises(ConfigError, match="unknown"):
        create_model("linear-probe", ["a", "b"], backbone=str(backbone), colour=1)


def test_a_torch_run_backbone_embeds_with_its_head_input(tmp_path):
    pytest.importorskip("torch")
    net = create_model("cnn-small", ["a", "b", "c"], image_size=16)
    run = save_model(net, tmp_path / "cnn")
    probe = create_model("linear-probe", ["red", "blue"], backbone=str(run))
    x, y = colour_images(12)
    x = np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)
    assert probe.embed(x).shape == (12, 64)  # type: ignore[attr-defined]
    assert probe.model_args["embedding_layer"] == "input of head"
    probe.fit(x, y)  # type: ignore[attr-defined]
    assert probe.predict_proba(x).shape == (12, 2)


def test_a_classical_backbone_is_refused_with_the_reason(tmp_path):
    hog = create_model("hog-svm", ["red", "blue"], image_size=8)
    x, y = colour_images(20)
    run = save_model(hog.fit(x, y), tmp_path / "hog")  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="cannot give penultimate-layer embeddings"):
        create_model("linear-probe", ["red", "blue"], backbone=str(run))


def _folder(root: Path) -> Path:
    from PIL import Image

    x, y = colour_images(16, seed=2)
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        folder = root / ("red" if label == 0 else "blue")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i}.png")
    return root


def test_a_probe_exports_as_one_onnx_graph_that_passes_the_parity_gate(backbone, tmp_path):
    from imgrec.errors import UsageError
    from imgrec.export import export_run
    from imgrec.inference import Predictor

    probe = create_model("linear-probe", ["blue", "red"], backbone=str(backbone))
    x, y = colour_images(40)
    run = save_model(probe.fit(x, 1 - y), tmp_path / "probe")  # type: ignore[attr-defined]
    data = _folder(tmp_path / "data")
    report = export_run(run, data=data)
    (exported,) = report.files
    assert exported.parity.top1_agreement == 1.0 and exported.parity.max_abs_error < 1e-5
    onnx_predictor = Predictor.from_run(run)  # prefers model.onnx now
    assert onnx_predictor.model.family == "onnx"
    test_x, _ = colour_images(10, seed=3)
    np.testing.assert_allclose(onnx_predictor.predict_proba(test_x), probe.predict_proba(test_x), atol=1e-5)
    with pytest.raises(UsageError, match="without --int8"):
        export_run(run, data=data, int8=True)


def test_an_svm_probe_is_refused_by_export_with_the_reason(backbone, tmp_path):
    from imgrec.errors import UsageError
    from imgrec.export import export_run

    probe = create_model("linear-probe", ["blue", "red"], backbone=str(backbone), head="svm")
    x, y = colour_images(30)
    run = save_model(probe.fit(x, y), tmp_path / "probe")  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="head=logistic"):
        export_run(run, data=_folder(tmp_path / "data"))
    assert not (run / "model.onnx").exists()
