"""Classical classifiers: image features -> scaling -> PCA -> an RBF-kernel classifier.

Every model here is one scikit-learn ``Pipeline``: a feature set from
:mod:`imgrec.features.sets`, ``StandardScaler``, ``PCA`` and a head chosen by the
``classifier`` option:

- ``"svc"``: an exact RBF ``SVC`` with sigmoid-calibrated probabilities
  (``CalibratedClassifierCV(..., ensemble=False)``); best on small training sets.
- ``"logistic"``: ``Nystroem`` (an explicit RBF kernel map, exact when ``n_components`` >= the
  training set) then multinomial ``LogisticRegression``; scales to 60k images in minutes.
- ``"auto"`` (default): ``"svc"`` up to :data:`EXACT_SVC_MAX` training images (with >= 3 per
  class), ``"logistic"`` above.

Models are registered on import; build them with :func:`imgrec.models.create_model`.

Example:
    >>> import numpy as np
    >>> from imgrec.models import create_model
    >>> m = create_model("hog-svm", ["a", "b"], image_size=32)
    >>> X = np.random.default_rng(0).integers(0, 255, (20, 32, 32, 3), dtype=np.uint8)
    >>> m.fit(X, np.arange(20) % 2).predict_proba(X[:3]).shape
    (3, 2)
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import ConfigError, DataError, DatasetError, ModelFileError, UsageError, did_you_mean
from imgrec.models.base import Classifier, ModelSpec
from imgrec.models.registry import register_loader, register_model
from imgrec.transforms.preprocess import Preprocessing

log = logging.getLogger(__name__)

PIPELINE_FILE = "pipeline.json"
ARRAYS_FILE = "pipeline.npz"
CLASSIFIERS = ("auto", "logistic", "svc")
EXACT_SVC_MAX = 5000  # classifier="auto" trains an exact SVM up to this many images

# Options of the classifier head, shared by every classical model (plus the feature options).
HEAD_DEFAULTS: dict[str, Any] = {
    "C": 10.0,  # inverse regularization strength of the SVM / logistic regression
    "gamma": None,  # RBF width; None = 1 / (n_features * variance) after PCA
    "pca": 128,  # PCA components before the kernel (0 or None: no PCA)
    "n_components": 2000,  # Nystroem kernel-map size for the "logistic" head
    "classifier": "auto",  # "auto", "svc" (exact, calibrated) or "logistic" (Nystroem)
    "max_iter": 300,  # logistic-regression iterations
    "random_state": 0,  # seed of PCA, Nystroem, SVC and the BoVW vocabulary
    "threads": None,  # cap on BLAS/OpenMP threads in fit/predict (None: library default)
}


@dataclass(frozen=True)
class Recipe:
    """One registered classical model: a named feature set and the head's defaults.

    Attributes:
        features: a name from ``imgrec.features.sets.FEATURE_SETS``.
        overrides: defaults that differ from the feature set's and :data:`HEAD_DEFAULTS`.
    """

    name: str
    description: str
    default_size: int
    features: str
    overrides: dict[str, Any] = field(default_factory=dict)

    def all_defaults(self) -> dict[str, Any]:
        from imgrec.features.sets import feature_options

        return {**feature_options(self.features), **HEAD_DEFAULTS, **self.overrides}


class ClassicalClassifier(Classifier):
    """A scikit-learn Pipeline behind the common :class:`Classifier` interface.

    Args:
        name: registered model name.
        classes: class names; labels passed to :meth:`fit` index into them.
        preprocessing: how images are prepared (the pipeline sees prepared uint8 batches).
        model_args: the options the model was built with.
        pipeline: an unfitted or fitted ``sklearn.pipeline.Pipeline`` whose last step has
            ``predict_proba``.
    """

    family = "classical"

    def __init__(
        self,
        name: str,
        classes: list[str],
        preprocessing: Preprocessing,
        model_args: Mapping[str, Any] | None = None,
        pipeline: Any = None,
    ) -> None:
        super().__init__(name, classes, preprocessing, model_args)
        self.pipeline = pipeline

    @property
    def is_fitted(self) -> bool:
        return hasattr(self.pipeline.steps[-1][1], "classes_")

    def fit(self, batch: np.ndarray, labels: Any) -> ClassicalClassifier:
        """Train on a prepared uint8 batch ``(N, S, S, 3)`` and integer labels; returns self."""
        y = self._check_labels(batch, labels)
        self._choose_head(y)
        with warnings.catch_warnings(record=True) as caught, self._threads():
            warnings.simplefilter("always")
            fit_staged(self.pipeline, batch, y)
        for w in {str(w.message) for w in caught}:
            log.info("%s: %s", self.name, w)
        return self

    def set_threads(self, threads: int | None) -> None:
        """Cap BLAS/OpenMP threads in fit/predict (the ``threads`` model argument)."""
        super().set_threads(threads)
        self.model_args["threads"] = threads

    def _threads(self) -> contextlib.AbstractContextManager[Any]:
        """Cap BLAS/OpenMP threads while fitting or predicting when ``threads`` is set.

        One thread is often faster on a busy machine: idle threads spin or wait for a
        time slice at every parallel step.
        """
        n = self.model_args.get("threads")
        if n is None:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=int(n))

    def _choose_head(self, y: np.ndarray) -> None:
        """With ``classifier="auto"``, rebuild the head for the training-set size."""
        if self.model_args.get("classifier") != "auto":
            return
        from sklearn.pipeline import Pipeline

        choice = resolve_classifier(self.model_args, y)
        log.info("%s: %d training images -> %s head", self.name, len(y), choice)
        head = build_head({**self.model_args, "classifier": choice})
        self.pipeline = Pipeline([self.pipeline.steps[0], *head])

    def _check_labels(self, batch: np.ndarray, labels: Any) -> np.ndarray:
        y = np.asarray(labels)
        if y.ndim != 1 or len(y) != len(batch) or (y.size and y.dtype.kind not in "iu"):
            raise DataError(
                f"Expected one integer label per image ({len(batch)}); received {y.dtype} labels shaped {y.shape}."
            )
        if y.size and (y.min() < 0 or y.max() >= self.num_classes):
            raise DataError(
                f"Labels must index the {self.num_classes} classes (0..{self.num_classes - 1}); "
                f"received values {int(y.min())}..{int(y.max())}."
            )
        if len(np.unique(y)) < 2:
            raise DatasetError(
                f"{self.name} needs images of at least 2 classes to train; received "
                f"{len(np.unique(y))} class(es). Add images of the other classes."
            )
        return y.astype(np.int64)

    def predict_proba(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities ``float32 (N, num_classes)``, rows summing to 1."""
        if not self.is_fitted:
            raise UsageError(f"{self.name} is not trained: call fit() or load a trained run.")
        n = len(batch)
        out = np.zeros((n, self.num_classes), np.float32)
        if n == 0:
            return out
        with self._threads():
            proba = self.pipeline.predict_proba(batch)
        cols = np.asarray(self.pipeline.steps[-1][1].classes_, dtype=np.int64)
        out[:, cols] = proba
        return out / out.sum(axis=1, keepdims=True)

    def save_weights(self, run_dir: Path) -> dict[str, str]:
        """Write ``pipeline.json`` and ``pipeline.npz`` (no pickle) into ``run_dir``."""
        from imgrec.models.sklearn_io import save_estimator

        if not self.is_fitted:
            raise UsageError(f"{self.name} is not trained; there is nothing to save.")
        run = Path(run_dir)
        save_estimator(self.pipeline, run / PIPELINE_FILE, run / ARRAYS_FILE)
        return {"pipeline": PIPELINE_FILE, "arrays": ARRAYS_FILE}

    def num_params(self) -> int:
        """Learned floating-point values in the pipeline (0 before training)."""
        from imgrec.models.sklearn_io import count_learned

        return count_learned(self.pipeline) if self.is_fitted else 0


def fit_staged(pipeline: Any, X: Any, y: np.ndarray) -> None:
    """Fit a Pipeline step by step, sizing data-dependent options on the way.

    PCA and Nystroem sizes are clipped to what the data allows, a kernel ``gamma`` of None
    becomes ``1 / (n_features * X.var())`` (scikit-learn's "scale") and the calibration
    folds are limited by the smallest class.
    """
    Z = X
    for _, step in pipeline.steps[:-1]:
        _size_step(step, Z, y)
        Z = step.fit_transform(Z, y)
    last = pipeline.steps[-1][1]
    _size_step(last, Z, y)
    last.fit(Z, y)


def _size_step(step: Any, Z: Any, y: np.ndarray) -> None:
    kind = type(step).__name__
    if kind == "PCA":
        step.set_params(n_components=int(min(step.n_components, *np.shape(Z))))
    elif kind == "Nystroem":
        step.set_params(n_components=int(min(step.n_components, len(Z))))
    elif kind == "CalibratedClassifierCV":
        smallest = int(np.bincount(y)[np.unique(y)].min())
        if smallest < 2:
            raise DatasetError(
                "classifier='svc' calibrates on held-out folds and needs at least 2 images per "
                f"class; the smallest class has {smallest}. Add images or use "
                "classifier='logistic'."
            )
        step.set_params(cv=min(5, smallest))
        _size_step(step.estimator, Z, y)
    if kind in ("Nystroem", "SVC") and (step.gamma is None or step.gamma == "scale"):
        var = float(np.var(Z)) * np.shape(Z)[1]
        step.set_params(gamma=1.0 / var if var > 0 else 1.0)


def resolve_classifier(args: Mapping[str, Any], labels: np.ndarray) -> str:
    """``"svc"`` or ``"logistic"`` for ``classifier="auto"``: exact SVM on small training sets."""
    if args.get("classifier", "auto") != "auto":
        return str(args["classifier"])
    smallest = int(np.bincount(labels)[np.unique(labels)].min())
    return "svc" if len(labels) <= EXACT_SVC_MAX and smallest >= 3 else "logistic"


def build_head(args: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The steps after the features: scaler, optional PCA, kernel map and classifier."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.decomposition import PCA
    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    seed = args["random_state"]
    steps: list[tuple[str, Any]] = [("scale", StandardScaler())]
    if args["pca"]:
        steps.append(("pca", PCA(args["pca"], svd_solver="randomized", random_state=seed)))
    if args["classifier"] in ("svc", "auto"):
        svc = SVC(C=args["C"], gamma=args["gamma"], random_state=seed)
        calibrated = CalibratedClassifierCV(svc, method="sigmoid", ensemble=False)
        return [*steps, ("classifier", calibrated)]
    kernel = Nystroem(gamma=args["gamma"], n_components=args["n_components"], random_state=seed)
    clf = LogisticRegression(C=args["C"], max_iter=args["max_iter"])
    return [*steps, ("kernel", kernel), ("classifier", clf)]


def check_args(recipe: Recipe, given: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``given`` over the recipe's defaults; unknown keys or bad values raise ConfigError."""
    from imgrec.features.sets import build_features

    defaults = recipe.all_defaults()
    for key in given:
        if key not in defaults:
            raise ConfigError(
                f"Unknown option {key!r} for model {recipe.name!r}.{did_you_mean(key, defaults)} "
                f"Valid options: {', '.join(sorted(defaults))}."
            )
    args = {**defaults, **given}
    _check_head(recipe.name, args)
    build_features(recipe.features, args)  # checks the feature options
    return args


def _check_head(name: str, args: Mapping[str, Any]) -> None:
    rules: list[tuple[str, Callable[[Any], bool], str]] = [
        ("C", lambda v: _is_number(v) and v > 0, "a positive number"),
        (
            "gamma",
            lambda v: v is None or (_is_number(v) and v > 0),
            "a positive number, or None for 1 / (n_features * variance)",
        ),
        ("pca", lambda v: v is None or (_is_int(v) and v >= 0), "an integer, or 0/None for no PCA"),
        ("n_components", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        ("max_iter", lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        ("classifier", lambda v: v in CLASSIFIERS, " or ".join(map(repr, CLASSIFIERS))),
        ("random_state", lambda v: v is None or _is_int(v), "an integer or None"),
        ("threads", lambda v: v is None or (_is_int(v) and v >= 1), "an integer >= 1, or None for all"),
    ]
    for key, ok, expected in rules:
        if not ok(args[key]):
            raise ConfigError(f"Model {name!r}: {key} must be {expected}; received {args[key]!r}.")


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("hog-svm", "HOG -> RBF-kernel SVM / kernel logistic regression", 64, "hog"),
        Recipe("lbp-svm", "uniform LBP grid histograms -> RBF-kernel classifier", 64, "lbp"),
        Recipe("color-svm", "HSV colour histograms (2x2 grid) -> RBF-kernel classifier", 64, "color"),
        Recipe("bovw-svm", "dense SIFT bag of visual words -> RBF-kernel classifier", 128, "bovw"),
        Recipe(
            "hog-lbp-color-svm",
            "colour HOG + LBP + colour histograms -> RBF-kernel classifier (best on colour photos)",
            64,
            "hog+lbp+color",
            {"color": True, "n_components": 4000},
        ),
        Recipe(
            "hog-pixels-svm",
            "HOG + raw pixels -> RBF-kernel classifier (best on small gray images such as Fashion-MNIST)",
            32,
            "hog+pixels",
            {"n_components": 4000},
        ),
    )
}


def build_classical(
    name: str, classes: list[str], preprocessing: Preprocessing, **model_args: Any
) -> ClassicalClassifier:
    """``ModelSpec.build`` of every classical model: validate options, assemble the Pipeline."""
    from sklearn.pipeline import Pipeline

    from imgrec.features.sets import build_features

    recipe = RECIPES[name]
    args = check_args(recipe, model_args)
    pipeline = Pipeline([("features", build_features(recipe.features, args)), *build_head(args)])
    record = {k: list(v) if isinstance(v, tuple) else v for k, v in args.items()}
    return ClassicalClassifier(name, classes, preprocessing, record, pipeline)


def load_classical(run_dir: Path, meta: dict[str, Any]) -> ClassicalClassifier:
    """Loader of the "classical" family: rebuild the fitted Pipeline from its JSON + .npz."""
    from imgrec.models.sklearn_io import load_estimator

    files = dict(meta.get("files") or {})
    run = Path(run_dir)
    pipeline = load_estimator(
        run / str(files.get("pipeline", PIPELINE_FILE)), run / str(files.get("arrays", ARRAYS_FILE))
    )
    classes = [str(c) for c in meta["classes"]]
    _check_loaded(pipeline, len(classes), run)
    prep = Preprocessing.from_dict(meta["preprocessing"])
    return ClassicalClassifier(str(meta["model"]), classes, prep, meta.get("model_args"), pipeline)


def _check_loaded(pipeline: Any, n_classes: int, run: Path) -> None:
    last = pipeline.steps[-1][1] if hasattr(pipeline, "steps") and pipeline.steps else None
    cols = getattr(last, "classes_", None)
    if last is None or not hasattr(last, "predict_proba") or cols is None:
        raise ModelFileError(f"{run}: the pipeline has no fitted probabilistic classifier.")
    cols = np.asarray(cols)
    if cols.dtype.kind not in "iu" or cols.min() < 0 or cols.max() >= n_classes:
        raise ModelFileError(
            f"{run}: the pipeline predicts classes {cols.tolist()} but model.json lists "
            f"{n_classes} classes. The files do not belong together; retrain the model."
        )


def _register() -> None:
    for recipe in RECIPES.values():
        register_model(
            ModelSpec(
                name=recipe.name,
                family="classical",
                description=recipe.description,
                default_size=recipe.default_size,
                build=build_classical,
                tags=("classical", "sklearn"),
            )
        )
    register_loader("classical", load_classical)


_register()
