"""Segmentation metrics: hand-computed cases, and scikit-learn as an independent computation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, jaccard_score
from tests.segmentation_data import coco128, polygon_masks

from imgrec.errors import UsageError
from imgrec.evaluation.segmentation import SegmentationAccumulator


def test_hand_computed_case_with_ignore() -> None:
    truth = np.array([[0, 0, 1, 1], [0, 2, 2, 255]])
    pred = np.array([[0, 1, 1, 1], [0, 2, 0, 2]])
    acc = SegmentationAccumulator(3)
    acc.update(pred, truth)
    # truth 0: 3 px (pred 0,1,0); truth 1: 2 px (1,1); truth 2: 2 px (2,0); the 255 pixel is left out
    assert acc.confusion.tolist() == [[2, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert np.allclose(acc.iou(), [2 / 4, 2 / 3, 1 / 2])
    assert np.allclose(acc.dice(), [4 / 6, 4 / 5, 2 / 3])
    assert acc.pixel_accuracy() == pytest.approx(5 / 7)
    assert acc.miou() == pytest.approx((1 / 2 + 2 / 3 + 1 / 2) / 3)
    s = acc.summary()
    assert s["per_class"]["1"]["pixels"] == 2 and s["images"] == 1


def test_absent_classes_are_left_out_of_the_mean() -> None:
    acc = SegmentationAccumulator(4)
    acc.update(np.array([[0, 1]]), np.array([[0, 1]]))
    assert np.isnan(acc.iou()[2:]).all() and acc.miou() == 1.0
    assert acc.summary()["per_class"]["3"]["iou"] is None


def test_matches_scikit_learn_on_real_outlines() -> None:
    _, doc = coco128()
    truths = [m for _, m in polygon_masks(doc, 4)]
    rng = np.random.default_rng(0)
    acc = SegmentationAccumulator(81, classes=[str(k) for k in range(81)])
    all_t, all_p = [], []
    for t in truths:
        p = np.roll(t, 3, axis=1).copy()  # a shifted prediction...
        p[rng.random(t.shape) < 0.02] = 0  # ...with noise
        t = t.copy()
        t[:5] = 255  # an ignored band
        acc.update(p, t)
        keep = t != 255
        all_t.append(t[keep])
        all_p.append(p[keep])
    yt, yp = np.concatenate(all_t), np.concatenate(all_p)
    labels = np.union1d(yt, yp)
    assert np.array_equal(acc.confusion[np.ix_(labels, labels)], confusion_matrix(yt, yp, labels=labels))
    assert np.allclose(acc.iou()[labels], jaccard_score(yt, yp, labels=labels, average=None, zero_division=0))
    assert np.allclose(acc.dice()[labels], f1_score(yt, yp, labels=labels, average=None, zero_division=0))
    assert acc.miou() == pytest.approx(jaccard_score(yt, yp, labels=labels, average="macro", zero_division=0))
    assert acc.pixel_accuracy() == pytest.approx(float((yt == yp).mean()))


def test_boundary_f1_perfect_and_shifted() -> None:
    _, doc = coco128()
    t = polygon_masks(doc, 1)[0][1]
    perfect = SegmentationAccumulator(81, boundary=True)
    perfect.update(t, t)
    present = np.unique(t)
    assert np.allclose(perfect.boundary_f1()[present], 1.0)
    far = SegmentationAccumulator(81, boundary=True)
    far.update(np.roll(t, 40, axis=0), t)  # beyond the tolerance (0.75% of the diagonal: 6 px)
    near = SegmentationAccumulator(81, boundary=True)
    near.update(np.roll(t, 2, axis=0), t)
    assert near.summary()["boundary_f1"] > 0.9 > 0.5 > far.summary()["boundary_f1"]


def test_errors_say_what_to_do() -> None:
    acc = SegmentationAccumulator(2)
    with pytest.raises(UsageError, match="mask_to_original"):
        acc.update(np.zeros((2, 2)), np.zeros((3, 2)))
    with pytest.raises(UsageError, match=r"0\.\.1"):
        acc.update(np.full((2, 2), 5), np.zeros((2, 2)))
    with pytest.raises(UsageError, match="boundary=True"):
        acc.boundary_f1()
