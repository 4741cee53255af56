"""Masks move with the pixels: into the model input and back, through augmentation, nearest only."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from tests.segmentation_data import coco128, polygon_masks

from imgrec.transforms import Preprocessing, create_augmenter
from imgrec.transforms.augment import AugmentConfig, Augmenter


def _coded(mask: np.ndarray) -> np.ndarray:
    """An image whose colour says the class (resampled with 'nearest', its pixels keep it)."""
    lut = np.stack([np.arange(256), (np.arange(256) * 7) % 256, (np.arange(256) * 13) % 256], 1).astype(np.uint8)
    return lut[mask]


def _decode_class(img: np.ndarray) -> np.ndarray:
    return img[..., 0]


@pytest.fixture(scope="module")
def real_mask() -> np.ndarray:
    _, doc = coco128()
    return polygon_masks(doc, 3)[2][1]  # 640 x 480 with several classes


@pytest.mark.parametrize(("mode", "crop_pct"), [("letterbox", 1.0), ("crop", 0.875), ("stretch", 1.0)])
def test_mask_lands_on_the_pixels_of_its_image(real_mask: np.ndarray, mode: str, crop_pct: float) -> None:
    prep = Preprocessing(size=97, resize_mode=mode, crop_pct=crop_pct, interpolation="nearest", pad_value=255)
    img, g = prep.prepare_framed(_coded(real_mask))
    moved = g.mask_to_input(real_mask)
    assert moved.shape == (97, 97) and set(np.unique(moved)) <= {*np.unique(real_mask).tolist(), 255}
    same = moved == _decode_class(img)  # the same pixel, class for class (padding: 255 both)
    assert (~same).sum() <= 2  # PIL's nearest rounds exact half-pixel ties its own way


def test_reduced_scale_jpeg_geometry_maps_the_full_resolution_mask(real_mask: np.ndarray) -> None:
    buf = io.BytesIO()
    Image.fromarray(_coded(real_mask)).save(buf, "JPEG", quality=95)
    prep = Preprocessing(size=96, resize_mode="letterbox")
    img, g = prep.decode_framed(buf.getvalue())  # decoded at 1/4 scale (min_side 96 of 480)
    h, w = real_mask.shape
    assert g.original == (w, h) and img.shape == (96, 96, 3)
    moved = g.mask_to_input(real_mask)
    assert (moved != 255).sum() == 96 * round(h * 96 / w)  # the letterboxed image's rows, exactly
    back = g.mask_to_original(moved)
    assert back.shape == real_mask.shape
    assert (back == real_mask).mean() > 0.97  # nearest down then up: only edges differ


def test_mask_to_original_is_exact_when_upsampling_a_letterbox(real_mask: np.ndarray) -> None:
    prep = Preprocessing(size=1280, resize_mode="letterbox", interpolation="nearest")
    _, g = prep.prepare_framed(_coded(real_mask))
    assert np.array_equal(g.mask_to_original(g.mask_to_input(real_mask)), real_mask)


def test_wrong_size_mask_is_refused(real_mask: np.ndarray) -> None:
    from imgrec.errors import DataError

    _, g = Preprocessing(size=64).prepare_framed(_coded(real_mask))
    with pytest.raises(DataError, match="expected a mask in the image's pixels"):
        g.mask_to_input(real_mask[:-1])


def test_flip_moves_mask_exactly(real_mask: np.ndarray) -> None:
    small = real_mask[::8, ::8]
    batch = _coded(small)[None]
    images, masks = Augmenter(AugmentConfig(flip=1.0)).with_masks(batch, small[None], np.random.default_rng(0))
    assert np.array_equal(masks[0], small[:, ::-1]) and np.array_equal(images[0], batch[0][:, ::-1])


@pytest.mark.parametrize("preset", ["light", "standard", "strong"])
def test_presets_move_masks_nearest_only(real_mask: np.ndarray, preset: str) -> None:
    small = np.ascontiguousarray(real_mask[::4, ::4])
    batch = np.repeat(_coded(small)[None], 4, axis=0)
    aug = create_augmenter(preset, fill="constant", brightness=0, contrast=0, saturation=0, hue=0, noise=0)
    images, masks = aug.with_masks(batch, np.repeat(small[None], 4, axis=0), np.random.default_rng(1))
    assert set(np.unique(masks).tolist()) <= {*np.unique(small).tolist(), 255}  # no interpolated values
    moved = ~np.all(masks == small, axis=(1, 2))
    assert moved.any()
    inside = masks != 255
    # the image (bilinear) agrees with the mask (nearest) away from class edges
    agree = (_decode_class(images)[inside] == masks[inside]).mean()
    assert agree > 0.9


def test_same_seed_same_masks(real_mask: np.ndarray) -> None:
    small = np.ascontiguousarray(real_mask[::8, ::8])
    batch = _coded(small)[None].repeat(2, axis=0)
    aug = create_augmenter("strong")
    a = aug.with_masks(batch, small[None].repeat(2, axis=0), np.random.default_rng(5))[1]
    b = aug.with_masks(batch, small[None].repeat(2, axis=0), np.random.default_rng(5))[1]
    assert np.array_equal(a, b)
