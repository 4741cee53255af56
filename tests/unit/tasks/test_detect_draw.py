"""tasks.detect_draw.draw_detections: Detections (and ground truth) drawn on their image."""

from __future__ import annotations

import numpy as np
import pytest

from imgrec.errors import UsageError
from imgrec.imaging.draw import palette_color
from imgrec.tasks.detect import Detection, Detections
from imgrec.tasks.detect_draw import GT_COLOR, draw_detections


def scene() -> tuple[np.ndarray, Detections]:
    img = np.full((200, 300, 3), 60, np.uint8)
    dets = Detections((Detection((50.0, 60.0, 150.0, 160.0), "dog", 0.87, 16),), (300, 200))
    return img, dets


def test_box_edge_changes_and_the_rest_does_not() -> None:
    img, dets = scene()
    out = draw_detections(img, dets, line_width=2)
    changed = (out != img).any(axis=2)
    assert out[110, 50].tolist() == list(palette_color(16))
    assert changed[60:160, 50:52].all() and not changed[62:158, 52:148].any()
    assert changed[40:60, 50:90].any()  # "dog 0.87" above the box
    assert not changed[:40].any() and not changed[161:].any() and not changed[:, 151:].any()


def test_ground_truth_is_drawn_in_green_under_the_detections() -> None:
    img, dets = scene()
    out = draw_detections(img, dets, gt=(np.array([[200, 20, 280, 100]]), ["cat"]), line_width=2)
    assert out[60, 200].tolist() == list(GT_COLOR)
    assert (out[:20, 200:260] != 60).any()  # its caption
    only_boxes = draw_detections(img, Detections((), (300, 200)), gt=np.array([[200, 20, 280, 100]]))
    assert only_boxes[60, 200].tolist() == list(GT_COLOR) and (only_boxes[:20] == 60).all()


def test_ground_truth_as_detections_and_no_detections() -> None:
    img, dets = scene()
    out = draw_detections(img, Detections((), (300, 200)), gt=dets)
    assert out[110, 50].tolist() == list(GT_COLOR)
    assert np.array_equal(draw_detections(img, Detections((), (300, 200))), img)


def test_not_an_rgb_image_is_refused() -> None:
    with pytest.raises(UsageError, match="RGB uint8"):
        draw_detections(np.zeros((10, 10), np.uint8), Detections())
