"""Saving fitted scikit-learn estimators as JSON + npz: exact round trips, and no way to run code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from imgrec.errors import ModelFileError, UsageError
from imgrec.features import BagOfVisualWords, ColorHistogram, HOGFeatures, LBPFeatures, PixelFeatures
from imgrec.models.sklearn_io import count_learned, load_estimator, save_estimator

RNG = np.random.default_rng(0)
X = RNG.normal(size=(90, 6)).astype(np.float32)
Y = np.arange(90) % 3


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny BLAS/OpenMP jobs run faster on one thread (no wake-ups on a busy machine)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def output(est, data):
    for method in ("predict_proba", "transform", "predict"):
        if hasattr(est, method):
            return getattr(est, method)(data)
    raise AssertionError(type(est))


def roundtrip(est, tmp_path: Path):
    save_estimator(est, tmp_path / "p.json", tmp_path / "p.npz")
    return load_estimator(tmp_path / "p.json", tmp_path / "p.npz")


ESTIMATORS = [
    CalibratedClassifierCV(SVC(random_state=0), ensemble=False),
    SVC(probability=True, random_state=0),
    LinearSVC(),
    LogisticRegression(),
    SGDClassifier(loss="log_loss", random_state=0),
    StandardScaler(),
    PCA(3),
    Nystroem(n_components=20, random_state=0),
    MiniBatchKMeans(4, n_init=2, random_state=0),
    make_pipeline(
        FeatureUnion([("pca", PCA(2)), ("scale", StandardScaler())]),
        Nystroem(n_components=30, random_state=0),
        LogisticRegression(),
    ),
]


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
@pytest.mark.filterwarnings("ignore:The `probability` parameter was deprecated")
def test_roundtrip_gives_identical_outputs(est, tmp_path):
    est.fit(X, Y)
    back = roundtrip(est, tmp_path)
    assert type(back) is type(est)
    np.testing.assert_array_equal(output(back, X), output(est, X))
    assert back.get_params(deep=False).keys() == est.get_params(deep=False).keys()


def test_image_feature_pipeline_roundtrip(tmp_path):
    imgs = RNG.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(24) % 2
    features = FeatureUnion(
        [
            ("hog", HOGFeatures()),
            ("lbp", LBPFeatures()),
            ("color", ColorHistogram(bins=(4, 2, 2))),
            ("pixels", PixelFeatures(pool=4)),
            ("bovw", BagOfVisualWords(n_words=8, max_descriptors=400)),
        ]
    )
    pipe = make_pipeline(features, StandardScaler(), CalibratedClassifierCV(SVC(random_state=0), ensemble=False))
    pipe.fit(imgs, labels)
    back = roundtrip(pipe, tmp_path)
    np.testing.assert_array_equal(back.predict_proba(imgs), pipe.predict_proba(imgs))
    assert back.steps[0][1].transformer_list[0][1].cell_size_ == 4
    assert count_learned(pipe) > 0


def test_numpy_scalar_types_and_tuples_survive(tmp_path):
    svc = SVC().fit(X, Y)
    back = roundtrip(svc, tmp_path)
    assert type(back._gamma) is type(svc._gamma) and back._gamma == svc._gamma
    assert back.shape_fit_ == svc.shape_fit_ and isinstance(back.shape_fit_, tuple)


def test_files_hold_no_pickled_objects(tmp_path):
    roundtrip(make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y), tmp_path)
    with np.load(tmp_path / "p.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
    record = json.loads((tmp_path / "p.json").read_text())
    assert record["estimator"]["class"] == "Pipeline"


def saved(tmp_path: Path) -> tuple[Path, Path, dict]:
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y)
    save_estimator(pipe, tmp_path / "p.json", tmp_path / "p.npz")
    return tmp_path / "p.json", tmp_path / "p.npz", json.loads((tmp_path / "p.json").read_text())


def first_step(record: dict) -> dict:
    return record["estimator"]["params"]["steps"][0]["__tuple__"][1]["__estimator__"]


@pytest.mark.parametrize("name", ["os.system", "system", "builtins.eval", "sklearn.svm.SVC", ""])
def test_a_class_outside_the_allowlist_is_refused(tmp_path, monkeypatch, name):
    import os

    def boom(*_a, **_k):
        raise AssertionError("os.system was called")

    monkeypatch.setattr(os, "system", boom)
    js, npz, record = saved(tmp_path)
    first_step(record)["class"] = name
    js.write_text(json.dumps(record))
    with pytest.raises(ModelFileError, match="not an allowed estimator"):
        load_estimator(js, npz)


@pytest.mark.parametrize("key", ["__class__", "__dict__", "transform", "fit", "1x"])
def test_state_names_that_shadow_methods_or_dunders_are_refused(tmp_path, key):
    js, npz, record = saved(tmp_path)
    first_step(record)["state"][key] = 1
    js.write_text(json.dumps(record))
    with pytest.raises(ModelFileError, match="refused"):
        load_estimator(js, npz)


def test_a_missing_array_is_reported(tmp_path):
    js, npz, record = saved(tmp_path)
    with np.load(npz) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.pop(first_step(record)["state"]["mean_"]["__array__"])
    np.savez(npz, **arrays)
    with pytest.raises(ModelFileError, match="lacks the array"):
        load_estimator(js, npz)


def test_object_arrays_in_the_npz_are_refused(tmp_path):
    js, npz, record = saved(tmp_path)
    key = first_step(record)["state"]["mean_"]["__array__"]
    with np.load(npz) as data:
        arrays = {k: data[k] for k in data.files}
    arrays[key] = np.array([{"x": 1}], dtype=object)
    np.savez(npz, **arrays)  # numpy pickles object arrays here; the loader must refuse them
    with pytest.raises(ModelFileError):
        load_estimator(js, npz)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: r.update(format="other"),
        lambda r: r.update(format_version=99),
        lambda r: r.update(format_version="1x"),
        lambda r: first_step(r)["params"].update(not_a_param=1),
        lambda r: first_step(r)["state"].update(mean_={"__pickle__": "x"}),
        lambda r: first_step(r)["state"].update(mean_={"__scalar__": "O", "value": 1}),
        lambda r: first_step(r)["state"].update(mean_={"__float__": "1e999"}),
    ],
    ids=["format", "version", "version-type", "param", "tag", "dtype", "float"],
)
def test_malformed_records_raise_model_file_error(tmp_path, mutate):
    js, npz, record = saved(tmp_path)
    mutate(record)
    js.write_text(json.dumps(record))
    with pytest.raises(ModelFileError):
        load_estimator(js, npz)


def test_unreadable_files_raise_model_file_error(tmp_path):
    js, npz, _ = saved(tmp_path)
    npz.write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="arrays"):
        load_estimator(js, npz)
    js.write_text("{")
    with pytest.raises(ModelFileError, match="pipeline file"):
        load_estimator(js, npz)


def test_saving_what_cannot_be_stored_without_pickle_raises_usage_error(tmp_path):
    from sklearn.ensemble import RandomForestClassifier

    with pytest.raises(UsageError, match="allowed estimators"):
        save_estimator(RandomForestClassifier().fit(X, Y), tmp_path / "a.json", tmp_path / "a.npz")
    odd = Pipeline([("clf", LogisticRegression(random_state=np.random.RandomState(0)))]).fit(X, Y)
    with pytest.raises(UsageError, match="RandomState"):
        save_estimator(odd, tmp_path / "b.json", tmp_path / "b.npz")
    assert not (tmp_path / "b.json").exists()


def test_a_lookalike_subclass_is_not_saved_as_the_allowed_class(tmp_path):
    class StandardScaler2(StandardScaler):
        pass

    StandardScaler2.__name__ = "StandardScaler"
    with pytest.raises(UsageError):
        save_estimator(StandardScaler2().fit(X), tmp_path / "a.json", tmp_path / "a.npz")
