"""Mask R-CNN's training targets: every object's mask in input pixels, moved with the pixels and
its box by the same augmentation; crowd regions left out; mosaic refused; the data/model pair checked."""

from __future__ import annotations

import numpy as np
import pytest

from imgrec.config import TrainConfig
from imgrec.data import ImageDataset
from imgrec.data.masks import InstanceTarget
from imgrec.data.rle import encode_rle, rle_segment
from imgrec.data.stream import stream_batches
from imgrec.errors import ConfigError
from imgrec.transforms.augment import AugmentConfig, Augmenter
from imgrec.transforms.preprocess import Preprocessing

pytest.importorskip("torch")
from imgrec.training.instance_api import build, check_pair, id_mask, instance_targets


def _dataset(tmp_path) -> ImageDataset:
    """One 80 x 40 JPEG with a square object (id 1), a small object inside a larger one, a crowd region."""
    from PIL import Image

    Image.fromarray(np.full((40, 80, 3), 120, np.uint8)).save(tmp_path / "a.jpg")
    big, small, crowd = (np.zeros((40, 80), bool) for _ in range(3))
    big[5:35, 10:50], small[15:25, 20:30], crowd[0:10, 60:80] = True, True, True
    segs = [rle_segment(encode_rle(m)) for m in (big, small, crowd)]
    t = InstanceTarget.from_segments([[10, 5, 50, 35], [20, 15, 30, 25], [60, 0, 80, 10]], [0, 1, 1], segs,
                                     crowd=[False, False, True], image_size=(80, 40))  # fmt: skip
    return ImageDataset.for_detection(["cat", "dog"], [str(tmp_path / "a.jpg")], [t], task="instance")


def test_masks_land_with_their_boxes_in_input_pixels(tmp_path) -> None:
    ds = _dataset(tmp_path)
    prep = Preprocessing(size=80, resize_mode="letterbox")
    (batch,) = stream_batches(ds, prep, [0], 1)
    images, (t,) = instance_targets(ds, batch, None, np.random.default_rng(0))
    assert images.shape == (1, 80, 80, 3) and t["labels"].tolist() == [0, 1]  # the crowd region is left out
    assert t["masks"].shape == (2, 80, 80) and t["masks"].dtype == np.uint8
    big, small = t["masks"].astype(bool)
    assert small.sum() == 100 and big.sum() == 30 * 40 - 100  # the small object keeps its overlap
    for box, mask in zip(t["boxes"], t["masks"], strict=True):
        ys, xs = np.nonzero(mask)
        assert (xs.min() >= box[0] and xs.max() < box[2] and ys.min() >= box[1] and ys.max() < box[3])


def test_a_flip_moves_masks_and_boxes_together(tmp_path) -> None:
    ds = _dataset(tmp_path)
    (batch,) = stream_batches(ds, Preprocessing(size=80, resize_mode="letterbox"), [0], 1)
    plain = instance_targets(ds, batch, None, np.random.default_rng(0))[1][0]
    flipped = instance_targets(ds, batch, Augmenter(AugmentConfig(flip=1.0)), np.random.default_rng(0))[1][0]
    np.testing.assert_array_equal(flipped["masks"], plain["masks"][:, :, ::-1])
    np.testing.assert_allclose(flipped["boxes"][:, [2, 0]], 80 - plain["boxes"][:, [0, 2]], atol=1e-4)


def test_an_object_without_a_segment_fills_its_box() -> None:
    t = InstanceTarget.from_segments([[1, 1, 4, 3]], [0], [None], image_size=(6, 5))
    assert id_mask(t, np.array([0]), (6, 5)).sum() == 6  # 3 x 2 pixels, id 1


def test_mosaic_is_refused_and_pairs_are_checked(tmp_path) -> None:
    ds = _dataset(tmp_path)
    with pytest.raises(ConfigError, match="mosaic"):
        build(TrainConfig(model="maskrcnn_mobilenet_v3_large_fpn", mosaic=0.5), ds)
    with pytest.raises(ConfigError, match="instance segmenter"):
        check_pair(ds, "fasterrcnn_mobilenet_v3_large_fpn")
    boxes = ImageDataset.for_detection(["cat", "dog"], list(ds.sources), list(ds.targets or []))
    with pytest.raises(ConfigError, match="no boxes and masks"):
        check_pair(boxes, "maskrcnn_mobilenet_v3_large_fpn")


def test_an_image_whose_masks_have_another_size_is_left_out_not_the_run(tmp_path, caplog) -> None:
    ds = _dataset(tmp_path)
    huge = rle_segment({"size": [40_000, 40_000], "counts": b"0"})  # a stated size never decoded
    wrong = InstanceTarget.from_segments([[1, 1, 9, 9]], [0], [huge], image_size=(80, 40))
    two = ImageDataset.for_detection(["cat", "dog"], [*ds.sources, *ds.sources], [*(ds.targets or []), wrong],
                                     task="instance")  # fmt: skip
    (batch,) = stream_batches(two, Preprocessing(size=80, resize_mode="letterbox"), [0, 1], 2)
    images, targets = instance_targets(two, batch, None, np.random.default_rng(0))
    assert images.shape == (1, 80, 80, 3) and len(targets) == 1 and targets[0]["labels"].tolist() == [0, 1]
    assert "a.jpg left out of this batch: its masks are 40000x40000 but the image is 80x40" in caplog.text
