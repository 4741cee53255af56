"""Classification metrics on arrays: accuracy, top-k, per-class P/R/F1, confusion, log loss.

Pure numpy, so the trainer can call it every epoch for free. Conventions follow
scikit-learn with ``zero_division=0``: a class that is never predicted has precision 0, a
class absent from ``y_true`` has recall 0, and nothing warns. Macro averages run over the
classes that occur in ``y_true`` or in the predictions (scikit-learn's default), so a class
with no test images and no predictions does not drag the average down; weighted averages
weight by support.

Example:
    >>> import numpy as np
    >>> proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4]])
    >>> m = classification_metrics([0, 1, 2], proba, ["a", "b", "c"], top_k=(2,))
    >>> round(m["accuracy"], 3), m["top_k_accuracy"], m["confusion_matrix"][2]
    (0.667, {'2': 1.0}, [1, 0, 0])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from imgrec.errors import DataError, UsageError

LOG_LOSS_EPS = 1e-15


def accuracy(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray) -> float:
    """Fraction of predictions equal to the true label (0.0 for no samples).

    Example:
        >>> accuracy([0, 1, 1, 2], [0, 1, 2, 2])
        0.75
    """
    t, p = _labels(y_true), _labels(y_pred)
    _same_length(t, p)
    return float(np.mean(t == p)) if len(t) else 0.0


def macro_f1(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, num_classes: int
) -> float:
    """Unweighted mean F1 over the classes seen in ``y_true`` or ``y_pred``.

    Example:
        >>> round(macro_f1([0, 0, 1, 1], [0, 1, 1, 1], 3), 4)
        0.7333
    """
    t, p = _labels(y_true), _labels(y_pred)
    _same_length(t, p)
    _in_range(t, num_classes, "y_true")
    _in_range(p, num_classes, "y_pred")
    cm = confusion_matrix(t, p, num_classes)
    _, _, f1 = _prf(cm)
    present = _present(cm)
    return float(f1[present].mean()) if present.any() else 0.0


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``(C, C)`` int64; rows are true classes, columns predicted classes.

    Example:
        >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2).tolist()
        [[1, 0], [1, 1]]
    """
    flat = np.asarray(y_true, np.int64) * num_classes + np.asarray(y_pred, np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def top_k_accuracy(y_true: np.ndarray, proba: np.ndarray, k: int) -> float:
    """Fraction of samples whose true class is among the ``k`` most probable."""
    if len(y_true) == 0:
        return 0.0
    k = min(k, proba.shape[1])
    top = np.argpartition(-proba, k - 1, axis=1)[:, :k]
    return float(np.mean((top == np.asarray(y_true)[:, None]).any(axis=1)))


def log_loss(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean negative log-probability of the true class (probabilities clipped at 1e-15)."""
    if len(y_true) == 0:
        return 0.0
    p = proba.astype(np.float64)[np.arange(len(y_true)), y_true]
    return float(-np.mean(np.log(np.clip(p, LOG_LOSS_EPS, 1.0))))


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    proba: np.ndarray,
    classes: Sequence[str],
    *,
    top_k: Sequence[int] = (1, 3, 5),
) -> dict[str, Any]:
    """Every figure the reports need, as a JSON-able dict.

    Args:
        y_true: true class indices ``(N,)`` into ``classes``.
        proba: class probabilities ``(N, C)``, columns aligned with ``classes``.
        classes: class names.
        top_k: the k of the top-k accuracies; only k below the number of classes are kept.

    Returns:
        ``num_samples, num_classes, classes, accuracy, balanced_accuracy, top_k_accuracy
        {"k": value}, log_loss, macro {precision, recall, f1}, weighted {...}, macro_f1,
        per_class {name: {precision, recall, f1, support}}, confusion_matrix`` (lists, rows =
        true class).

    Example:
        >>> import numpy as np
        >>> m = classification_metrics([0, 1], np.eye(2), ["cat", "dog"])
        >>> m["accuracy"], m["per_class"]["dog"]["f1"], m["top_k_accuracy"]
        (1.0, 1.0, {'1': 1.0})
    """
    t, p = _check_inputs(y_true, proba, classes)
    pred = p.argmax(axis=1) if len(t) else np.zeros(0, np.int64)
    cm = confusion_matrix(t, pred, len(classes))
    precision, recall, f1 = _prf(cm)
    support = cm.sum(axis=1)
    macro = _average(precision, recall, f1, _present(cm).astype(np.float64))
    return {
        "num_samples": len(t),
        "num_classes": len(classes),
        "classes": list(classes),
        "accuracy": accuracy(t, pred),
        "balanced_accuracy": _balanced_accuracy(recall, support),
        "top_k_accuracy": {
            str(k): top_k_accuracy(t, p, k) for k in sorted(set(top_k)) if 1 <= k < len(classes)
        },
        "log_loss": log_loss(t, p),
        "macro": macro,
        "weighted": _average(precision, recall, f1, support.astype(np.float64)),
        "macro_f1": macro["f1"],
        "per_class": _per_class(classes, precision, recall, f1, support),
        "confusion_matrix": cm.tolist(),
    }


def _prf(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1 from a confusion matrix, 0 where undefined."""
    tp = np.diag(cm).astype(np.float64)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return precision, recall, f1


def _present(cm: np.ndarray) -> np.ndarray:
    """Classes that occur as a true label or a prediction."""
    return np.asarray((cm.sum(axis=0) + cm.sum(axis=1)) > 0)


def _average(
    precision: np.ndarray, recall: np.ndarray, f1: np.ndarray, weights: np.ndarray
) -> dict[str, float]:
    total = float(weights.sum())
    if total == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    return {
        name: float(np.dot(values, weights) / total)
        for name, values in (("precision", precision), ("recall", recall), ("f1", f1))
    }


def _balanced_accuracy(recall: np.ndarray, support: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true``."""
    seen = support > 0
    return float(recall[seen].mean()) if seen.any() else 0.0


def _per_class(
    classes: Sequence[str],
    precision: np.ndarray,
    recall: np.ndarray,
    f1: np.ndarray,
    support: np.ndarray,
) -> dict[str, dict[str, float | int]]:
    return {
        str(name): {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(classes)
    }


def _labels(values: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise UsageError(
            f"Expected a 1-D array of integer class indices; received {arr.dtype} {arr.shape}."
        )
    return arr.astype(np.int64)


def _same_length(a: np.ndarray, b: np.ndarray) -> None:
    if len(a) != len(b):
        raise UsageError(
            f"y_true and y_pred must have the same length; received {len(a)} and {len(b)}."
        )


def _in_range(labels: np.ndarray, num_classes: int, what: str) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{what} holds class indices from {labels.min()} to {labels.max()}, but there are "
            f"{num_classes} classes (valid indices 0..{num_classes - 1}). Check that the labels "
            "and the class list come from the same dataset."
        )


def _check_inputs(
    y_true: Sequence[int] | np.ndarray, proba: np.ndarray, classes: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    t = _labels(y_true)
    p = np.asarray(proba)
    if len(classes) < 1:
        raise UsageError("classification_metrics needs at least one class name; received none.")
    if p.ndim != 2 or p.shape != (len(t), len(classes)):
        raise UsageError(
            f"proba must be shaped (num_samples, num_classes) = ({len(t)}, {len(classes)}); "
            f"received {p.shape}."
        )
    _in_range(t, len(classes), "y_true")
    return t, p
