"""The detect task: options, threshold, class filter, NMS, max_det, mapping; and the layout decoders."""

from __future__ import annotations

import numpy as np
import pytest

from imgrec.errors import ModelFileError, UnknownNameError, UsageError
from imgrec.tasks import DETECT, BoxCandidates, get_task, list_tasks
from imgrec.tasks.decoders import decode
from imgrec.transforms.frame import Geometry

CLASSES = ["cat", "dog", "bird"]
IDENTITY = Geometry(original=(100, 100), scale=(1.0, 1.0), offset=(0.0, 0.0), size=100)


def _cands(boxes, scores, labels) -> BoxCandidates:
    return BoxCandidates(np.asarray(boxes, np.float32), np.asarray(scores, np.float32), np.asarray(labels))


def _run(cands, geometry=IDENTITY, **options):
    return DETECT.postprocess([cands], [geometry], ["x.jpg"], CLASSES, DETECT.options(**options))[0]


def test_registry_names_and_aliases():
    assert list_tasks() == ["classify", "detect", "embed", "instance", "segment"]
    assert get_task("detection") is DETECT and get_task(None).name == "classify"
    with pytest.raises(UnknownNameError, match=r"Did you mean .detect.\?"):
        get_task("detekt")


def test_threshold_nms_class_filter_and_max_det():
    c = _cands([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60], [0, 0, 10, 10]], [0.9, 0.8, 0.3, 0.7], [0, 0, 1, 2])
    assert [(d.label, round(d.score, 2)) for d in _run(c).detections] == [("cat", 0.9), ("bird", 0.7), ("dog", 0.3)]
    assert [d.label for d in _run(c, conf=0.5).detections] == ["cat", "bird"]
    assert [d.label for d in _run(c, classes=["dog"]).detections] == ["dog"]
    assert len(_run(c, max_det=1)) == 1
    assert len(_run(c, iou=0.95).detections) == 4  # nothing overlaps that much


def test_boxes_come_back_in_original_pixels_clipped():
    g = Geometry(original=(400, 200), scale=(0.25, 0.25), offset=(0.0, 25.0), size=100)
    det = _run(_cands([[-5, 25, 50, 75]], [0.9], [1]), g)
    assert det.detections[0].box == (0.0, 0.0, 200.0, 200.0) and det.image_size == (400, 200)
    assert det.to_dict()["detections"] == [{"box": [0.0, 0.0, 200.0, 200.0], "label": "dog", "score": 0.9}]


def test_bad_options_are_usage_errors():
    for bad in ({"conf": 1.5}, {"iou": -0.1}, {"max_det": 0}, {"top_k": 3}):
        with pytest.raises(UsageError):
            DETECT.options(**bad)
    with pytest.raises(UsageError, match="Unknown class"):
        _run(_cands([[0, 0, 1, 1]], [0.9], [0]), classes=["zebra"])


def test_yolox_yolov5_yolov8_and_ssd_layouts_decode_one_box():
    yolox = np.zeros((1, 3549, 7), np.float32)  # 2 classes; anchor 0 is cell (0, 0) at stride 8
    yolox[0, 0] = [0.5, 0.5, np.log(2), np.log(2), 1.0, 0.2, 0.8]
    (c,) = decode("yolox", [yolox], 416, 2)
    best = c.scores.argmax()
    np.testing.assert_allclose(c.boxes[best], [-4, -4, 12, 12], atol=1e-4)
    assert c.labels[best] == 1 and c.scores[best] == pytest.approx(0.8)

    v5 = np.array([[[50, 40, 20, 10, 0.5, 0.1, 0.9]]], np.float32)
    (c,) = decode("yolov5", [v5], 416, 2)
    np.testing.assert_allclose(c.boxes[0], [40, 35, 60, 45]) and c.scores[0] == pytest.approx(0.45)
    v8 = np.array([[[50], [40], [20], [10], [0.1], [0.9]]], np.float32)
    (c,) = decode("yolov8", [v8], 416, 2)
    np.testing.assert_allclose(c.boxes[0], [40, 35, 60, 45]) and c.labels[0] == 1
    boxes, scores = np.array([[[0.1, 0.2, 0.5, 0.6]]], np.float32), np.array([[[0.2, 0.1, 0.7]]], np.float32)
    (c,) = decode("ssd", [boxes, scores], 100, 2)  # a leading background column is dropped
    np.testing.assert_allclose(c.boxes[0], [10, 20, 50, 60], atol=1e-4) and c.labels[0] == 1


def test_fastestdet_layout_decodes_the_cell_and_scores_as_upstream():
    out = np.zeros((1, 7, 2, 2), np.float32)  # 2 classes on a 2x2 grid
    out[0, :, 1, 0] = [0.64, 0.0, 0.0, 0.0, 0.0, 0.25, 0.75]  # row 1, col 0; w = h = sigmoid(0) = 0.5
    (c,) = decode("fastestdet", [out], 100, 2)
    best = c.scores.argmax()
    np.testing.assert_allclose(c.boxes[best], [-25, 25, 25, 75], atol=1e-4)
    assert c.scores[best] == pytest.approx(0.64**0.6 * 0.75**0.4, rel=1e-5)


def test_a_layout_that_does_not_fit_the_output_says_so():
    with pytest.raises(ModelFileError, match="layout expects"):
        decode("yolox", [np.zeros((1, 3549, 85), np.float32)], 416, 2)
    with pytest.raises(UnknownNameError):
        decode("yolo9000", [np.zeros((1, 1))], 416, 2)


def test_the_xyxy_scores_layout_clips_keeps_each_anchors_best_class_and_the_best_anchors():
    from imgrec.tasks import decoders

    boxes = np.array([[[-5, 2, 30, 120], [10, 10, 20, 20], [0, 0, 5, 5]]], np.float32)
    scores = np.array([[[0.1, 0.7], [0.9, 0.2], [0.0005, 0.0002]]], np.float32)  # the last is below MIN_SCORE
    (c,) = decode("xyxy-scores", [boxes, scores], 100, 2)
    assert c.boxes.tolist() == [[0, 2, 30, 100], [10, 10, 20, 20]] and c.labels.tolist() == [1, 0]
    np.testing.assert_allclose(c.scores, [0.7, 0.9])
    many = np.random.default_rng(0).random((1, decoders.PRE_NMS + 50, 2)).astype(np.float32)
    (top,) = decode("xyxy-scores", [np.zeros((1, len(many[0]), 4), np.float32), many], 100, 2)
    best = np.sort(many[0].max(1))[::-1][: decoders.PRE_NMS]
    assert len(top.scores) == decoders.PRE_NMS and np.array_equal(top.scores, best)  # best first
    with pytest.raises(ModelFileError, match="same anchors"):
        decode("xyxy-scores", [boxes, scores[:, :2]], 100, 2)
