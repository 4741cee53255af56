"""Drawing helpers: captioned image grids for previews and error galleries."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

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


def save_png(img: np.ndarray, path: str) -> None:
    """Write an RGB uint8 array as PNG."""
    Image.fromarray(img).save(path, "PNG")
