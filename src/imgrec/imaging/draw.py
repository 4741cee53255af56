"""Drawing helpers: captioned image grids for previews and error galleries, boxes with captions."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from imgrec.imaging.ops import center_crop, resize_shorter


def make_grid(
    images: Sequence[np.ndarray],
    captions: Sequence[str] | None = None,
    *,
    cell: int = 96,
    cols: int = 8,
    caption_height: int = 14,
) -> np.ndarray:
    """Tile images into one RGB uint8 grid, each square ``cell`` pixels, with captions.

    Example:
        >>> import numpy as np
        >>> make_grid([np.zeros((8, 8, 3), np.uint8)] * 3, ["a", "b", "c"], cell=16, cols=2).shape
        (60, 32, 3)
    """
    n = max(1, len(images))
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    cap_h = caption_height if captions else 0
    canvas = Image.new("RGB", (cols * cell, rows * (cell + cap_h)), "white")
    draw = ImageDraw.Draw(canvas)
    font = caption_font(max(8, caption_height - 3))
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        x, y = c * cell, r * (cell + cap_h)
        tile = center_crop(
            resize_shorter(img, cell, "bilinear" if min(img.shape[:2]) > cell else "nearest"), (cell, cell)
        )
        canvas.paste(Image.fromarray(np.ascontiguousarray(tile)), (x, y))
        if captions:
            draw.text((x + 2, y + cell), _fit(str(captions[i]), font, cell - 4), fill="black", font=font)
    return np.asarray(canvas)


@functools.lru_cache(maxsize=8)
def caption_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib: has arrows and accents), else PIL's default."""
    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        return ImageFont.truetype(str(path), size)
    except (ImportError, OSError):
        return ImageFont.load_default()


def _fit(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> str:
    while text and font.getlength(text) > width:
        text = text[:-1]
    return text


Color = tuple[int, int, int]
BoxColors = Color | Sequence[Color] | None
# Distinct, saturated hues (no pure green: draw_detections keeps it for ground truth).
PALETTE: tuple[Color, ...] = (
    (255, 56, 56), (0, 128, 255), (255, 157, 151), (255, 112, 31), (255, 178, 29), (207, 210, 49),
    (72, 249, 10), (146, 204, 23), (61, 219, 134), (26, 147, 52), (0, 212, 187), (44, 153, 168),
    (0, 194, 255), (52, 69, 147), (100, 115, 255), (0, 24, 236), (132, 56, 255), (82, 0, 133),
    (203, 56, 255), (255, 149, 200), (255, 55, 199),
)  # fmt: skip


def palette_color(index: int) -> Color:
    """A colour per class index, the same on every image."""
    return PALETTE[int(index) % len(PALETTE)]


def draw_boxes(
    image: np.ndarray, boxes: np.ndarray, captions: Sequence[str] | None = None, *,
    colors: BoxColors = None, line_width: int | None = None,
) -> np.ndarray:  # fmt: skip
    """A copy of ``image`` with rectangles and, above each, its caption on a filled band.

    Args:
        image: RGB uint8 ``(H, W, 3)``.
        boxes: ``(K, 4)`` x1, y1, x2, y2 in the image's pixels (clipped to it).
        captions: one text per box (None or "" for none).
        colors: one RGB colour for all boxes or one per box (default: by position in the palette).
        line_width: in pixels (default: about 0.3% of the image's size, at least 1).

    Example:
        >>> out = draw_boxes(np.zeros((100, 100, 3), np.uint8), np.array([[40, 40, 80, 80]]), ["cat"])
        >>> out[60, 40].tolist(), out[60, 60].tolist()
        ([255, 56, 56], [0, 0, 0])
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    h, w = image.shape[:2]
    canvas = Image.fromarray(np.ascontiguousarray(image, np.uint8))
    draw = ImageDraw.Draw(canvas)
    lw = line_width or max(1, round((h + w) / 2 * 0.003))
    font = caption_font(max(9, lw * 5))
    for i, box in enumerate(b):
        color = _color_of(colors, i)
        x1, y1 = (int(v) for v in np.clip(np.floor(box[:2]), 0, [w - 1, h - 1]))
        x2, y2 = (int(v) for v in np.clip(np.ceil(box[2:]) - 1, [x1, y1], [w - 1, h - 1]))
        draw.rectangle((x1, y1, x2, y2), outline=color, width=lw)
        if captions and captions[i]:
            _caption(draw, str(captions[i]), (x1, y1), color, font, canvas.size)
    return np.asarray(canvas)


def _color_of(colors: BoxColors, i: int) -> Color:
    if colors is None:
        return palette_color(i)
    given: Any = colors
    one = len(given) == 3 and all(isinstance(c, int | np.integer) for c in given)
    r, g, b = (int(c) for c in (given if one else given[i]))
    return (r, g, b)


def _caption(
    draw: ImageDraw.ImageDraw, text: str, corner: tuple[int, int], color: Color,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont, size: tuple[int, int],
) -> None:  # fmt: skip
    """Text on a band of the box's colour: above the box, or inside it at the image's top edge."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tw, th = int(right - left) + 4, int(bottom - top) + 4
    x = min(corner[0], max(0, size[0] - tw))
    y = corner[1] - th if corner[1] >= th else corner[1]
    draw.rectangle((x, y, x + tw - 1, y + th - 1), fill=color)
    ink = (0, 0, 0) if sum(color) > 382 else (255, 255, 255)
    draw.text((x + 2 - left, y + 2 - top), text, fill=ink, font=font)


def draw_points(image: np.ndarray, points: np.ndarray, *, colors: BoxColors = None, radius: int = 2) -> np.ndarray:
    """A copy of ``image`` with a filled dot of ``radius`` pixels at every ``(K, 2)`` x, y point.

    Example:
        >>> out = draw_points(np.zeros((20, 20, 3), np.uint8), np.array([[10, 10]]), colors=(0, 0, 255))
        >>> out[10, 10].tolist(), out[0, 0].tolist()
        ([0, 0, 255], [0, 0, 0])
    """
    canvas = Image.fromarray(np.ascontiguousarray(image, np.uint8))
    draw = ImageDraw.Draw(canvas)
    r = max(1, int(radius))
    for i, (x, y) in enumerate(np.asarray(points, np.float64).reshape(-1, 2)):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=_color_of(colors, i))
    return np.asarray(canvas)


def overlay_mask(
    image: np.ndarray, mask: np.ndarray, *, alpha: float = 0.5, ignore: int | None = 255,
    skip: Sequence[int] = (0,), colors: Sequence[Color] | None = None,
) -> np.ndarray:  # fmt: skip
    """A copy of ``image`` with each class of the index ``mask`` tinted in its colour.

    Args:
        image: RGB uint8 ``(H, W, 3)``.
        mask: ``(H, W)`` class indices, the image's size.
        alpha: opacity of the tint.
        ignore: the ignore index (drawn as a gray tint), or None.
        skip: classes left untinted (background).
        colors: one colour per class index (default: the palette).

    Example:
        >>> out = overlay_mask(np.zeros((1, 2, 3), np.uint8), np.array([[0, 1]]), alpha=1.0)
        >>> out.tolist()
        [[[0, 0, 0], [0, 128, 255]]]
    """
    values = np.unique(mask)
    lut = np.zeros((int(values.max(initial=0)) + 1, 3), np.float32)
    tint = np.zeros(len(lut), bool)
    for v in values.tolist():
        if v in skip:
            continue
        tint[v] = True
        lut[v] = (128, 128, 128) if v == ignore else (colors[v] if colors is not None else palette_color(v))
    painted = tint[mask]
    out = image.astype(np.float32)
    out[painted] = (1 - alpha) * out[painted] + alpha * lut[mask[painted]]
    return out.round().astype(np.uint8)


def save_png(img: np.ndarray, path: str) -> None:
    """Write an RGB uint8 array as PNG."""
    Image.fromarray(img).save(path, "PNG")
