"""Run a predictor over a dataset (or prepared arrays) and measure it.

``evaluate`` is exported as ``imgrec.evaluate``: decode and prepare every image with the
model's own preprocessing, predict in batches, compute the metrics, and keep what the report
needs (probabilities, sources, unreadable files, timing, the most confidently wrong images).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from imgrec.data.dataset import ImageDataset, materialize
from imgrec.errors import DatasetError, UsageError
from imgrec.evaluation.metrics import classification_metrics
from imgrec.transforms.preprocess import Preprocessing

log = logging.getLogger(__name__)

DEFAULT_TOP_K = (1, 3, 5)


class ProbaModel(Protocol):
    """Anything that maps a prepared uint8 batch to class probabilities."""

    @property
    def classes(self) -> list[str]: ...

    def predict_proba(self, batch: np.ndarray) -> np.ndarray: ...


class PreparingModel(ProbaModel, Protocol):
    """A :class:`ProbaModel` that also says how to prepare images (Predictor, Classifier)."""

    @property
    def preprocessing(self) -> Preprocessing: ...


@dataclass
class EvalResult:
    """The outcome of one evaluation.

    Attributes:
        metrics: :func:`~imgrec.evaluation.metrics.classification_metrics` output.
        y_true: true class indices ``(N,)`` into ``classes`` (the model's class order).
        proba: float32 probabilities ``(N, C)``.
        sources: where each evaluated row came from.
        bad: unreadable items, ``[(source, message)]``; they are not in the rows.
        seconds: wall time of the whole evaluation (decode, prepare, predict).
        ms_per_image: prediction time per image in milliseconds (decode excluded).
        classes: class names of the probability columns.
        error_images: prepared images of the most confidently wrong rows, by row index,
            for the error gallery.
    """

    metrics: dict[str, Any]
    y_true: np.ndarray
    proba: np.ndarray
    sources: list[str]
    bad: list[tuple[str, str]]
    seconds: float
    ms_per_image: float
    classes: list[str] = field(default_factory=list)
    error_images: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def y_pred(self) -> np.ndarray:
        """Predicted class index per row."""
        return self.proba.argmax(axis=1) if len(self.proba) else np.zeros(0, np.int64)

    @property
    def accuracy(self) -> float:
        return float(self.metrics["accuracy"])

    @property
    def macro_f1(self) -> float:
        return float(self.metrics["macro_f1"])

    def confident_errors(self, limit: int = 24) -> np.ndarray:
        """Row indices of wrong predictions, most confident first."""
        return confident_error_rows(self.y_true, self.proba, limit)

    def to_dict(self) -> dict[str, Any]:
        """The metrics plus timing and unreadable files, JSON-able (for metrics.json)."""
        return {
            **self.metrics,
            "seconds": round(self.seconds, 4),
            "ms_per_image": round(self.ms_per_image, 4),
            "bad_files": [{"source": s, "error": m} for s, m in self.bad],
        }


def evaluate_classifier(
    predictor: PreparingModel,
    dataset: ImageDataset,
    *,
    batch_size: int | None = None,
    top_k: Sequence[int] = DEFAULT_TOP_K,
    keep_errors: int = 32,
    workers: int = 4,
    chunk_size: int = 2048,
) -> EvalResult:
    """Evaluate a classifier on a labeled dataset (``imgrec.evaluate`` for the classify task).

    Images are decoded and prepared with ``predictor.preprocessing``, ``chunk_size`` at a
    time (memory stays bounded on large sets); unreadable files are listed in
    ``result.bad``, not raised. The dataset's classes may be in another order than the
    model's (or a subset of them); labels are mapped by name.

    Args:
        predictor: a :class:`~imgrec.inference.Predictor` (or a fitted Classifier).
        dataset: the images to evaluate, usually a test or validation split.
        batch_size: images per ``predict_proba`` call; None: the predictor's ``batch_size``
            (32 for a plain classifier).
        top_k: the k of the top-k accuracies.
        keep_errors: how many of the most confidently wrong prepared images to keep.
        workers: decoding threads.
        chunk_size: images decoded and held in memory at once.

    Example:
        >>> import numpy as np
        >>> from imgrec.data.dataset import ImageDataset
        >>> from imgrec.transforms.preprocess import Preprocessing
        >>> class Bright:  # any object with classes, preprocessing, predict_proba
        ...     classes, preprocessing = ["dark", "bright"], Preprocessing(size=8)
        ...     def predict_proba(self, batch):
        ...         p = batch.mean(axis=(1, 2, 3)) / 255.0
        ...         return np.stack([1 - p, p], axis=1).astype(np.float32)
        >>> imgs = np.array([np.full((8, 8), v, np.uint8) for v in (10, 240, 30, 200)])
        >>> ds = ImageDataset.from_arrays(imgs, [0, 1, 0, 0], ["dark", "bright"])
        >>> result = evaluate_classifier(Bright(), ds)
        >>> result.accuracy, result.metrics["per_class"]["dark"]["recall"]
        (0.75, 0.6666666666666666)
    """
    start = time.perf_counter()
    if len(dataset) == 0:
        raise DatasetError(f"The dataset {dataset.name!r} is empty: there is nothing to evaluate.")
    classes = list(predictor.classes)
    mapping = class_mapping(dataset.classes, classes)
    batch_size = batch_size or int(getattr(predictor, "batch_size", 32))
    step = max(1, chunk_size)
    chunks = [
        _run_chunk(predictor, dataset, np.arange(i, min(i + step, len(dataset))), mapping,
                   batch_size=batch_size, keep=keep_errors, workers=workers)
        for i in range(0, len(dataset), step)
    ]
    result = _merge(chunks, classes, top_k, keep_errors)
    if result.bad:
        log.warning("%d of %d images could not be read (see EvalResult.bad)",
                    len(result.bad), len(dataset))
    if len(result.y_true) == 0:
        raise DatasetError(
            f"No image of {dataset.name!r} ({len(dataset)} items) could be evaluated: every file "
            f"failed to load (first error: {_first_error(result.bad)}). Check the dataset path."
        )
    result.seconds = time.perf_counter() - start
    return result


@dataclass
class _Chunk:
    """Predictions for one slice of a dataset."""

    y_true: np.ndarray
    proba: np.ndarray
    sources: list[str]
    bad: list[tuple[str, str]]
    predict_seconds: float
    error_images: dict[int, np.ndarray]


def _run_chunk(
    predictor: PreparingModel,
    dataset: ImageDataset,
    index: np.ndarray,
    mapping: np.ndarray,
    *,
    batch_size: int,
    keep: int,
    workers: int,
) -> _Chunk:
    mat = materialize(dataset.subset(index), predictor.preprocessing, workers=workers)
    start = time.perf_counter()
    proba = predict_batches(predictor, mat.images, batch_size)
    seconds = time.perf_counter() - start
    y_true = mapping[mat.labels]
    rows = confident_error_rows(y_true, proba, keep)
    return _Chunk(
        y_true=y_true, proba=proba, sources=[dataset.sources[i] for i in index[mat.kept]],
        bad=list(mat.bad), predict_seconds=seconds,
        error_images={int(r): mat.images[r] for r in rows},
    )


def _merge(chunks: list[_Chunk], classes: list[str], top_k: Sequence[int], keep: int) -> EvalResult:
    """One result from per-chunk predictions; keeps the globally most confident errors."""
    y_true = np.concatenate([c.y_true for c in chunks]) if chunks else np.zeros(0, np.int64)
    proba = (np.concatenate([c.proba for c in chunks]) if chunks
             else np.zeros((0, len(classes)), np.float32))
    candidates: dict[int, np.ndarray] = {}
    offset = 0
    for c in chunks:
        candidates.update({offset + r: img for r, img in c.error_images.items()})
        offset += len(c.y_true)
    predict_seconds = sum(c.predict_seconds for c in chunks)
    result = EvalResult(
        metrics=classification_metrics(y_true, proba, classes, top_k=top_k),
        y_true=y_true, proba=proba, sources=[s for c in chunks for s in c.sources],
        bad=[b for c in chunks for b in c.bad], seconds=predict_seconds,
        ms_per_image=1000.0 * predict_seconds / max(1, len(y_true)), classes=classes,
    )
    result.error_images = {int(r): candidates[int(r)] for r in result.confident_errors(keep)}
    return result


def evaluate_arrays(
    predictor: ProbaModel,
    images: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    classes: Sequence[str],
    sources: Sequence[str] | None = None,
    *,
    batch_size: int = 64,
    top_k: Sequence[int] = DEFAULT_TOP_K,
    keep_errors: int = 32,
) -> EvalResult:
    """Evaluate on images that are already prepared (uint8 ``(N, S, S, 3)``).

    Args:
        predictor: a Predictor or Classifier (anything with ``classes`` and ``predict_proba``).
        images: the prepared batch.
        labels: class indices into ``classes``.
        classes: the names ``labels`` refer to; mapped onto the model's classes by name.
        sources: a name per image (defaults to ``"[i]"``).
        batch_size: images per ``predict_proba`` call.
        top_k: the k of the top-k accuracies.
        keep_errors: how many of the most confidently wrong images to keep for the report.
    """
    start = time.perf_counter()
    model_classes = list(predictor.classes)
    y_true = class_mapping(classes, model_classes)[np.asarray(labels, np.int64)]
    if len(images) != len(y_true):
        raise UsageError(f"Received {len(images)} images but {len(y_true)} labels.")
    proba = predict_batches(predictor, images, batch_size)
    predict_seconds = time.perf_counter() - start
    names = list(sources) if sources is not None else [f"[{i}]" for i in range(len(images))]
    result = EvalResult(
        metrics=classification_metrics(y_true, proba, model_classes, top_k=top_k),
        y_true=y_true, proba=proba, sources=names, bad=[],
        seconds=predict_seconds,
        ms_per_image=1000.0 * predict_seconds / max(1, len(images)),
        classes=model_classes,
    )
    result.error_images = {int(i): images[i] for i in result.confident_errors(keep_errors)}
    return result


def predict_batches(model: ProbaModel, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """``predict_proba`` over ``images`` in batches; float32 ``(N, C)``."""
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1; received {batch_size}.")
    num_classes = len(model.classes)
    parts = [
        np.asarray(model.predict_proba(images[i : i + batch_size]), np.float32)
        for i in range(0, len(images), batch_size)
    ]
    proba = np.concatenate(parts) if parts else np.zeros((0, num_classes), np.float32)
    if proba.shape != (len(images), num_classes):
        raise UsageError(
            f"predict_proba returned shape {proba.shape}; expected ({len(images)}, {num_classes})."
        )
    return proba


def confident_error_rows(y_true: np.ndarray, proba: np.ndarray, limit: int = 24) -> np.ndarray:
    """Rows whose prediction is wrong, by decreasing confidence, at most ``limit``."""
    if len(proba) == 0:
        return np.zeros(0, np.int64)
    pred = proba.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_true)
    conf = proba[wrong, pred[wrong]]
    return wrong[np.argsort(-conf, kind="stable")][: max(0, limit)]


def class_mapping(data_classes: Sequence[str], model_classes: list[str]) -> np.ndarray:
    """Index of each data class in the model's classes; unknown classes raise DatasetError."""
    index = {name: i for i, name in enumerate(model_classes)}
    unknown = [c for c in data_classes if c not in index]
    if unknown:
        raise DatasetError(
            f"The dataset has classes the model does not know: {', '.join(map(repr, unknown[:10]))}"
            f". The model knows {len(model_classes)}: {', '.join(map(repr, model_classes[:10]))}"
            f"{' ...' if len(model_classes) > 10 else ''}. Evaluate on data labeled with the "
            "model's classes."
        )
    return np.asarray([index[c] for c in data_classes], np.int64)


def _first_error(bad: list[tuple[str, str]]) -> str:
    return f"{bad[0][0]}: {bad[0][1]}" if bad else "none"
