from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from imgrec.evaluation import plots
from imgrec.imaging import decode

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_shape(data: bytes) -> tuple[int, ...]:
    assert data[:8] == PNG_MAGIC
    return decode(data).shape


def test_confusion_matrices_for_many_classes_with_awkward_names():
    rng = np.random.default_rng(0)
    classes = [f"class {i} with a rather long name" for i in range(12)]
    classes[3], classes[4] = "$x$ dollars $", "<script>alert(1)</script>"
    cm = rng.integers(0, 20, (12, 12)) + np.diag(np.full(12, 80))
    raw = plots.confusion_matrix_png(cm, classes)
    norm = plots.confusion_matrix_png(cm, classes, normalize=True)
    h, w, c = _png_shape(raw)
    assert c == 3 and h >= 600 and w >= 600  # grows with the number of classes
    assert _png_shape(norm)[:2] == (h, w) and raw != norm


def test_normalized_matrix_survives_an_empty_row():
    assert _png_shape(plots.confusion_matrix_png([[0, 0], [1, 3]], ["a", "b"], normalize=True))


def test_learning_curves_with_gaps_and_a_single_epoch():
    history = [
        {"epoch": 1, "train_loss": 1.2, "val_loss": 1.1, "train_accuracy": 0.5,
         "val_accuracy": 0.55},
        {"epoch": 2, "train_loss": 0.7, "val_loss": None, "train_accuracy": 0.8},
        {"epoch": 3, "train_loss": 0.3, "val_loss": 0.9, "train_accuracy": 0.95,
         "val_accuracy": 0.7},
    ]
    assert len(_png_shape(plots.learning_curves_png(history))) == 3
    assert len(_png_shape(plots.learning_curves_png(history[:1]))) == 3


def test_per_class_f1_bars():
    per_class = {f"c{i}": {"f1": i / 10} for i in range(10)}
    assert len(_png_shape(plots.per_class_f1_png(per_class))) == 3


def test_error_grid_and_captions_fit_the_cell():
    imgs = [np.full((30 + i, 40, 3), 20 * i, np.uint8) for i in range(7)]
    captions = [plots.error_caption("automobile", "airplane", 0.97)] * 7
    assert captions[0].endswith("0.97") and "->" in captions[0]
    assert len(captions[0]) <= 128 // 6
    h, w, _ = _png_shape(plots.errors_grid_png(imgs, captions, cell=128, cols=6))
    assert w == 6 * 128 and h > 2 * 128


def test_plots_never_touch_pyplot_or_the_global_backend():
    code = (
        "import matplotlib, sys\n"
        "raw = lambda: dict.__getitem__(matplotlib.rcParams, 'backend')  # no resolution\n"
        "before = raw()\n"
        "import imgrec.evaluation.plots as p\n"
        "p.confusion_matrix_png([[1, 0], [0, 1]], ['a', 'b'])\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "assert raw() == before, 'backend changed'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_importing_plots_does_not_import_matplotlib():
    code = "import sys, imgrec.evaluation; assert 'matplotlib' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", ["short", "x" * 40])
def test_short_label(name):
    out = plots.short_label(name, 18)
    assert len(out) <= 18 and (out == name or out.endswith("…"))
