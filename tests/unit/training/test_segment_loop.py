"""The segmentation loop's pieces (masks placed and augmented with the pixels, the losses) and a
short run on real COCO128 masks that resumes and extends like every other run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.segmentation_data import write_few_class_masks

from imgrec.config import DataConfig, TrainConfig
from imgrec.data import load_dataset
from imgrec.data.stream import stream_batches
from imgrec.transforms.augment import create_augmenter
from imgrec.transforms.preprocess import Preprocessing

torch = pytest.importorskip("torch")
pytest.importorskip("segmentation_models_pytorch")
from imgrec.training.segment_loop import segment_losses, soft_dice_loss, training_masks  # noqa: E402


@pytest.fixture(scope="module")
def masks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_few_class_masks(tmp_path_factory.mktemp("seg") / "m", ("person", "car"), n=8)


def test_masks_land_on_their_pixels_padding_is_ignored_and_augmentation_moves_both(masks_dir: Path) -> None:
    ds = load_dataset(masks_dir)
    prep = Preprocessing(size=64, resize_mode="letterbox", interpolation="nearest")
    batch = next(iter(stream_batches(ds, prep, np.arange(4), 4, masks=True)))
    images, masks = training_masks(ds, batch, None, np.random.default_rng(0), 3)
    assert masks.shape == (4, 64, 64) and masks.dtype == np.int64
    for g, m in zip(batch.geometries, masks, strict=True):
        ox, oy = g.offset
        if oy >= 1:  # letterboxed top and bottom: the bands are padding
            assert (m[0] == 255).all() and (m[-1] == 255).all()
        if ox >= 1:
            assert (m[:, 0] == 255).all() and (m[:, -1] == 255).all()
        assert set(np.unique(m).tolist()) <= {0, 1, 2, 255} and (m < 3).mean() > 0.5
    flip = create_augmenter("none", flip=1.0)
    f_images, f_masks = training_masks(ds, batch, flip, np.random.default_rng(0), 3)
    np.testing.assert_array_equal(f_images, images[:, :, ::-1])
    np.testing.assert_array_equal(f_masks, masks[:, :, ::-1])
    _, fewer = training_masks(ds, batch, None, np.random.default_rng(0), 2)  # car (2) is no class of a 2-class model
    assert not (fewer == 2).any() and ((masks == 2) <= (fewer == 255)).all()


def test_mosaic_tiles_the_placed_masks_with_their_pixels(masks_dir: Path) -> None:
    ds = load_dataset(masks_dir)
    prep = Preprocessing(size=64, resize_mode="letterbox", interpolation="nearest")
    batch = next(iter(stream_batches(ds, prep, np.arange(4), 4, masks=True)))
    placed = training_masks(ds, batch, None, np.random.default_rng(0), 3)[1]
    images, masks = training_masks(ds, batch, None, np.random.default_rng(1), 3, mosaic_p=1.0)
    again = training_masks(ds, batch, None, np.random.default_rng(1), 3, mosaic_p=1.0)
    assert np.array_equal(images, again[0]) and np.array_equal(masks, again[1])
    assert masks.dtype == np.int64 and set(np.unique(masks).tolist()) <= {0, 1, 2, 255}
    assert not np.array_equal(masks, placed) and (masks == 255).any()
    from imgrec.transforms.mosaic import plan

    tiles = plan(4, 64, np.random.default_rng(1), 1.0)  # the draws training_masks made
    for tile, m in zip(tiles, masks, strict=True):
        assert tile is not None
        np.testing.assert_array_equal(m, tile.mask(placed, 255))


@pytest.mark.slow  # one epoch of unet-tiny at 64 px on 8 images, with its evaluation and report: a few seconds
def test_a_tiny_run_trains_with_mosaic(masks_dir: Path, tmp_path: Path) -> None:
    import imgrec

    cfg = TrainConfig(model="unet-tiny", epochs=1, batch_size=4, image_size=64, augment="none", mosaic=1.0,
                      num_threads=2)  # fmt: skip
    run = imgrec.train(masks_dir, cfg, data_config=DataConfig(val=0.25, test=0.0), out=tmp_path / "run")
    assert np.isfinite(run.history.epochs[0]["train_loss"]) and 0 <= run.metrics["val"]["miou"] <= 1
    assert json.loads((tmp_path / "run" / "model.json").read_text())["training"]["mosaic"] == 1.0


def test_losses_leave_ignored_pixels_out_and_dice_scores_overlap() -> None:
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    target[0, :4] = 255
    ce = segment_losses(logits, target, 255)["ce_loss"]
    keep = target != 255
    manual = torch.nn.functional.cross_entropy(logits.permute(0, 2, 3, 1)[keep], target[keep])
    torch.testing.assert_close(ce, manual)
    perfect = torch.nn.functional.one_hot(target.clamp(max=2), 3).permute(0, 3, 1, 2).float() * 50
    assert float(soft_dice_loss(perfect, target, 255)) < 1e-3
    assert float(soft_dice_loss(-perfect, target, 255)) > 0.95  # the smoothing (1 pixel) keeps it under 1
    assert float(soft_dice_loss(logits, torch.full_like(target, 255), 255)) == 0.0  # nothing to score


@pytest.mark.slow  # two runs with their evaluation and report: about 30 s on 2 shared cores
def test_a_short_run_resumes_and_extends(masks_dir: Path, tmp_path: Path) -> None:
    import imgrec

    cfg = TrainConfig(model="unet-tiny", epochs=1, batch_size=4, image_size=64, augment="flip", num_threads=2)
    first = imgrec.train(masks_dir, cfg, data_config=DataConfig(val=0.25, test=0.0), out=tmp_path / "run")
    assert [r["epoch"] for r in first.history.epochs] == [1] and 0 <= first.metrics["val"]["miou"] <= 1
    weights = (tmp_path / "run" / "weights.safetensors").read_bytes()
    longer = imgrec.train(masks_dir, cfg.replace(epochs=2), out=tmp_path / "run", resume=True)
    assert [r["epoch"] for r in longer.history.epochs] == [1, 2]
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["training"]["kept_weights"]["of"] == 2 and meta["data"]["splits"] == first.meta["data"]["splits"]
    counts = first.meta["data"]["class_counts"]
    assert sum(counts.values()) > 0 and meta["data"]["class_counts"] == counts  # the resumed run decodes them too
    assert longer.history.epochs[1]["train_loss"] < longer.history.epochs[0]["train_loss"]
    kept = meta["training"]["kept_weights"]["epoch"]
    assert ((tmp_path / "run" / "weights.safetensors").read_bytes() == weights) == (kept == 1)


def test_unreadable_masks_stop_a_run_that_learns_nothing_and_spare_one_that_does(masks_dir: Path, tmp_path: Path,
                                                                                  caplog) -> None:  # fmt: skip
    """Every mask unreadable: the run wrote untrained weights and exited 0. The validation masks
    unreadable: the run was lost after training ('No image could be read')."""
    import shutil

    import imgrec
    from imgrec.data import split_dataset
    from imgrec.errors import DatasetError

    cfg = TrainConfig(model="unet-tiny", epochs=1, batch_size=4, image_size=32, augment="none", num_threads=1)
    data = shutil.copytree(masks_dir, tmp_path / "m")
    parts = split_dataset(load_dataset(data), val=0.25, test=0.0)
    manifest = parts.save(tmp_path / "splits.json")
    for src in parts.val.sources:  # the validation masks: text under a .png name
        (data / "masks" / f"{Path(src).stem}.png").write_text("not a mask")
    run = imgrec.train(data, cfg, splits=manifest, out=tmp_path / "run")
    assert "val" not in run.metrics and run.history.epochs[0]["train_loss"] > 0
    assert "No validation: No image of 'm' could be read: 2 of 2 failed" in caplog.text
    for mask in (data / "masks").iterdir():
        mask.write_text("not a mask")
    with pytest.raises(DatasetError, match=r"Epoch 1 trained on nothing: of 6 training image\(s\), 6 could not"):
        imgrec.train(data, cfg, splits=manifest, out=tmp_path / "run2")
    assert not (tmp_path / "run2").exists()
