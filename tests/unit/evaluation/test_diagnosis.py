"""diagnose(): a collapsed model, chance level and NaN losses are named, not called overfitting."""

from __future__ import annotations

import numpy as np

from imgrec.evaluation import EvalResult, diagnose, write_report
from imgrec.evaluation.metrics import classification_metrics

CLASSES = ["ant", "bee", "wasp"]


def result(pred: list[int], true: list[int]) -> EvalResult:
    proba = np.full((len(pred), 3), 0.1, np.float32)
    proba[np.arange(len(pred)), pred] = 0.8
    y = np.asarray(true)
    return EvalResult(classification_metrics(y, proba, CLASSES), y, proba,
                      [f"{i}.png" for i in range(len(y))], [], 0.1, 1.0, CLASSES)


def test_a_model_that_answers_one_class_is_named() -> None:
    found = diagnose(result([1] * 9, [0, 0, 0, 1, 1, 1, 2, 2, 2]).metrics)
    assert [f.code for f in found] == ["single_class"]
    assert "predicts a single class: all 9 images are predicted 'bee'" in found[0].message


def test_accuracy_not_above_the_majority_share_is_chance_level() -> None:
    true = [0, 0, 0, 0, 1, 1, 2, 2]  # 'ant' is half of the images
    found = diagnose(result([0, 1, 2, 1, 0, 2, 1, 0], true).metrics)  # 2 of 8 right
    assert [f.code for f in found] == ["chance_level"] and "'ant' (50.0%" in found[0].message
    assert diagnose(result([0, 0, 0, 0, 1, 1, 2, 0], true).metrics) == []  # 7 of 8: a model


def test_a_nan_loss_in_the_history_is_named() -> None:
    rows = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1}, {"epoch": 2, "train_loss": 0.9, "val_loss": float("nan")}]
    found = diagnose(None, rows)
    assert [f.code for f in found] == ["nan_loss"] and "val_loss) at epoch 2" in found[0].message
    assert diagnose(None, rows[:1]) == []


def test_the_report_says_single_class_instead_of_overfitting(tmp_path) -> None:
    collapsed = result([2] * 9, [0, 0, 0, 1, 1, 1, 2, 2, 2])
    history = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.0, "train_accuracy": 0.9, "val_accuracy": 0.33}
               for e in (1, 2, 3)]
    page = write_report(tmp_path, meta={"model": "mobilenetv3"}, results={"val": collapsed}, history=history)
    html = page.read_text()
    assert "predicts a single class" in html and "probably overfitting" not in html
    healthy = result([0, 0, 0, 1, 1, 1, 2, 2, 1], [0, 0, 0, 1, 1, 1, 2, 2, 2])
    page = write_report(tmp_path / "ok", meta={"model": "m"}, results={"val": healthy}, history=history)
    assert "probably overfitting" in page.read_text()  # a real gap with a real model still says so
