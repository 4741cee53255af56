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


def _with_a_wrong_size(tmp_path) -> ImageDataset:
    """``_dataset``'s image twice: as it is, then with a mask stated 40000 x 40000 (never decoded)."""
    ds = _dataset(tmp_path)
    huge = rle_segment({"size": [40_000, 40_000], "counts": b"0"})
    wrong = InstanceTarget.from_segments([[1, 1, 9, 9]], [0], [huge], image_size=(80, 40))
    return ImageDataset.for_detection(["cat", "dog"], [*ds.sources, *ds.sources], [*(ds.targets or []), wrong],
                                      task="instance")  # fmt: skip


def test_an_image_whose_masks_have_another_size_is_left_out_not_the_run(tmp_path, caplog) -> None:
    two = _with_a_wrong_size(tmp_path)
    (batch,) = stream_batches(two, Preprocessing(size=80, resize_mode="letterbox"), [0, 1], 2)
    images, targets = instance_targets(two, batch, None, np.random.default_rng(0))
    assert images.shape == (1, 80, 80, 3) and len(targets) == 1 and targets[0]["labels"].tolist() == [0, 1]
    assert batch.bad == [(two.sources[1], "its masks are 40000x40000 but the image is 80x40; expected the image's "
                                          "pixels (imgrec data check lists such masks).")]  # fmt: skip
    assert caplog.text == ""  # the training loop warns, once per run, not each batch


def test_a_tiny_mask_rcnn_run_warns_once_about_the_image_left_out(tmp_path, caplog) -> None:
    """2 epochs of Mask R-CNN (MobileNet, 64 px, untrained) on 2 images; one is left out every epoch.
    About 7 s on 2 shared CPU cores, 5 s of it building the model."""
    from imgrec.models import create_model
    from imgrec.training.detect_loop import fit_detector

    two = _with_a_wrong_size(tmp_path)
    cfg = TrainConfig.from_dict({"model": "maskrcnn_mobilenet_v3_large_fpn", "epochs": 2, "batch_size": 2,
                                 "image_size": 64, "num_threads": 1, "augment": "none",
                                 "warmup_epochs": 0})  # fmt: skip
    model = create_model(cfg.model, two.classes, image_size=64)
    with caplog.at_level("WARNING"):
        history = fit_detector(model, two, None, cfg, run_dir=tmp_path / "run", targets=instance_targets)
    assert len(history.epochs) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("1 of 2 training image(s) could not be read or used and are left out of "
                                  f"every epoch ({two.sources[1]}: its masks are 40000x40000 but the image is "
                                  "80x40")  # fmt: skip


def test_items_left_out_are_warned_about_once_with_the_count_and_a_few_names(caplog) -> None:
    from imgrec.training.epochs import check_trained

    bad = [(f"img{k}.jpg", f"reason {k}.") for k in range(5)]
    with caplog.at_level("WARNING"):
        for epoch in range(3):
            check_trained(4, epoch, 9, bad, "usable image")
    (record,) = caplog.records
    assert record.getMessage() == ("5 of 9 training image(s) could not be read or used and are left out of every "
                                   "epoch (img0.jpg: reason 0; img1.jpg: reason 1; img2.jpg: reason 2; and 2 more). "
                                   "`imgrec data check` lists them.")  # fmt: skip
