from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from imgrec.errors import DataError, UsageError
from imgrec.evaluation.metrics import accuracy, classification_metrics, macro_f1

# Three classes, supports 4 / 2 / 1; predictions (argmax) 0 0 0 1 | 1 1 | 0.
Y = np.array([0, 0, 0, 0, 1, 1, 2])
P = np.array(
    [
        [0.8, 0.1, 0.1],
        [0.6, 0.3, 0.1],
        [0.5, 0.2, 0.3],
        [0.3, 0.6, 0.1],
        [0.2, 0.7, 0.1],
        [0.1, 0.8, 0.1],
        [0.6, 0.3, 0.1],
    ],
    np.float32,
)
CLASSES = ["a", "b", "c"]


@pytest.fixture
def m():
    return classification_metrics(Y, P, CLASSES, top_k=(1, 2, 3, 5))


def test_hand_computed_three_class_example(m):
    # confusion rows = true: a -> 3 a, 1 b; b -> 2 b; c -> 1 a
    assert m["confusion_matrix"] == [[3, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert m["num_samples"] == 7 and m["num_classes"] == 3
    assert m["accuracy"] == pytest.approx(5 / 7)
    pc = m["per_class"]
    def prf(name):
        return pc[name]["precision"], pc[name]["recall"], pc[name]["f1"]

    assert prf("a") == pytest.approx((0.75, 0.75, 0.75))
    assert prf("b") == pytest.approx((2 / 3, 1.0, 0.8))
    assert prf("c") == (0.0, 0.0, 0.0)
    assert [pc[c]["support"] for c in CLASSES] == [4, 2, 1]
    assert m["balanced_accuracy"] == pytest.approx((0.75 + 1.0 + 0.0) / 3)
    expected_loss = -np.mean(np.log([0.8, 0.6, 0.5, 0.3, 0.7, 0.8, 0.1]))
    assert m["log_loss"] == pytest.approx(expected_loss, rel=1e-6)


def test_macro_and_weighted_averages_differ_under_imbalance(m):
    assert m["macro"]["f1"] == pytest.approx((0.75 + 0.8 + 0.0) / 3)
    assert m["weighted"]["f1"] == pytest.approx((4 * 0.75 + 2 * 0.8 + 0.0) / 7)
    assert m["macro"]["precision"] == pytest.approx((0.75 + 2 / 3 + 0) / 3)
    assert m["weighted"]["recall"] == pytest.approx(m["accuracy"])  # weighted recall = accuracy
    assert m["macro_f1"] == m["macro"]["f1"]


def test_top_k_only_below_the_number_of_classes(m):
    assert m["top_k_accuracy"] == pytest.approx({"1": 5 / 7, "2": 6 / 7})


def test_agrees_with_scikit_learn(m):
    sk = pytest.importorskip("sklearn.metrics")
    pred = P.argmax(axis=1)
    prec, rec, f1, _ = sk.precision_recall_fscore_support(Y, pred, zero_division=0)
    for name, ours in (("precision", prec), ("recall", rec), ("f1", f1)):
        assert [m["per_class"][c][name] for c in CLASSES] == pytest.approx(ours)
    for avg in ("macro", "weighted"):
        assert m[avg]["f1"] == pytest.approx(sk.f1_score(Y, pred, average=avg, zero_division=0))
    assert m["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(Y, pred))
    assert m["log_loss"] == pytest.approx(sk.log_loss(Y, P), rel=1e-5)
    assert m["top_k_accuracy"]["2"] == pytest.approx(sk.top_k_accuracy_score(Y, P, k=2))


def test_result_is_json_serializable(m):
    back = json.loads(json.dumps(m))
    assert back["per_class"]["b"]["support"] == 2 and back["classes"] == CLASSES


def test_absent_classes_neither_crash_nor_warn_nor_drag_the_macro_average():
    # class "d" never appears and is never predicted; "c" is predicted but never true
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.05, 0.05, 0], [0.1, 0.1, 0.8, 0], [0, 1, 0, 0], [0, 1, 0, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = classification_metrics(y, proba, ["a", "b", "c", "d"])
    assert m["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert m["per_class"]["c"]["precision"] == 0.0 and m["per_class"]["c"]["support"] == 0
    # a: P=1 R=0.5 F1=2/3; b: F1=1; c: F1=0 (a false positive); d is left out
    assert m["macro"]["f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["top_k_accuracy"] == {"1": 0.75, "3": 1.0}


def test_log_loss_is_finite_when_the_true_class_has_zero_probability():
    m = classification_metrics([1], np.array([[1.0, 0.0]]), ["a", "b"])
    assert math.isfinite(m["log_loss"]) and m["log_loss"] > 30


def test_no_samples_gives_zeros_not_errors():
    m = classification_metrics(np.zeros(0, np.int64), np.zeros((0, 2)), ["a", "b"])
    assert m["num_samples"] == 0 and m["accuracy"] == 0.0 and m["macro_f1"] == 0.0
    assert m["confusion_matrix"] == [[0, 0], [0, 0]]


def test_helpers_match_the_full_metrics(m):
    pred = P.argmax(axis=1)
    assert accuracy(Y, pred) == pytest.approx(m["accuracy"])
    assert macro_f1(Y, pred, 3) == pytest.approx(m["macro_f1"])
    assert macro_f1([0, 0, 1, 1], [0, 1, 1, 1], num_classes=5) == pytest.approx((2 / 3 + 0.8) / 2)
    assert accuracy([], []) == 0.0


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(UsageError, match=r"\(7, 4\)"):
        classification_metrics(Y, P, ["a", "b", "c", "d"])
    with pytest.raises(DataError, match=r"valid indices 0\.\.2"):
        classification_metrics([0, 3], P[:2], CLASSES)
    with pytest.raises(UsageError, match="integer class indices"):
        accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(UsageError, match="same length"):
        macro_f1([0, 1], [0], 2)
