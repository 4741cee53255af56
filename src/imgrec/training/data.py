"""Input checks, batching, class weights and per-epoch validation for the training loop."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from imgrec.data.prepared import PreparedImages
from imgrec.errors import DataError, DatasetError
from imgrec.evaluation.metrics import macro_f1
from imgrec.models.torch_classifier import TorchClassifier

EPS = 1e-12


def check_arrays(
    pair: tuple[np.ndarray, np.ndarray], model: TorchClassifier, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Check prepared images ``(N, S, S, 3)`` uint8 and labels ``(N,)`` in ``[0, classes)``."""
    x, y = np.asarray(pair[0]), np.asarray(pair[1])
    size = model.preprocessing.size
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (size, size, 3):
        raise DataError(
            f"{what} images must be prepared uint8 (N, {size}, {size}, 3) arrays "
            f"(Preprocessing.prepare); received {x.dtype} {x.shape}."
        )
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{what} labels must be {len(x)} integers; received {y.dtype} {y.shape}.")
    if len(y) and (y.min() < 0 or y.max() >= model.num_classes):
        raise DataError(
            f"{what} labels must be in [0, {model.num_classes}); received {y.min()}..{y.max()}."
        )
    if what == "train" and len(y) == 0:
        raise DatasetError("The training set is empty; there is nothing to learn from.")
    return x, y.astype(np.int64, copy=False)


def as_prepared(
    data: PreparedImages | tuple[np.ndarray, np.ndarray], model: TorchClassifier, what: str
) -> PreparedImages:
    """``data`` as scanned :class:`PreparedImages`; arrays are checked (:func:`check_arrays`) first."""
    if isinstance(data, PreparedImages):
        images = data.scan()
        if what == "train" and len(images) == 0:
            raise DatasetError("The training set is empty; there is nothing to learn from.")
        if len(images.labels) and (images.labels.min() < 0 or images.labels.max() >= model.num_classes):
            raise DataError(f"{what} labels must be in [0, {model.num_classes}); "
                            f"received {images.labels.min()}..{images.labels.max()}.")  # fmt: skip
        return images
    x, y = check_arrays(data, model, what)
    return PreparedImages.from_arrays(x, y, model.preprocessing)


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Consecutive batches over ``n`` items; a last batch of one joins the previous batch.

    Example:
        >>> batch_slices(9, 4)
        [slice(0, 4, None), slice(4, 9, None)]
    """
    bounds = [*range(0, n, batch_size), n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:  # BatchNorm cannot train on 1 image
        del bounds[-2]
    return [slice(a, b) for a, b in itertools.pairwise(bounds)]


def class_weights(y: np.ndarray, num_classes: int, device: torch.device) -> torch.Tensor:
    """Inverse-frequency loss weights, normalized to mean 1 over the classes present.

    Example:
        >>> class_weights(np.array([0, 0, 0, 1]), 2, torch.device("cpu")).tolist()
        [0.5, 1.5]
    """
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(num_classes)
    w[present] = 1.0 / counts[present]
    w *= present.sum() / w.sum()
    return torch.tensor(w, dtype=torch.float32, device=device)


def evaluate_split(model: TorchClassifier, data: PreparedImages, batch_size: int = 256) -> dict[str, float]:
    """``val_loss`` (plain cross-entropy), ``val_accuracy`` and ``val_macro_f1``, a batch at a time."""
    whole = np.arange(len(data))
    parts = [(y, model.predict_proba(x)) for y, x in data.batches(whole, batch_slices(len(whole), batch_size))]
    y = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    proba = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, model.num_classes), np.float32)
    pred = proba.argmax(axis=1)
    loss = -np.log(np.clip(proba[np.arange(len(y)), y], EPS, 1.0)).mean()
    return {
        "val_loss": float(loss),
        "val_accuracy": float(np.mean(pred == y)),
        "val_macro_f1": macro_f1(y, pred, model.num_classes),
    }
