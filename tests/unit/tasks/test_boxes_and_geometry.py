"""Box arithmetic, NMS, and geometry records that map boxes back to the original image exactly."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from imgrec.tasks.boxes import batched_nms, box_iou, cxcywh_to_xyxy, nms, xyxy_to_xywh
from imgrec.transforms.preprocess import Preprocessing

RNG = np.random.default_rng(0)


def _random_boxes(n: int) -> np.ndarray:
    xy = RNG.uniform(0, 100, (n, 2))
    return np.concatenate([xy, xy + RNG.uniform(1, 40, (n, 2))], axis=1).astype(np.float32)


def test_iou_matches_a_direct_computation():
    a, b = _random_boxes(7), _random_boxes(5)
    got = box_iou(a, b)
    for i in range(7):
        for j in range(5):
            w = max(0.0, min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0]))
            h = max(0.0, min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1]))
            union = np.prod(a[i, 2:] - a[i, :2]) + np.prod(b[j, 2:] - b[j, :2]) - w * h
            assert got[i, j] == pytest.approx(w * h / union, abs=1e-5)


def test_nms_keeps_no_pair_above_the_threshold_and_drops_only_overlapped_boxes():
    boxes, scores = _random_boxes(200), RNG.uniform(0, 1, 200)
    keep = nms(boxes, scores, 0.5)
    kept_iou = box_iou(boxes[keep], boxes[keep])
    np.fill_diagonal(kept_iou, 0)
    assert kept_iou.max() <= 0.5
    dropped = np.setdiff1d(np.arange(200), keep)
    overlaps = box_iou(boxes[dropped], boxes[keep])
    better = scores[keep][None, :] >= scores[dropped][:, None]
    assert ((overlaps > 0.5) & better).any(axis=1).all()  # each dropped box had a better, overlapping kept one


def test_batched_nms_never_suppresses_across_classes():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    assert sorted(batched_nms(boxes, np.array([0.9, 0.8]), np.array([0, 1]), 0.5).tolist()) == [0, 1]
    assert batched_nms(boxes, np.array([0.9, 0.8]), np.array([1, 1]), 0.5).tolist() == [0]


def test_format_conversions_round_trip():
    b = _random_boxes(4)
    xywh = xyxy_to_xywh(b)
    centre = np.concatenate([xywh[:, :2] + xywh[:, 2:] / 2, xywh[:, 2:]], axis=1)
    np.testing.assert_allclose(cxcywh_to_xyxy(centre), b, atol=1e-4)


@pytest.mark.parametrize("mode", ["crop", "letterbox", "stretch"])
def test_geometry_maps_the_image_corners_onto_the_input(mode):
    prep = Preprocessing(size=64, resize_mode=mode, pad_anchor="topleft" if mode == "letterbox" else "center")
    img = np.zeros((90, 160, 3), np.uint8)
    arr, g = prep.prepare_framed(img)
    assert arr.shape == (64, 64, 3) and g.original == (160, 90)
    corners = g.to_input(np.array([[0, 0, 160, 90]]))[0]
    if mode == "stretch":
        np.testing.assert_allclose(corners, [0, 0, 64, 64], atol=1e-4)
    elif mode == "letterbox":
        np.testing.assert_allclose(corners, [0, 0, 64, 36], atol=1e-4)
    else:  # crop: height fills, width overflows evenly
        assert corners[1] == pytest.approx(0) and corners[3] == pytest.approx(64)
        assert corners[0] < 0 and corners[2] > 64
    b = np.array([[10.0, 20.0, 100.0, 80.0]])
    np.testing.assert_allclose(g.to_original(g.to_input(b)), b, atol=1e-3)


def test_a_letterboxed_patch_lands_where_the_geometry_says():
    img = np.zeros((100, 200, 3), np.uint8)
    img[40:60, 120:160] = 255
    prep = Preprocessing(size=100, resize_mode="letterbox", interpolation="nearest")
    arr, g = prep.prepare_framed(img)
    x1, y1, x2, y2 = g.to_input(np.array([[120, 40, 160, 60]]))[0]
    assert arr[int(y1) + 1 : int(y2) - 1, int(x1) + 1 : int(x2) - 1].min() == 255
    assert arr[: int(y1) - 1].max() < 255  # above the patch: image or padding, never the patch


def test_boxes_map_to_full_resolution_when_a_jpeg_is_decoded_at_reduced_scale():
    buf = io.BytesIO()
    Image.new("RGB", (1600, 1200), (90, 90, 90)).save(buf, "JPEG")
    prep = Preprocessing(size=100, resize_mode="letterbox")  # 100x75, centred: 12 px of padding on top
    arr, g = prep.decode_framed(buf.getvalue())
    assert g.original == (1600, 1200)  # not the 1/8-scale size the decoder used
    np.testing.assert_allclose(g.to_original(np.array([[0, 12, 100, 87]])), [[0, 0, 1600, 1200]], atol=0.5)
    assert arr[:12].mean() == 114 and abs(arr[13:86].mean() - 90) < 3


@pytest.mark.parametrize("mode", ["crop", "letterbox", "stretch"])
def test_a_non_square_input_is_prepared_at_its_own_shape_in_one_resize(mode):
    """aspect = 256 / 144 (MediaPipe's landscape file): the image goes straight to 144 x 256, and the
    geometry still maps the square the input stands for (what masks and boxes are decoded in)."""
    prep = Preprocessing(size=256, resize_mode=mode, aspect=256 / 144, interpolation="cv2-linear")
    img = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    arr, g = prep.prepare_framed(img)
    assert arr.shape == (144, 256, 3) == (*prep.input_hw, 3) and g.size == 256
    if mode == "stretch":  # exactly one cv2 resize (not a square one, then a second to 144 x 256)
        np.testing.assert_array_equal(arr, cv2.resize(img, (256, 144), interpolation=cv2.INTER_LINEAR))
        assert g.scale == (256 / 400, 256 / 300) and g.offset == (0.0, 0.0)
    to_square = np.array([256 / 256, 256 / 144, 256 / 256, 256 / 144])
    corners = g.to_input(np.array([[0, 0, 400, 300]]))[0] / to_square  # in the 144 x 256 array's pixels
    if mode == "letterbox":  # 300 x 400 in 144 x 256: height fills (192 x 144), centred
        np.testing.assert_allclose(corners, [32, 0, 224, 144], atol=1e-3)
        assert arr[:, :31].max() == 114 and arr[:, 225:].max() == 114
    elif mode == "crop":  # width fills (256 x 192), height cut evenly
        np.testing.assert_allclose(corners, [0, -24, 256, 168], atol=1e-3)
    b = np.array([[10.0, 20.0, 100.0, 80.0]])
    np.testing.assert_allclose(g.to_original(g.to_input(b)), b, atol=1e-3)
    portrait = Preprocessing(size=256, resize_mode=mode, aspect=144 / 256)
    assert portrait.prepare(img).shape == (256, 144, 3) and portrait.prepare_batch([]).shape == (0, 256, 144, 3)
