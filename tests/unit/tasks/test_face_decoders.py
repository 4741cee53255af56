"""The yunet and ultraface layouts: synthetic outputs decode where the formats say."""

from __future__ import annotations

import numpy as np
import pytest

from imgrec.errors import ModelFileError
from imgrec.tasks.decoders import decode

SIZE = 640


def yunet_outputs(hit: tuple[int, int, int] | None = None) -> list[np.ndarray]:
    """The 12 outputs of a 640 px YuNet, all scores 0 except one cell (stride, row, col)."""
    outs: dict[str, list[np.ndarray]] = {"cls": [], "obj": [], "bbox": [], "kps": []}
    for s in (8, 16, 32):
        n = SIZE // s
        cls, obj = np.zeros((1, n * n, 1), np.float32), np.zeros((1, n * n, 1), np.float32)
        bbox, kps = np.zeros((1, n * n, 4), np.float32), np.zeros((1, n * n, 10), np.float32)
        if hit is not None and hit[0] == s:
            i = hit[1] * n + hit[2]
            cls[0, i], obj[0, i] = 0.81, 1.0
            bbox[0, i] = [0.5, 0.25, np.log(4.0), np.log(2.0)]
            kps[0, i] = [0.0, 0.0, 1.0, 0.0, 0.5, 0.5, 0.0, 1.0, 1.0, 1.0]
        for k, v in zip(outs, (cls, obj, bbox, kps), strict=True):
            outs[k].append(v)
    return [a for k in ("cls", "obj", "bbox", "kps") for a in outs[k]]


def test_yunet_decodes_box_score_and_landmarks_of_a_cell() -> None:
    (c,) = decode("yunet", yunet_outputs((16, 3, 5)), SIZE, 1)
    assert len(c.boxes) == 1 and c.scores[0] == pytest.approx(0.9)  # sqrt(0.81 * 1)
    cx, cy = (5 + 0.5) * 16, (3 + 0.25) * 16
    np.testing.assert_allclose(c.boxes[0], [cx - 32, cy - 16, cx + 32, cy + 16], atol=1e-4)
    np.testing.assert_allclose(c.keypoints[0], np.array([[5, 3], [6, 3], [5.5, 3.5], [5, 4], [6, 4]]) * 16)


def test_yunet_output_order_of_the_strides_does_not_matter() -> None:
    outs = yunet_outputs((32, 19, 0))
    shuffled = [outs[i] for i in (2, 1, 0, 5, 4, 3, 8, 7, 6, 11, 10, 9)]  # coarse grid first in each kind
    (a,), (b,) = decode("yunet", outs, SIZE, 1), decode("yunet", shuffled, SIZE, 1)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert a.boxes[0, 1] == pytest.approx(19.25 * 32 - 32)


def test_yunet_without_faces_is_empty_and_wrong_files_are_refused() -> None:
    (c,) = decode("yunet", yunet_outputs(), SIZE, 1)
    assert c.boxes.shape == (0, 4) and c.keypoints.shape == (0, 5, 2)
    with pytest.raises(ModelFileError, match="12 outputs"):
        decode("yunet", yunet_outputs()[:4], SIZE, 1)
    with pytest.raises(ModelFileError, match="anchors"):
        decode("yunet", yunet_outputs(), 320, 1)


def test_ultraface_is_the_ssd_layout_with_a_background_column() -> None:
    scores = np.array([[[0.1, 0.9], [0.99, 0.01]]], np.float32)
    boxes = np.array([[[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 1.0, 1.0]]], np.float32)
    (c,) = decode("ultraface", [scores, boxes], 320, 1)
    np.testing.assert_allclose(c.boxes[0], [32, 64, 96, 128], atol=1e-4)
    assert c.scores.tolist() == pytest.approx([0.9, 0.01]) and c.keypoints is None
