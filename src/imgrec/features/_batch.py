"""Shared helpers for the feature extractors: input checks, grayscale, histogram normalization."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from imgrec.errors import ConfigError, DataError


def check_batch(X: Any) -> np.ndarray:
    """Return ``X`` as a uint8 ``(N, H, W, 3)`` array, or raise DataError saying why not.

    Gray batches ``(N, H, W)`` are accepted and replicated on three channels.
    """
    arr = np.asarray(X)
    if arr.dtype != np.uint8:
        raise DataError(
            f"Expected a prepared uint8 image batch (N, H, W, 3); received dtype {arr.dtype}. "
            "Prepare images with Preprocessing.prepare_batch (values 0..255 as uint8)."
        )
    if arr.ndim == 3:
        arr = np.repeat(arr[..., None], 3, axis=3)
    if arr.ndim != 4 or arr.shape[3] != 3 or min(arr.shape[1:3], default=0) < 1:
        raise DataError(
            f"Expected a prepared uint8 image batch shaped (N, H, W, 3); received shape "
            f"{arr.shape}. Stack RGB images of one size, e.g. with Preprocessing.prepare_batch."
        )
    return arr


def gray_batch(X: np.ndarray) -> np.ndarray:
    """Luma of an RGB uint8 batch as float32 ``(N, H, W)``, rounded like imgrec.imaging.to_gray."""
    r, g, b = (X[..., c].astype(np.float32) for c in range(3))
    return np.rint(r * np.float32(0.299) + g * np.float32(0.587) + b * np.float32(0.114))


def normalize_hist(h: np.ndarray, power: float = 1.0) -> np.ndarray:
    """L1-normalize histograms along the last axis, then raise to ``power`` (0.5 = Hellinger)."""
    total = h.sum(axis=-1, keepdims=True)
    out = h / np.maximum(total, 1e-12)
    if power != 1.0:
        out = np.power(out, power)
    return out.astype(np.float32)


def grid_bounds(length: int, parts: int) -> np.ndarray:
    """Index of the grid cell each of ``length`` pixels falls in, for ``parts`` equal cells."""
    return np.minimum(np.arange(length) * parts // max(length, 1), parts - 1)


class BatchTransformer(TransformerMixin, BaseEstimator):
    """Base of the image feature extractors: records the input shape at fit, checks it later.

    Subclasses implement ``_fit(X)`` (optional) and ``_transform(X) -> float32 (N, D)``;
    ``fit`` sets ``image_shape_`` and ``n_features_out_``.
    """

    def fit(self, X: Any, y: Any = None) -> BatchTransformer:
        """Learn what the extractor needs from a batch; returns self."""
        batch = check_batch(X)
        self.check_params()
        self._fit(batch)
        self.image_shape_ = tuple(int(v) for v in batch.shape[1:3])
        self.n_features_out_ = int(self._transform(batch[:1]).shape[1])
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Features of a batch as float32 ``(N, n_features_out_)``."""
        check_is_fitted(self, "image_shape_")
        batch = check_batch(X)
        if tuple(batch.shape[1:3]) != tuple(self.image_shape_):
            raise DataError(
                f"{type(self).__name__} was fitted on {self.image_shape_[0]}x{self.image_shape_[1]}"
                f" images but received {batch.shape[1]}x{batch.shape[2]}. Prepare inputs with the "
                "model's preprocessing (the same size as in training)."
            )
        if len(batch) == 0:
            return np.zeros((0, self.n_features_out_), np.float32)
        return self._transform(batch)

    def check_params(self) -> None:
        """Raise ConfigError when a parameter value is invalid (called by fit)."""

    def _fit(self, X: np.ndarray) -> None:
        """Learn state from a checked batch (stateless extractors do nothing)."""

    def _transform(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names ``<prefix>0 .. <prefix>{D-1}`` (scikit-learn's set_output support)."""
        check_is_fitted(self, "n_features_out_")
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(self.n_features_out_)], dtype=object)


def check_number(
    owner: str,
    name: str,
    value: Any,
    minimum: float,
    integer: bool = True,
    maximum: float | None = None,
) -> None:
    """Raise ConfigError unless ``value`` is a number (an int when ``integer``) in range."""
    kinds: tuple[type, ...] = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok = not isinstance(value, bool) and isinstance(value, kinds)
    if not ok or value < minimum or (maximum is not None and value > maximum):
        kind = "an integer" if integer else "a number"
        bound = f">= {minimum}" if maximum is None else f"in {minimum}..{maximum}"
        raise ConfigError(f"{owner}: {name} must be {kind} {bound}; received {value!r}.")


def check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{owner}: {name} must be one of {', '.join(map(repr, choices))}; received {value!r}.")


def chunks(n: int, pixels_per_item: int, budget: int = 500_000) -> list[slice]:
    """Slices covering ``range(n)`` so that each chunk holds about ``budget`` pixels."""
    step = max(1, budget // max(pixels_per_item, 1))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]
