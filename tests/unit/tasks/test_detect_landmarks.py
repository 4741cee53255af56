"""Landmarks ride with their box: through threshold, NMS and the geometry, into JSON and drawings."""

from __future__ import annotations

import numpy as np

from imgrec.tasks.detect import DETECT, BoxCandidates, Detection, Detections
from imgrec.tasks.detect_draw import POINT_COLORS, draw_detections
from imgrec.transforms.frame import Geometry


def candidates() -> BoxCandidates:
    boxes = np.array([[10, 10, 50, 50], [12, 12, 50, 50], [60, 60, 90, 90], [0, 0, 5, 5]], np.float32)
    points = np.stack([np.full((5, 2), 20 + k, np.float32) for k in range(4)])
    return BoxCandidates(boxes, np.array([0.8, 0.9, 0.7, 0.1], np.float32), np.zeros(4, np.int64), points)


def test_landmarks_follow_their_box_through_nms_and_the_geometry() -> None:
    g = Geometry(original=(400, 300), scale=(0.5, 0.5), offset=(0.0, 10.0), size=200)  # letterboxed
    (out,) = DETECT.postprocess([candidates()], [g], ["a.jpg"], ["face"], DETECT.options(conf=0.5))
    assert [d.score for d in out.detections] == [np.float32(0.9), np.float32(0.7)]  # 0 suppressed, 3 below conf
    best, other = out.detections
    assert best.box == (24.0, 4.0, 100.0, 80.0)
    assert best.landmarks == ((42.0, 22.0),) * 5  # candidate 1's points: (21 - 0) / 0.5, (21 - 10) / 0.5
    assert other.landmarks == ((44.0, 24.0),) * 5


def test_points_are_clipped_to_the_image_like_boxes() -> None:
    g = Geometry(original=(100, 100), scale=(1.0, 1.0), offset=(0.0, 0.0), size=100)
    np.testing.assert_array_equal(g.points_to_original(np.array([[-5.0, 50.0], [120.0, 101.0]])),
                                  [[0.0, 50.0], [100.0, 100.0]])  # fmt: skip


def test_detectors_without_keypoints_are_unchanged() -> None:
    c = candidates()
    plain = BoxCandidates(c.boxes, c.scores, c.labels)
    g = Geometry(original=(100, 100), scale=(1.0, 1.0), offset=(0.0, 0.0), size=100)
    (out,) = DETECT.postprocess([plain], [g], [None], ["face"], DETECT.options())
    assert all(d.landmarks is None for d in out.detections)
    assert "landmarks" not in out.to_dict()["detections"][0]


def test_json_has_landmarks_only_when_present() -> None:
    with_points = Detection((1.0, 2.0, 3.0, 4.0), "face", 0.5, 0, ((1.234, 2.0),) * 5)
    assert with_points.to_dict()["landmarks"] == [[1.23, 2.0]] * 5
    assert "landmarks" not in Detection((1.0, 2.0, 3.0, 4.0), "face", 0.5, 0).to_dict()


def test_landmarks_are_drawn_as_dots_in_one_colour_per_point() -> None:
    img = np.full((100, 100, 3), 40, np.uint8)
    points = ((30.0, 40.0), (70.0, 40.0), (50.0, 55.0), (35.0, 70.0), (65.0, 70.0))
    dets = Detections((Detection((10.0, 10.0, 90.0, 90.0), "face", 0.9, 0, points),), (100, 100))
    out = draw_detections(img, dets, line_width=1)
    for (x, y), color in zip(points, POINT_COLORS, strict=True):
        assert out[int(y), int(x)].tolist() == list(color)
    assert (out[45:51, 40:60] == 40).all()  # between the points, inside the box: untouched
