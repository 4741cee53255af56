"""Classical models end to end on real PNGs: training, probabilities, artifacts, option checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imgrec.errors import ConfigError, DataError, DatasetError, ModelFileError, UsageError
from imgrec.imaging import load_image
from imgrec.models import create_model, get_model_spec, list_models, load_model, save_model
from imgrec.models.classical import ClassicalClassifier

CLASSICAL = ["hog-svm", "lbp-svm", "color-svm", "bovw-svm", "hog-lbp-color-svm", "hog-pixels-svm"]
SMALL = {"n_components": 60, "pca": 32}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny BLAS/OpenMP jobs run faster on one thread (no wake-ups on a busy machine)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def shapes(shapes_session: Path) -> tuple[list[str], list[np.ndarray], np.ndarray]:
    """(classes, decoded images, labels) of the seeded shapes folder, read through imgrec.imaging."""
    classes = sorted(p.name for p in shapes_session.iterdir())
    images, labels = [], []
    for k, name in enumerate(classes):
        for f in sorted((shapes_session / name).glob("*.png")):
            images.append(load_image(f))
            labels.append(k)
    return classes, images, np.asarray(labels)


def split(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.arange(len(labels))
    return idx[idx % 3 != 0], idx[idx % 3 == 0]


def trained(name: str, shapes, size: int = 32, **args) -> tuple[ClassicalClassifier, np.ndarray, np.ndarray]:
    classes, images, labels = shapes
    model = create_model(name, classes, image_size=size, **args)
    batch = model.preprocessing.prepare_batch(images)
    train, test = split(labels)
    model.fit(batch[train], labels[train])
    return model, batch[test], labels[test]


def test_the_classical_models_are_registered():
    assert set(CLASSICAL) <= set(list_models("*-svm"))
    for name in CLASSICAL:
        spec = get_model_spec(name)
        assert spec.family == "classical" and spec.default_size >= 32


@pytest.mark.parametrize(
    ("name", "floor"),
    [("hog-svm", 0.9), ("lbp-svm", 0.7), ("hog-lbp-color-svm", 0.9), ("hog-pixels-svm", 0.8)],
)
@pytest.mark.parametrize("classifier", ["auto", "logistic"])
def test_models_learn_the_shapes_well_above_chance(shapes, name, floor, classifier):
    model, batch, labels = trained(name, shapes, classifier=classifier, **SMALL)
    proba = model.predict_proba(batch)
    assert proba.dtype == np.float32 and proba.shape == (len(batch), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert (model.predict(batch) == labels).mean() >= floor  # chance is 1/3


@pytest.mark.parametrize(("name", "floor"), [("color-svm", 0.0), ("bovw-svm", 0.8)])
def test_other_models_train_and_give_probabilities(shapes, name, floor):
    # colour alone cannot tell these shapes apart (their colours are random): no floor
    extra = {"n_words": 32} if name == "bovw-svm" else {}
    model, batch, labels = trained(name, shapes, **SMALL, **extra)
    proba = model.predict_proba(batch)
    assert proba.shape == (len(batch), 3) and np.isfinite(proba).all()
    assert model.num_params() > 0
    assert (model.predict(batch) == labels).mean() >= floor


@pytest.mark.parametrize("size", [28, 64])
def test_hog_works_at_other_sizes(shapes, size):
    model, batch, labels = trained("hog-svm", shapes, size=size, **SMALL)
    assert batch.shape[1:] == (size, size, 3)
    assert (model.predict(batch) == labels).mean() >= 0.8


def test_save_and_load_give_identical_probabilities(shapes, tmp_path):
    model, batch, _ = trained("hog-lbp-color-svm", shapes, classifier="logistic", threads=1, **SMALL)
    run = save_model(model, tmp_path / "run")
    meta = json.loads((run / "model.json").read_text())
    assert meta["family"] == "classical" and meta["files"] == {
        "pipeline": "pipeline.json",
        "arrays": "pipeline.npz",
    }
    assert meta["model_args"]["classifier"] == "logistic" and meta["model_args"]["threads"] == 1
    assert meta["num_params"] > 0
    back, _ = load_model(run)
    assert isinstance(back, ClassicalClassifier) and back.classes == model.classes
    np.testing.assert_array_equal(back.predict_proba(batch), model.predict_proba(batch))
    assert back.preprocessing == model.preprocessing


def test_a_run_whose_classes_disagree_with_the_pipeline_is_refused(shapes, tmp_path):
    model, _, _ = trained("hog-svm", shapes, **SMALL)
    run = save_model(model, tmp_path / "run")
    meta = json.loads((run / "model.json").read_text())
    meta["classes"] = ["only", "two"]
    (run / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="classes"):
        load_model(run)


def test_a_class_missing_from_training_gets_probability_zero(shapes):
    classes, images, labels = shapes
    model = create_model("hog-svm", classes, image_size=32, **SMALL)
    keep = labels != 2
    batch = model.preprocessing.prepare_batch([im for im, k in zip(images, keep, strict=True) if k])
    model.fit(batch, labels[keep])
    proba = model.predict_proba(batch[:5])
    assert proba.shape == (5, 3) and (proba[:, 2] == 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_unknown_options_name_the_valid_ones():
    with pytest.raises(ConfigError, match=r"'gama'.*Did you mean 'gamma'.*Valid options: C,"):
        create_model("hog-svm", ["a", "b"], gama=0.1)


@pytest.mark.parametrize(
    "args",
    [
        {"C": -1},
        {"C": "big"},
        {"n_components": 0},
        {"pca": 2.5},
        {"classifier": "forest"},
        {"gamma": 0},
        {"orientations": 1},
        {"max_iter": True},
        {"threads": 0},
    ],
    ids=str,
)
def test_bad_option_values_raise_config_error(args):
    with pytest.raises(ConfigError):
        create_model("hog-svm", ["a", "b"], **args)


def test_bad_training_inputs_raise_data_errors():
    model = create_model("hog-svm", ["a", "b", "c"], image_size=32)
    batch = np.zeros((4, 32, 32, 3), np.uint8)
    with pytest.raises(DataError, match="one integer label per image"):
        model.fit(batch, [0, 1])
    with pytest.raises(DataError, match=r"0\.\.2"):
        model.fit(batch, [0, 1, 2, 3])
    with pytest.raises(DatasetError, match="at least 2 classes"):
        model.fit(batch, [1, 1, 1, 1])


def test_svc_needs_two_images_per_class():
    model = create_model("hog-svm", ["a", "b"], image_size=32, classifier="svc")
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    with pytest.raises(DatasetError, match="at least 2 images per class"):
        model.fit(batch, [0, 0, 0, 0, 1])


def test_an_untrained_model_cannot_predict_or_save(tmp_path):
    model = create_model("lbp-svm", ["a", "b"], image_size=32)
    assert model.num_params() == 0
    with pytest.raises(UsageError, match="not trained"):
        model.predict_proba(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(UsageError, match="not trained"):
        model.save_weights(tmp_path)
