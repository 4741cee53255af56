"""The segment and instance tasks: postprocess from logits / index maps / sigmoid channels, geometry,
RLE JSON (checked with pycocotools), PNG, drawing and cut-outs; a real MediaPipe model end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from tests.conftest import shared_data_path
from tests.segmentation_data import coco128, polygon_masks

from imgrec.errors import UsageError
from imgrec.imaging.masks import decode_mask
from imgrec.tasks import (
    INSTANCE,
    SEGMENT,
    InstanceCandidates,
    SegmentOutput,
    cutout,
    draw_instances,
    draw_segmentation,
    get_task,
)
from imgrec.transforms import Preprocessing
from imgrec.transforms.frame import Geometry

CLASSES = ["background", "a", "b"]


@pytest.fixture(scope="module")
def real_mask() -> np.ndarray:
    _, doc = coco128()
    mask = polygon_masks(doc, 3)[2][1]
    return np.where(mask > 0, mask % 2 + 1, 0).astype(np.uint8)  # two classes + background, real outlines


def _one_hot_logits(mask_in: np.ndarray, n: int = 3) -> np.ndarray:
    return (np.eye(n, dtype=np.float32)[mask_in].transpose(2, 0, 1) * 8.0).astype(np.float32)


def test_registered() -> None:
    assert get_task("segment") is SEGMENT and get_task("segmentation") is SEGMENT and get_task("instance") is INSTANCE


@pytest.mark.parametrize("mode", ["letterbox", "stretch"])
def test_logits_index_and_geometry_round_trip(real_mask: np.ndarray, mode: str) -> None:
    h, w = real_mask.shape
    prep = Preprocessing(size=320, resize_mode=mode)
    _, g = prep.prepare_framed(np.zeros((h, w, 3), np.uint8))
    mask_in = g.mask_to_input(real_mask, fill=0)
    opts = SEGMENT.options()
    (from_logits,) = SEGMENT.postprocess([_one_hot_logits(mask_in)], [g], ["x"], CLASSES, opts)
    (from_index,) = SEGMENT.postprocess([mask_in.astype(np.int64)], [g], ["x"], CLASSES, opts)
    assert from_logits.mask.shape == (h, w) == from_index.mask.shape
    assert (from_index.mask == real_mask).mean() > 0.98  # down to 320 px and back: edges only
    assert (from_logits.mask == real_mask).mean() > 0.98
    assert from_logits.probabilities.shape == (3, 320, 320) and from_index.probabilities is None
    assert set(from_logits.scores) <= set(CLASSES)


def test_lower_resolution_maps_and_class_filter(real_mask: np.ndarray) -> None:
    h, w = real_mask.shape
    _, g = Preprocessing(size=256, resize_mode="letterbox").prepare_framed(np.zeros((h, w, 3), np.uint8))
    quarter = g.mask_to_input(real_mask, fill=0)[2::4, 2::4]  # a stride-4 output over the input
    (seg,) = SEGMENT.postprocess([_one_hot_logits(quarter)], [g], [None], CLASSES, SEGMENT.options(classes=["a"]))
    assert set(np.unique(seg.mask).tolist()) == {0, 1}
    assert ((seg.mask == 1) == (real_mask == 1)).mean() > 0.97


def test_sigmoid_channel_threshold() -> None:
    g = Geometry(original=(8, 4), scale=(0.5, 1.0), offset=(0.0, 0.0), size=4)
    p = np.zeros((1, 4, 4), np.float32)
    p[0, :, 2:] = 0.7
    (seg,) = SEGMENT.postprocess([p], [g], [None], ["background", "person"], SEGMENT.options())
    assert seg.mask[:, :3].max() == 0 and seg.mask[:, 5:].min() == 1
    np.testing.assert_array_equal(seg.probabilities, np.stack([1.0 - p[0], p[0]]))
    assert "scores" not in vars(seg)  # computed on first read, not for every mask
    assert seg.scores == pytest.approx({"background": 1.0, "person": 0.7})
    (strict,) = SEGMENT.postprocess([p], [g], [None], ["background", "person"], SEGMENT.options(threshold=0.8))
    assert strict.mask.max() == 0
    logits = SegmentOutput(np.log(p / (1 - p + 1e-9) + 1e-9), kind="logits")
    (again,) = SEGMENT.postprocess([logits], [g], [None], ["background", "person"], SEGMENT.options())
    assert np.array_equal(again.mask, seg.mask)


def test_bad_raw_outputs_and_options_say_what_is_wrong() -> None:
    g = Geometry(original=(4, 4), scale=(1.0, 1.0), offset=(0.0, 0.0), size=4)
    with pytest.raises(UsageError, match="C = 3 classes"):
        SEGMENT.postprocess([np.zeros((5, 4, 4), np.float32)], [g], [None], CLASSES, SEGMENT.options())
    with pytest.raises(UsageError, match=r"values 7\.\.7"):
        SEGMENT.postprocess([np.full((4, 4), 7, np.int64)], [g], [None], CLASSES, SEGMENT.options())
    with pytest.raises(UsageError, match="do not apply"):
        SEGMENT.options(top_k=3)
    with pytest.raises(UsageError, match="Unknown class"):
        SEGMENT.postprocess([np.zeros((4, 4), np.int64)], [g], [None], CLASSES, SEGMENT.options(classes=["zebra"]))


def test_json_rle_and_png_round_trip(real_mask: np.ndarray) -> None:
    h, w = real_mask.shape
    g = Geometry(original=(w, h), scale=(1.0, 1.0), offset=(0.0, 0.0), size=max(h, w))
    padded = np.zeros((max(h, w), max(h, w)), np.int64)
    padded[:h, :w] = real_mask
    (seg,) = SEGMENT.postprocess([padded], [g], ["p.jpg"], CLASSES, SEGMENT.options())
    assert np.array_equal(seg.mask, real_mask)
    doc = json.loads(json.dumps(seg.to_dict()))
    assert [s["label"] for s in doc["segments"]] == ["a", "b"] and doc["image_size"] == [w, h]
    rebuilt = np.zeros_like(real_mask)
    for s in doc["segments"]:
        m = mask_utils.decode({"size": s["rle"]["size"], "counts": s["rle"]["counts"].encode()})
        assert int(m.sum()) == s["area"]
        rebuilt[m.astype(bool)] = s["class_id"]
    assert np.array_equal(rebuilt, real_mask)
    assert np.array_equal(decode_mask(seg.to_png()).values, real_mask)


def test_overlay_and_cutout(real_mask: np.ndarray) -> None:
    h, w = real_mask.shape
    img = np.full((h, w, 3), 200, np.uint8)
    g = Geometry(original=(w, h), scale=(1.0, 1.0), offset=(0.0, 0.0), size=max(h, w))
    padded = np.zeros((max(h, w), max(h, w)), np.uint8)
    padded[:h, :w] = real_mask
    half = _one_hot_logits(padded[::2, ::2])  # a stride-2 output: bilinear upsampling softens its edges
    (seg,) = SEGMENT.postprocess([half], [g], [None], CLASSES, SEGMENT.options())
    drawn = draw_segmentation(img, seg)
    assert (drawn[seg.mask == 0] == 200).all() and (drawn[seg.mask == 1] != 200).any(axis=-1).all()
    soft = cutout(img, seg, classes=["a"])
    assert soft.shape == (h, w, 4) and (soft[..., :3] == 200).all()
    alpha = soft[..., 3]
    assert (alpha[real_mask == 1] > 128).mean() > 0.97 and (alpha[real_mask != 1] < 128).mean() > 0.97
    assert len(np.unique(alpha)) > 2  # soft edges from the probabilities
    hard = cutout(img, seg, classes=["a"], feather=0)[..., 3]
    assert set(np.unique(hard).tolist()) == {0, 255}
    with pytest.raises(UsageError, match="pass the image the prediction was made on"):
        cutout(img[:-1], seg)
    for feather in (float("nan"), -1, 10_000):  # NaN was a hard edge; 10000 crashed OpenCV's blur
        with pytest.raises(UsageError, match="feather must be from 0 to 100 pixels"):
            cutout(img, seg, feather=feather)


def test_instance_postprocess_nms_and_rle(real_mask: np.ndarray) -> None:
    h, w = real_mask.shape
    _, g = Preprocessing(size=256, resize_mode="letterbox").prepare_framed(np.zeros((h, w, 3), np.uint8))
    obj = (g.mask_to_input(real_mask, fill=0) == 1).astype(np.float32)
    ys, xs = np.nonzero(obj)
    box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    cands = InstanceCandidates(np.array([box, box, [0, 0, 5, 5]], np.float32), np.array([0.9, 0.8, 0.1]),
                               np.array([0, 0, 1]), np.stack([obj, obj, obj]))  # fmt: skip
    (found,) = INSTANCE.postprocess([cands], [g], ["x"], ["a", "b"], INSTANCE.options())
    assert len(found) == 1  # the duplicate is suppressed, the low score dropped
    inst = found.instances[0]
    m = inst.mask()
    assert m.shape == (h, w) and inst.area == int(m.sum())
    iou = (m & (real_mask == 1)).sum() / (m | (real_mask == 1)).sum()
    assert iou > 0.9
    x1, _, _, y2 = inst.box
    ys, xs = np.nonzero(real_mask == 1)
    assert abs(x1 - xs.min()) < 4 and abs(y2 - (ys.max() + 1)) < 4
    doc = json.loads(json.dumps(found.to_dict()))
    rle = doc["instances"][0]["mask"]
    assert np.array_equal(mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()}).astype(bool), m)
    drawn = draw_instances(np.zeros((h, w, 3), np.uint8), found)
    assert drawn[m].any(axis=-1).all()


def test_instance_masks_over_their_boxes_paste_into_the_original(real_mask: np.ndarray) -> None:
    """Mask R-CNN's frame: a 28 x 28 map over each box, pasted into the box's original pixels
    (letterboxed input, non-square photo): the real object comes back with IoU > 0.85."""
    import cv2

    h, w = real_mask.shape
    _, g = Preprocessing(size=256, resize_mode="letterbox").prepare_framed(np.zeros((h, w, 3), np.uint8))
    ys, xs = np.nonzero(real_mask == 1)
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)
    crop = (real_mask[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])] == 1).astype(np.float32)
    small = cv2.resize(crop, (28, 28), interpolation=cv2.INTER_AREA)
    in_box = g.to_input(box[None])
    cands = InstanceCandidates(in_box, np.array([0.9]), np.array([0]), small[None], mask_frame="box")
    (found,) = INSTANCE.postprocess([cands], [g], ["x"], ["a"], INSTANCE.options())
    m = found.instances[0].mask()
    assert m.shape == (h, w) and not m[:, : int(box[0])].any() and not m[: int(box[1])].any()
    assert (m & (real_mask == 1)).sum() / (m | (real_mask == 1)).sum() > 0.85


def test_real_selfie_model_cuts_out_a_person() -> None:
    ort = pytest.importorskip("onnxruntime")
    import cv2

    from imgrec.imaging import load_image

    session = ort.InferenceSession(
        str(shared_data_path("models", "segmentation", "selfie_segmentation_landscape.onnx")),
        providers=["CPUExecutionProvider"],
    )
    img = load_image(shared_data_path("test-images", "grace_hopper.bmp"))
    x, g = Preprocessing(size=256, resize_mode="stretch").prepare_framed(img)
    inp = cv2.resize(x, (256, 144), interpolation=cv2.INTER_AREA).astype(np.float32)[None] / 255
    out = session.run(None, {"input_1": inp})[0][0].transpose(2, 0, 1)  # (1, 144, 256) over the square input
    (seg,) = SEGMENT.postprocess([out], [g], ["grace_hopper.bmp"], ["background", "person"], SEGMENT.options())
    h, w = img.shape[:2]
    assert seg.mask.shape == (h, w)
    assert 0.4 < seg.mask.mean() < 0.75  # a portrait: the person fills about half the frame
    assert seg.mask[int(0.3 * h), w // 2] == 1 and seg.mask[int(0.9 * h), w // 2] == 1  # face, uniform
    assert seg.mask[: h // 10, : w // 10].mean() < 0.05  # the top-left corner is backdrop
    alpha = cutout(img, seg)[..., 3]
    assert ((alpha > 0) & (alpha < 255)).sum() > 0.005 * h * w  # a soft edge around her
