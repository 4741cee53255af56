"""The feature extractors: scikit-learn contract, shapes across sizes, and known-answer checks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from imgrec.errors import ConfigError, DataError
from imgrec.features import (
    BagOfVisualWords,
    ColorHistogram,
    HOGFeatures,
    LBPFeatures,
    PixelFeatures,
)
from imgrec.features.color import rgb_to_hsv
from imgrec.features.hog import cell_histograms
from imgrec.features.lbp import uniform_lbp

EXTRACTORS = [
    HOGFeatures(),
    HOGFeatures(orientations=6, pixels_per_cell=5, cells_per_block=3, signed=True, color=True),
    LBPFeatures(),
    LBPFeatures(n_points=16, radius=2.0, grid=2),
    ColorHistogram(),
    ColorHistogram(bins=(4, 4, 4), space="rgb", grid=1),
    PixelFeatures(pool=2, grayscale=False),
    BagOfVisualWords(n_words=8, max_descriptors=500),
    BagOfVisualWords(descriptor="orb", n_words=8, max_descriptors=500),
]
IDS = [f"{type(e).__name__}-{i}" for i, e in enumerate(EXTRACTORS)]


def batch(n: int, side: int, seed: int = 0) -> np.ndarray:
    """Smooth random RGB images (blurred noise with a bright square) so detectors find structure."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, side // 4 + 1, side // 4 + 1, 3)).astype(np.float32)
    img = np.repeat(np.repeat(small, 4, axis=1), 4, axis=2)[:, :side, :side]
    img[:, side // 4 : side // 2, side // 4 : side // 2] = 255
    return img.astype(np.uint8)


@pytest.mark.parametrize("ext", EXTRACTORS, ids=IDS)
@pytest.mark.parametrize("side", [28, 32, 64])
def test_contract_shapes_and_determinism(ext, side):
    X = batch(6, side)
    est = clone(ext)
    assert est.fit(X) is est
    out = est.transform(X)
    assert out.dtype == np.float32 and out.shape == (6, est.n_features_out_)
    assert np.isfinite(out).all() and out.std() > 0
    again = clone(ext).fit(X).transform(X)
    np.testing.assert_array_equal(out, again)
    assert est.transform(X[:0]).shape == (0, est.n_features_out_)
    assert est.get_params() == ext.get_params()


@pytest.mark.parametrize("ext", EXTRACTORS[:1] + EXTRACTORS[2:3] + EXTRACTORS[4:5], ids=str)
def test_wrong_inputs_raise_data_errors_naming_the_fix(ext):
    est = clone(ext).fit(batch(2, 32))
    with pytest.raises(DataError, match="fitted on 32x32"):
        est.transform(batch(2, 28))
    with pytest.raises(DataError, match="uint8"):
        est.transform(batch(2, 32).astype(np.float32))
    with pytest.raises(DataError, match="shaped"):
        est.transform(np.zeros((2, 32, 32, 4), np.uint8))


def test_gray_batches_are_accepted_like_replicated_rgb():
    gray = batch(3, 32)[..., 0]
    rgb = np.repeat(gray[..., None], 3, axis=3)
    hog = HOGFeatures().fit(rgb)
    np.testing.assert_array_equal(hog.transform(gray), hog.transform(rgb))


@pytest.mark.parametrize(
    "est",
    [
        HOGFeatures(orientations=1),
        HOGFeatures(pixels_per_cell=1.5),
        LBPFeatures(n_points=40),
        ColorHistogram(space="lab"),
        ColorHistogram(bins=(8, 8)),
        PixelFeatures(pool=0),
        BagOfVisualWords(descriptor="surf"),
    ],
    ids=str,
)
def test_bad_parameters_raise_config_error(est):
    with pytest.raises(ConfigError):
        est.fit(batch(2, 32))


def test_hog_cell_size_adapts_to_the_image_size():
    sizes = {side: HOGFeatures().fit(batch(1, side)).cell_size_ for side in (28, 32, 64, 128)}
    assert sizes == {28: 3, 32: 4, 64: 8, 128: 16}


def test_hog_votes_follow_the_edge_direction():
    # 4 bins over 0..180 degrees, centred at 22.5, 67.5, 112.5, 157.5
    img = np.zeros((2, 16, 16), np.float32)
    img[0, :, 8:] = 255.0  # vertical edge: gradient at 0 degrees -> bins 0 and 3 equally
    img[1, 8:, :] = 255.0  # horizontal edge: gradient at 90 degrees -> bins 1 and 2 equally
    hist = cell_histograms(img, orientations=4, cell=4)
    vertical, horizontal = hist[0, :, 1:3], hist[1, 1:3, :]
    assert vertical[..., 0].sum() > 0
    np.testing.assert_allclose(vertical[..., 0], vertical[..., 3])
    assert vertical[..., 1:3].sum() == 0
    np.testing.assert_allclose(horizontal[..., 1], horizontal[..., 2])
    assert horizontal[..., 1].sum() > 0 and horizontal[..., [0, 3]].sum() == 0
    assert hist[0, :, [0, 3]].sum() == 0  # flat cells: no votes


def test_lbp_matches_scikit_image_inside_the_border():
    from skimage.feature import local_binary_pattern

    gray = batch(3, 32)[..., 1]
    for points, radius in ((8, 1.0), (16, 2.0)):
        mine = uniform_lbp(gray.astype(np.float32), points, radius)
        ref = np.stack([local_binary_pattern(g, points, radius, "uniform") for g in gray])
        m = int(radius) + 1
        np.testing.assert_array_equal(mine[:, m:-m, m:-m], ref[:, m:-m, m:-m])


def test_hsv_matches_scikit_image():
    from skimage.color import rgb2hsv

    rgb = batch(2, 16, seed=3)
    np.testing.assert_allclose(rgb_to_hsv(rgb), rgb2hsv(rgb), atol=1e-5)


def test_color_histograms_sum_to_one_per_region():
    X = batch(2, 32)
    out = ColorHistogram(bins=(4, 2, 2), grid=2, power=1.0).fit_transform(X)
    np.testing.assert_allclose(out.reshape(2, 4, 16).sum(-1), 1.0, rtol=1e-5)


def test_pixels_are_scaled_and_pooled():
    X = np.full((1, 4, 4, 3), 255, np.uint8)
    X[0, :2, :2] = 0
    out = PixelFeatures(pool=2).fit_transform(X)
    np.testing.assert_allclose(out, [[0.0, 1.0, 1.0, 1.0]])


def test_bovw_gives_zero_rows_for_images_without_keypoints():
    X = batch(8, 64)
    X[:2] = 0  # flat: the ORB detector finds nothing
    bovw = BagOfVisualWords(descriptor="orb", detect=True, n_words=4, patch_size=15).fit(X)
    out = bovw.transform(X)
    assert (out[:2] == 0).all() and (out[2:].sum(axis=1) > 0).all()


def test_bovw_vocabulary_depends_on_the_seed_only():
    X = batch(10, 32)
    a = BagOfVisualWords(n_words=6, random_state=1).fit(X).vocabulary_
    b = BagOfVisualWords(n_words=6, random_state=1).fit(X).vocabulary_
    c = BagOfVisualWords(n_words=6, random_state=2).fit(X).vocabulary_
    np.testing.assert_array_equal(a, b)
    assert a.shape == (6, 128) and not np.array_equal(a, c)


def test_bovw_without_descriptors_says_so():
    with pytest.raises(DataError, match="descriptors"):
        BagOfVisualWords(descriptor="orb", detect=True).fit(np.zeros((3, 64, 64, 3), np.uint8))


def test_color_hog_sees_edges_that_luma_hides():
    X = np.zeros((1, 16, 16, 3), np.uint8)
    X[..., :8, 0] = 200  # red left half, green right half: luma nearly equal on both sides
    X[..., 8:, 1] = 102
    gray = cell_histograms(X[..., 0].astype(np.float32) * 0.299 + X[..., 1] * 0.587, 4, 4)
    color = cell_histograms(X.astype(np.float32), 4, 4)
    assert color.sum() > 50 * gray.sum() > 0
