"""imaging.privacy.obscure: the whole box plus its margin is hidden, nothing else changes."""

from __future__ import annotations

import numpy as np
import pytest

from imgrec.errors import UsageError
from imgrec.imaging.privacy import obscure, regions


def textured(h: int = 120, w: int = 160) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("pixelate", [False, True])
def test_every_pixel_of_box_and_margin_changes_and_none_outside(pixelate: bool) -> None:
    img = textured()
    out = obscure(img, [(40, 30, 80, 70)], margin=0.25, pixelate=pixelate)
    inside = np.zeros(img.shape[:2], bool)
    inside[20:80, 30:90] = True  # 40 x 40 box grown by 10 px on each side
    np.testing.assert_array_equal(out[~inside], img[~inside])
    region = out[20:80, 30:90].astype(np.int16)
    assert np.abs(region - img[20:80, 30:90]).mean() > 40  # noise gone, not merely softened
    assert region.std(axis=(0, 1)).mean() < (8 if not pixelate else 40)


def test_regions_grow_round_outwards_and_clip() -> None:
    np.testing.assert_array_equal(regions([(10.4, 10.6, 20.2, 30.0), (150, 0, 170, 10)], (160, 120), 0.1),
                                  [[9, 8, 22, 32], [148, 0, 160, 11]])  # fmt: skip


def test_no_boxes_is_a_copy_and_bad_arguments_are_refused() -> None:
    img = textured()
    out = obscure(img, np.zeros((0, 4)))
    assert out is not img and (out == img).all()
    with pytest.raises(UsageError, match="margin"):
        obscure(img, [(0, 0, 5, 5)], margin=-1)
    with pytest.raises(UsageError, match="RGB uint8"):
        obscure(img.astype(np.float32), [(0, 0, 5, 5)])
