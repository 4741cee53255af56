"""Evaluation plots as PNG bytes: confusion matrices, learning curves, per-class F1, errors.

Only matplotlib's object API is used (``Figure`` + ``FigureCanvasAgg``), imported inside the
functions: importing this module, or calling it, never touches pyplot or the global backend.

Example:
    >>> png = confusion_matrix_png([[5, 1], [0, 4]], ["cat", "dog"])
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

LABEL_CHARS = 18
BAD_COLOR, GOOD_COLOR = "#c0392b", "#2e86c1"


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes with the Agg canvas (no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    buf = io.BytesIO()
    canvas.print_png(buf, metadata={"Software": "imgrec"})
    return buf.getvalue()


def short_label(name: str, limit: int = LABEL_CHARS, ellipsis: str = "…") -> str:
    """A class name cut to ``limit`` characters, ending with ``ellipsis`` when cut."""
    return name if len(name) <= limit else name[: max(1, limit - len(ellipsis))] + ellipsis


def _mpl_label(name: str) -> str:
    """A short label safe for matplotlib text (a ``$`` would start mathtext)."""
    return short_label(name).replace("$", r"\$")


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def confusion_matrix_figure(
    cm: Sequence[Sequence[int]] | np.ndarray,
    classes: Sequence[str],
    *,
    normalize: bool = False,
    title: str | None = None,
) -> Figure:
    """A confusion matrix heat map, rows = true class; ``normalize`` divides each row by its sum.

    Cells hold the counts (or row fractions) up to 30 classes; labels are shortened and the
    figure grows with the number of classes so 10-20 classes stay readable.
    """
    counts = np.asarray(cm, dtype=np.float64)
    n = len(classes)
    values = _row_normalize(counts) if normalize else counts
    side = min(4.0 + 0.45 * n, 22.0)
    fig = _new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else max(1, values.max()))
    fig.colorbar(image, ax=ax, shrink=0.8)
    labels = [_mpl_label(c) for c in classes]
    ax.set_xticks(range(n), labels, rotation=45 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    default = "Confusion matrix (row-normalized)" if normalize else "Confusion matrix"
    ax.set_title(title or default)
    if n <= 30:
        _annotate_cells(ax, values, normalize)
    return fig


def _row_normalize(counts: np.ndarray) -> np.ndarray:
    sums = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)


def _annotate_cells(ax: Axes, values: np.ndarray, normalize: bool) -> None:
    n = len(values)
    size = 10 if n <= 8 else 8 if n <= 15 else 6
    top = values.max() or 1.0
    for (i, j), v in np.ndenumerate(values):
        if v == 0 and n > 10:
            continue
        text = f"{v:.2f}" if normalize else f"{int(v)}"
        color = "white" if v > 0.55 * top else "black"
        ax.text(j, i, text, ha="center", va="center", fontsize=size, color=color)


def confusion_matrix_png(
    cm: Sequence[Sequence[int]] | np.ndarray, classes: Sequence[str], *, normalize: bool = False
) -> bytes:
    """:func:`confusion_matrix_figure` as PNG bytes."""
    return figure_png(confusion_matrix_figure(cm, classes, normalize=normalize))


def learning_curves_figure(history: Sequence[Mapping[str, Any]]) -> Figure:
    """Train vs validation loss and accuracy per epoch: the overfitting check.

    Args:
        history: per-epoch dicts with ``epoch`` and any of ``train_loss``, ``val_loss``,
            ``train_accuracy``, ``val_accuracy``; missing or None values are skipped.
    """
    fig = _new_figure(10, 4)
    loss_ax, acc_ax = fig.subplots(1, 2)
    epochs = [float(h.get("epoch", i + 1)) for i, h in enumerate(history)]
    for ax, metric in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        for split, color in (("train", GOOD_COLOR), ("val", BAD_COLOR)):
            _plot_series(ax, epochs, history, f"{split}_{metric}", color)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend()
    best = _best_epoch(epochs, history)
    if best is not None:
        acc_ax.axvline(best, color="gray", linestyle="--", linewidth=1)
        acc_ax.annotate("best val", (best, 0.02), xycoords=("data", "axes fraction"), color="gray")
    return fig


def _plot_series(
    ax: Axes, epochs: list[float], history: Sequence[Mapping[str, Any]], key: str, color: str
) -> None:
    pairs = zip(epochs, history, strict=True)
    points = [(e, float(h[key])) for e, h in pairs if h.get(key) is not None]
    if points:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        ax.plot(xs, ys, marker="o", markersize=3, color=color, label=key.replace("_", " "))


def _best_epoch(epochs: list[float], history: Sequence[Mapping[str, Any]]) -> float | None:
    scored = [
        (float(h["val_accuracy"]), -e)
        for e, h in zip(epochs, history, strict=True)
        if h.get("val_accuracy") is not None
    ]
    return -max(scored)[1] if len(scored) > 1 else None


def learning_curves_png(history: Sequence[Mapping[str, Any]]) -> bytes:
    """:func:`learning_curves_figure` as PNG bytes."""
    return figure_png(learning_curves_figure(history))


def per_class_f1_png(per_class: Mapping[str, Mapping[str, float]], worst: int = 3) -> bytes:
    """Horizontal bars of F1 per class, the ``worst`` lowest in red."""
    names = list(per_class)
    f1 = np.array([float(per_class[c]["f1"]) for c in names])
    fig = _new_figure(7, min(2.0 + 0.3 * len(names), 20.0))
    ax = fig.add_subplot()
    low = set(np.argsort(f1, kind="stable")[: min(worst, len(names) - 1)].tolist())
    colors = [BAD_COLOR if i in low else GOOD_COLOR for i in range(len(names))]
    ax.barh(range(len(names)), f1, color=colors)
    ax.set_yticks(range(len(names)), [_mpl_label(c) for c in names])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("F1")
    ax.set_title("F1 per class")
    ax.grid(axis="x", alpha=0.3)
    return figure_png(fig)


def error_caption(true: str, pred: str, score: float, cell: int = 128) -> str:
    """``"true->pred 0.97"`` cut to fit a grid cell (the grid's font has no arrow glyph)."""
    room = max(2, (cell // 6 - 7) // 2)
    return f"{short_label(true, room, '.')}->{short_label(pred, room, '.')} {score:.2f}"


def errors_grid_png(
    images: Sequence[np.ndarray], captions: Sequence[str], *, cell: int = 128, cols: int = 6
) -> bytes:
    """A captioned grid of images (RGB uint8) as PNG bytes, via ``imaging.draw.make_grid``."""
    from PIL import Image

    from imgrec.imaging.draw import make_grid

    grid = make_grid(list(images), list(captions), cell=cell, cols=cols)
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, "PNG")
    return buf.getvalue()
