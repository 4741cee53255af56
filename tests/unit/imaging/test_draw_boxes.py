"""imaging.draw.draw_boxes: the outline lands on the box edge, and nowhere else changes."""

from __future__ import annotations

import numpy as np
import pytest

from imgrec.imaging.draw import PALETTE, draw_boxes, palette_color


def gray(h: int = 120, w: int = 160) -> np.ndarray:
    return np.full((h, w, 3), 90, np.uint8)


def test_outline_on_the_edge_interior_and_outside_untouched() -> None:
    img = gray()
    out = draw_boxes(img, np.array([[40, 50, 100, 90]]), line_width=2, colors=(255, 0, 0))
    assert out is not img and (img == 90).all()  # a copy; the input is left alone
    changed = (out != img).any(axis=2)
    assert changed[50:90, 40:42].all() and changed[50:90, 98:100].all()  # left and right edges, 2 px
    assert changed[50:52, 40:100].all() and changed[88:90, 40:100].all()  # top and bottom
    assert not changed[52:88, 42:98].any()  # inside
    outside = np.ones_like(changed)
    outside[50:90, 40:100] = False
    assert not changed[outside].any()
    assert out[70, 40].tolist() == [255, 0, 0]


def test_caption_goes_on_a_band_above_the_box() -> None:
    img = gray()
    out = draw_boxes(img, np.array([[40, 50, 100, 90]]), ["person 0.91"], line_width=1)
    changed = (out != img).any(axis=2)
    assert changed[30:50, 40:60].any()  # the band above the top-left corner
    assert not changed[:30].any() and not changed[91:].any()
    assert not changed[:, :40].any()


def test_caption_at_the_top_edge_stays_inside_the_image() -> None:
    out = draw_boxes(gray(), np.array([[0, 0, 60, 60]]), ["cat"], line_width=1)
    assert out.shape == (120, 160, 3) and (out[2:12, 2:20] != 90).any()


def test_boxes_outside_are_clipped_and_colours_follow_the_palette() -> None:
    out = draw_boxes(gray(), np.array([[-20, -20, 500, 500], [10, 10, 30, 30]]), line_width=1)
    assert out[60, 0].tolist() == list(PALETTE[0]) and out[20, 10].tolist() == list(PALETTE[1])
    assert palette_color(len(PALETTE) + 1) == PALETTE[1]


def test_no_boxes_gives_an_equal_copy() -> None:
    img = gray()
    assert np.array_equal(draw_boxes(img, np.zeros((0, 4))), img)


@pytest.mark.parametrize("width", [1, 3])
def test_line_width(width: int) -> None:
    out = draw_boxes(gray(), np.array([[40, 40, 80, 80]]), line_width=width)
    changed = (out != 90).any(axis=2)
    assert changed[60, 40 : 40 + width].all() and not changed[60, 40 + width]
