"""Augmentation presets: shape, dtype, determinism, the geometry, errors, preview grid."""

from __future__ import annotations

import numpy as np
import pytest

from imgrec.errors import ConfigError, UnknownNameError, UsageError
from imgrec.transforms import (
    AugmentConfig,
    Augmenter,
    create_augmenter,
    list_augment_presets,
    preview_grid,
)
from imgrec.transforms.geometry import homographies

PRESETS = ["none", "light", "flip", "flip-shift", "standard", "strong"]


def _batch(n: int = 6, side: int = 28, seed: int = 0) -> np.ndarray:
    """Smooth, asymmetric test images (a gradient plus a bright block on the left)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side]
    base = np.stack([xx * 255 // side, yy * 255 // side, (xx + yy) * 127 // side], axis=2)
    batch = np.repeat(base[None], n, axis=0).astype(np.int64)
    batch[:, side // 4 : side // 2, 2 : side // 3] = 250
    return (batch + rng.integers(0, 20, batch.shape)).clip(0, 255).astype(np.uint8)


def test_presets_are_listed() -> None:
    assert list_augment_presets() == sorted(PRESETS)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("side", [28, 64])
def test_preset_shape_dtype_determinism(preset: str, side: int) -> None:
    aug = create_augmenter(preset)
    batch = _batch(side=side)
    before = batch.copy()
    a = aug(batch, np.random.default_rng(5))
    b = aug(batch, np.random.default_rng(5))
    c = aug(batch, np.random.default_rng(6))
    assert a.shape == batch.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert np.array_equal(batch, before)  # the input is not modified
    if preset == "none":
        assert np.array_equal(a, batch) and np.array_equal(c, batch)
    else:
        assert not np.array_equal(a, c) and not np.array_equal(a, batch)


def test_generator_state_advances() -> None:
    aug, rng = create_augmenter("standard"), np.random.default_rng(0)
    assert not np.array_equal(aug(_batch(), rng), aug(_batch(), rng))


def test_flip_is_an_exact_mirror_and_light_never_flips() -> None:
    batch = _batch()
    flipped = create_augmenter("none", flip=1.0)(batch, np.random.default_rng(0))
    assert np.array_equal(flipped, batch[:, :, ::-1])
    light = create_augmenter("light")(batch, np.random.default_rng(1)).astype(float)
    same = np.abs(light - batch).mean()
    mirrored = np.abs(light - batch[:, :, ::-1]).mean()
    assert same < mirrored / 2


def test_pad_crop_is_a_whole_pixel_shift() -> None:
    batch = _batch(n=4, side=32)
    out = create_augmenter("none", crop="pad", crop_pad=0.125, fill="constant")(batch, np.random.default_rng(3))
    for img, src in zip(out, batch, strict=True):
        shifts = [
            (dy, dx)
            for dy in range(-4, 5)
            for dx in range(-4, 5)
            if np.array_equal(
                img[max(dy, 0) : 32 + min(dy, 0), max(dx, 0) : 32 + min(dx, 0)],
                src[max(-dy, 0) : 32 - max(dy, 0), max(-dx, 0) : 32 - max(dx, 0)],
            )
        ]
        assert shifts, "each image should be its source shifted by whole pixels"


def test_brightness_only_scales_the_image() -> None:
    batch = np.full((8, 16, 16, 3), 100, np.uint8)
    out = create_augmenter("none", brightness=0.3, color_p=1.0)(batch, np.random.default_rng(0))
    means = out.reshape(8, -1).mean(axis=1)
    assert np.all((means >= 69) & (means <= 131)) and means.std() > 1
    assert np.all(out.reshape(8, -1).std(axis=1) == 0)  # flat stays flat


def test_hue_and_saturation_keep_gray_gray() -> None:
    batch = np.repeat(_batch()[..., :1], 3, axis=3)
    out = create_augmenter("none", hue=0.5, saturation=0.9, color_p=1.0)(batch, np.random.default_rng(0))
    assert np.abs(out.astype(int) - batch).max() <= 1


def test_homographies_map_the_points() -> None:
    src = np.array([[[0, 0], [10, 0], [10, 10], [0, 10]]], dtype=float)
    dst = src + np.array([[[1, 2], [-1, 0], [0.5, -1], [2, 1]]])
    h = homographies(src, dst)[0]
    pts = np.c_[src[0], np.ones(4)] @ h.T
    assert np.allclose(pts[:, :2] / pts[:, 2:], dst[0])


def test_errors() -> None:
    with pytest.raises(UnknownNameError, match="standard"):
        create_augmenter("standrad")
    with pytest.raises(ConfigError, match="rotate"):
        create_augmenter("light", rotat=5)
    with pytest.raises(ConfigError, match="flip"):
        create_augmenter("light", flip=2.0)
    with pytest.raises(ConfigError, match="scale"):
        AugmentConfig(scale=(1.2, 0.8))
    aug = Augmenter(AugmentConfig(rotate=5))
    with pytest.raises(UsageError, match=r"\(N, H, W, 3\)"):
        aug(np.zeros((2, 8, 8), np.uint8), np.random.default_rng(0))
    with pytest.raises(UsageError):
        aug(np.zeros((2, 8, 8, 3), np.float32), np.random.default_rng(0))


def test_overrides_and_empty_batch() -> None:
    aug = create_augmenter("strong", noise=0.0, flip=0.0)
    assert aug.config.noise == 0.0 and aug.config.rotate == 25 and aug.name == "strong"
    empty = np.zeros((0, 8, 8, 3), np.uint8)
    assert aug(empty, np.random.default_rng(0)).shape == (0, 8, 8, 3)


def test_preview_grid() -> None:
    images = [_batch(1, 40)[0], _batch(1, 300)[0][:200]]
    grid = preview_grid(images, "strong", seed=1, variants=3, cell=32)
    assert grid.shape == (2 * (32 + 14), 4 * 32, 3) and grid.dtype == np.uint8
    assert np.array_equal(grid, preview_grid(images, "strong", seed=1, variants=3, cell=32))
