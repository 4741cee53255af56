"""SAM prompts -> Instances at the original resolution: agreement with SamPredictor's own masks,
reduced-scale and EXIF-rotated decoding, counts, boxes, the embedding computed once per image,
mask refinement, "everything", and the RLE JSON through pycocotools."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import shared_data_path
from tests.sam_helpers import save_state, save_tiny_sam, tiny_mobile_sam_state

from imgrec.analyzers.segment import Prompt, SamSegmenter, load_sam
from imgrec.errors import InvalidImageError, UsageError

torch = pytest.importorskip("torch")
pytest.importorskip("segment_anything")


@pytest.fixture(scope="module")
def sam(tmp_path_factory) -> SamSegmenter:
    return load_sam(save_tiny_sam(tmp_path_factory.mktemp("sam") / "tiny.pth"), threads=1)


@pytest.fixture(scope="module")
def photo() -> Path:
    return shared_data_path("coco128", "images", "train2017", "000000000009.jpg")  # 640 x 480


def _sam_own(sam: SamSegmenter, array: np.ndarray, point: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """SAM's own SamPredictor on the decoded image (its own resize, transforms, postprocessing):
    the mask at the decoded image's size and the low-resolution logits."""
    from segment_anything import SamPredictor

    p = SamPredictor(sam.model)
    p.set_image(array)
    masks, _, low = p.predict(point_coords=np.array([point]), point_labels=np.array([1]), multimask_output=False)
    return masks[0], low[0]


def test_point_mask_matches_sam_predictor_at_full_resolution(sam, photo) -> None:
    from imgrec.imaging import load_image

    image = load_image(photo)
    sam.set_image(image)  # an array: used as it is (a file is decoded at a reduced scale, see below)
    found = sam.predict(points=[(320, 240)])
    (inst,) = found.instances
    ours = inst.mask()
    theirs, low = _sam_own(sam, image, (320, 240))
    assert np.array_equal(sam.logits[0], low)  # the same prompt, the same embedding: the same logits
    assert ours.shape == theirs.shape == (480, 640) and found.image_size == (640, 480)
    # One bilinear step to the original vs SAM's two (to 1024, then to the image): the untrained
    # model's logits hover around 0, so about 1% of pixels flip; a real SAM's are far from 0.
    assert 0 < inst.area < ours.size and np.mean(ours == theirs) > 0.985
    rows, cols = np.flatnonzero(ours.any(1)), np.flatnonzero(ours.any(0))
    assert inst.box == (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    assert found.path is None and inst.extra == {"prompt": 0} and inst.label == "object"


def test_reduced_scale_jpeg_masks_come_back_at_full_resolution(sam, photo, tmp_path) -> None:
    from imgrec.imaging import decode_sized

    big = Image.open(photo).resize((2048, 1536), Image.BILINEAR)
    big.save(tmp_path / "big.jpg", quality=92)
    image = sam.set_image(tmp_path / "big.jpg")
    assert image.original == (2048, 1536) and image.array.shape == (192, 256, 3)  # decoded at 1/8: SAM needs 256
    (inst,) = sam.predict(points=[(1024, 768)]).instances
    ours = inst.mask()
    assert ours.shape == (1536, 2048)
    decoded, _ = decode_sized((tmp_path / "big.jpg").read_bytes(), min_side=192)
    assert np.array_equal(decoded, image.array)
    small, low = _sam_own(sam, decoded, (128, 96))
    assert np.array_equal(sam.logits[0], low)
    assert small.shape == (192, 256)
    with torch.inference_mode():  # SAM's own postprocessing, asked for the full-resolution size
        full = sam.model.postprocess_masks(torch.from_numpy(low)[None, None], (192, 256), (1536, 2048))
    theirs = full[0, 0].numpy() > sam.model.mask_threshold
    assert np.mean(ours == theirs) > 0.985


def test_exif_rotated_image_gives_the_upright_masks(sam, photo, tmp_path) -> None:
    upright = Image.open(photo)
    upright.save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed after turning the stored pixels 90 degrees clockwise
    upright.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "turned.png", exif=exif.tobytes())
    prompts = [Prompt(points=((100, 300, 1), (500, 50, 0))), Prompt(box=(50, 60, 400, 470))]
    a = sam.segment(prompts, image=tmp_path / "upright.png")
    b = sam.segment(prompts, image=tmp_path / "turned.png")
    assert a.image_size == b.image_size == (640, 480)
    for x, y in zip(a.instances, b.instances, strict=True):
        assert x.box == y.box and np.array_equal(x.mask(), y.mask())


def test_counts_order_and_boxes_inside_the_image(sam, photo) -> None:
    sam.set_image(photo)
    boxes = [(10, 10, 200, 300), (300, 100, 640, 480), (0, 0, 50, 50)]
    found = sam.predict(boxes=boxes)
    assert [i.extra["prompt"] for i in found.instances] == [0, 1, 2] and sam.logits.shape == (3, 64, 64)
    multi = sam.predict(points=[(320, 240), (20, 20)], labels=[1, 0], multimask=True)
    assert len(multi) == 3 and [i.extra["prompt"] for i in multi.instances] == [0, 0, 0]
    scores = [i.score for i in multi.instances]
    assert scores == sorted(scores, reverse=True)
    for inst in (*found.instances, *multi.instances):
        x1, y1, x2, y2 = inst.box
        assert 0 <= x1 <= x2 <= 640 and 0 <= y1 <= y2 <= 480 and inst.mask().shape == (480, 640)


def test_the_embedding_is_computed_once_per_image(sam, photo, tmp_path) -> None:
    calls = []
    hook = sam.model.image_encoder.register_forward_hook(lambda *a: calls.append(1))
    try:
        other = np.asarray(Image.open(photo))[:, ::-1].copy()
        sam.set_image(other)
        for k in range(5):
            sam.predict(points=[(100 + 50 * k, 200)])
        sam.predict(boxes=[(10, 10, 300, 300), (200, 100, 600, 400)])
        sam.everything(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)
        sam.predict(points=[(320, 240)])  # after "everything" reset SAM's predictor: from the cache
        sam.set_image(other.copy())  # the same pixels again
        assert len(calls) == 1
        sam.set_image(other[::-1].copy())  # pixels not seen before
        assert len(calls) == 2
    finally:
        hook.remove()


def test_previous_mask_refines_and_wrong_prompts_are_refused(sam, photo) -> None:
    sam.set_image(photo)
    first = sam.predict(points=[(320, 240)])
    again = sam.predict(points=[(320, 240)], mask_input=sam.logits[0])
    assert len(again) == 1 and again.instances[0].mask().shape == (480, 640)
    assert not np.array_equal(first.instances[0].mask(), again.instances[0].mask())
    with pytest.raises(UsageError, match=r"mask_input .* \(64, 64\) for this model"):
        sam.predict(points=[(320, 240)], mask_input=np.zeros((256, 256)))
    with pytest.raises(UsageError, match="Point \\(700, 10\\) is outside the 640x480 image") as err:
        sam.predict(points=[(700, 10)])
    assert err.value.code == "prompt_outside_image"
    with pytest.raises(UsageError, match="Box 10,10,900,300 is outside"):
        sam.predict(box=(10, 10, 900, 300))
    with pytest.raises(UsageError, match="one prompt per box"):
        sam.predict(points=[(1, 1)], boxes=[(0, 0, 5, 5)])


def test_an_image_too_thin_for_the_input_is_refused_not_a_crash(sam) -> None:
    sam.set_image(np.zeros((1, 511, 3), np.uint8))  # short side 0.5 px in the 256 input: rounds to 1
    buf = io.BytesIO()
    Image.new("RGB", (3000, 1)).save(buf, "PNG")
    for item in (np.zeros((1, 600, 3), np.uint8), buf.getvalue()):
        with pytest.raises(InvalidImageError, match=r"too thin for SAM.*up to 511:1"):
            sam.set_image(item)


def test_everything_gives_instances_at_original_resolution(sam, photo, tmp_path) -> None:
    Image.open(photo).resize((1280, 960)).save(tmp_path / "big.jpg", quality=90)
    found = sam.everything(tmp_path / "big.jpg", points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    assert sam.image is not None and sam.image.array.shape[1] < 1280  # decoded at a reduced scale
    assert len(found) >= 1 and found.image_size == (1280, 960)
    for inst in found.instances:
        assert inst.mask().shape == (960, 1280) and {"stability_score", "point"} <= set(inst.extra)
    scores = [i.score for i in found.instances]
    assert scores == sorted(scores, reverse=True)
    with pytest.raises(UsageError, match="Unknown option"):
        sam.everything(points_per_sid=4)


def test_rle_json_round_trips_through_pycocotools(sam, photo) -> None:
    from pycocotools import mask as mask_utils

    sam.set_image(photo)
    found = sam.predict(boxes=[(10, 10, 200, 300), (300, 100, 640, 480)])
    data = json.loads(json.dumps(found.to_dict()))
    assert data["image_size"] == [640, 480]
    for inst, row in zip(found.instances, data["instances"], strict=True):
        rle = {"size": row["mask"]["size"], "counts": row["mask"]["counts"].encode()}
        decoded = mask_utils.decode(rle).astype(bool)
        assert np.array_equal(decoded, inst.mask()) and row["area"] == int(decoded.sum())
        assert row["prompt"] == inst.extra["prompt"] and row["score"] == round(inst.score, 6)


def test_drawing_and_bytes_input(sam, photo) -> None:
    from imgrec.imaging import load_image
    from imgrec.tasks.segment_draw import draw_instances

    found = sam.segment([Prompt(points=((320, 240, 1),))], image=photo.read_bytes())
    assert found.path is None and found.image_size == (640, 480)
    drawn = draw_instances(load_image(photo), found)
    assert drawn.shape == (480, 640, 3) and not np.array_equal(drawn, load_image(photo))
    buf = io.BytesIO()
    Image.fromarray(drawn).save(buf, "PNG")
    assert buf.tell() > 0


def test_a_mobilesam_checkpoint_segments_like_sam_predictor(photo, tmp_path) -> None:
    from imgrec.imaging import load_image

    sam = load_sam(save_state(tiny_mobile_sam_state(), tmp_path / "mobile_sam.pt"), threads=1)
    assert sam.name == "sam-tinyvit" and sam.side == 1024
    image = load_image(photo)
    sam.set_image(image)
    (inst,) = sam.predict(points=[(320, 240)]).instances
    theirs, low = _sam_own(sam, image, (320, 240))
    assert np.array_equal(sam.logits[0], low) and inst.mask().shape == theirs.shape == (480, 640)
    found = sam.everything(photo, points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    assert len(found) >= 1 and all(i.mask().shape == (480, 640) for i in found.instances)


def test_boxes_come_from_a_detector_only() -> None:
    from types import SimpleNamespace

    from imgrec.analyzers.segment.detect import check_detector

    classifier = SimpleNamespace(name="cnn-small-1", task=SimpleNamespace(name="classify"))
    with pytest.raises(UsageError, match="Boxes come from a detection run; cnn-small-1 is a classify model"):
        check_detector(classifier)


def test_an_instance_segmenters_objects_are_box_prompts_too() -> None:
    """A Mask R-CNN run can give SAM its boxes (SAM's masks are often finer than its 28 x 28 ones)."""
    from types import SimpleNamespace

    from imgrec.analyzers.segment.detect import check_detector, detection_prompts
    from imgrec.data.rle import encode_rle
    from imgrec.tasks.instance import Instance, Instances

    check_detector(SimpleNamespace(name="mrcnn", task=SimpleNamespace(name="instance")))
    rle = encode_rle(np.zeros((4, 4), bool))
    objects = (Instance((1.0, 1.0, 3.0, 3.0), "cat", 0.9, 0, rle), Instance((2.0, 2.0, 2.0, 3.0), "dog", 0.5, 1, rle))
    found = Instances(objects, (4, 4))
    (prompt,) = detection_prompts(found)  # the empty box is left out
    assert prompt.box == (1.0, 1.0, 3.0, 3.0) and prompt.label == "cat" and prompt.extra["detector_score"] == 0.9
