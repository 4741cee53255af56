"""The safe decode path for label masks: index values kept, never converted to RGB.

A segmentation mask is an image whose pixel values are class indices. It goes through the
same checks as every image (magic-byte allowlist, byte and pixel limits read from the header
before any pixel is decoded, EXIF orientation), but its values are kept as stored: a palette
PNG gives its palette *indices* (and the palette beside them), an 8-bit gray PNG its gray
levels, a 16-bit PNG its 16-bit values. Colour masks (RGB, one colour per class) come back
as colours, to be mapped to indices through the dataset's colour map. Lossy formats (JPEG,
WebP) are refused: they invent new values at every edge.

Example:
    >>> import io; from PIL import Image
    >>> im = Image.frombytes("P", (2, 2), bytes([0, 1, 255, 2]))
    >>> im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
    >>> buf = io.BytesIO(); im.save(buf, "PNG")
    >>> m = decode_mask(buf.getvalue())
    >>> m.values.tolist(), m.values.dtype.name, m.palette[1].tolist()
    ([[0, 1], [255, 2]], 'uint8', [128, 0, 0])
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from imgrec.errors import InvalidImageError
from imgrec.imaging.decode import DEFAULT_LIMITS, DecodeLimits, _apply_orientation, open_image, read_bytes

MASK_FORMATS = ("PNG", "BMP", "TIFF", "GIF")  # lossless only
_INDEX_MODES = {"1": np.uint8, "L": np.uint8, "P": np.uint8, "I;16": np.uint16, "I;16L": np.uint16,
                "I;16B": np.uint16, "I;16N": np.uint16, "I": np.int64}  # fmt: skip
_COLOR_MODES = ("RGB", "RGBA", "RGBX")


@dataclass(frozen=True)
class DecodedMask:
    """A decoded mask.

    Attributes:
        values: ``(H, W)`` uint8 or uint16 index values (gray, palette and 16-bit masks), or
            ``(H, W, 3)`` uint8 colours (RGB masks).
        palette: ``(256, 3)`` uint8 colours of a palette PNG's indices, else None.
        mode: the PIL mode the file stored (``"P"``, ``"L"``, ``"I;16"``, ``"RGB"``, ...).
    """

    values: np.ndarray
    palette: np.ndarray | None
    mode: str

    @property
    def is_color(self) -> bool:
        """True for RGB masks (values are colours, not indices)."""
        return self.values.ndim == 3

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return int(self.values.shape[1]), int(self.values.shape[0])


def decode_mask(data: bytes, *, limits: DecodeLimits = DEFAULT_LIMITS, name: str = "mask") -> DecodedMask:
    """Decode an encoded mask, keeping its index values.

    Raises:
        InvalidImageError: not a lossless image format, an unsupported mode (float, CMYK),
            values beyond 16 bits, or a broken file.
        ImageTooLargeError: over the byte or pixel limits (decompression bombs included).
    """
    allowed = tuple(f for f in limits.formats if f in MASK_FORMATS)
    im = _open(data, limits, allowed, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.seek(0)
            im.load()
            im = _apply_orientation(im, name)
            return _to_values(im, name)
    except (InvalidImageError, MemoryError):
        raise
    except Exception as exc:  # truncated data, broken streams
        raise InvalidImageError(f"{name} could not be decoded as a mask: {exc}") from None


def load_mask(path: str | Path, *, limits: DecodeLimits = DEFAULT_LIMITS) -> DecodedMask:
    """Read and decode a mask file (see :func:`decode_mask`)."""
    return decode_mask(read_bytes(path, limits), limits=limits, name=str(path))


def mask_size(path: str | Path, *, limits: DecodeLimits = DEFAULT_LIMITS) -> tuple[int, int]:
    """``(width, height)`` of a mask file from its header (EXIF orientation not applied)."""
    data = read_bytes(path, limits)
    return open_image(data, limits, str(path)).size


def _open(data: bytes, limits: DecodeLimits, allowed: tuple[str, ...], name: str) -> Image.Image:
    im = open_image(data, limits, name)
    if im.format not in allowed:
        raise InvalidImageError(
            f"{name} is a {im.format} file; a mask must be stored losslessly ({', '.join(allowed)}): "
            "lossy compression invents new class values at every edge. Save the mask as PNG.",
            code="unsupported_media_type",
        )
    return im


def _to_values(im: Image.Image, name: str) -> DecodedMask:
    mode = im.mode
    if mode in ("LA", "PA"):
        im = im.getchannel(0) if mode == "LA" else _drop_alpha_keep_palette(im)
    if im.mode in _COLOR_MODES:
        return DecodedMask(np.asarray(im.convert("RGB"), np.uint8).copy(), None, mode)
    dtype = _INDEX_MODES.get(im.mode)
    if dtype is None:
        raise InvalidImageError(
            f"{name} is a {mode} image; expected an index mask (8-bit gray, palette or 16-bit PNG) "
            "or an RGB colour mask.",
            code="unsupported_media_type",
        )
    values = np.asarray(im)
    if values.dtype == np.bool_:
        values = values.astype(np.uint8)
    if dtype is np.int64:
        values = _narrow(values, name)
    palette = _palette(im) if im.mode == "P" else None
    return DecodedMask(np.ascontiguousarray(values.astype(values.dtype.newbyteorder("="), copy=False)), palette, mode)


def _drop_alpha_keep_palette(im: Image.Image) -> Image.Image:
    out = Image.frombytes("P", im.size, np.asarray(im)[..., 0].tobytes())
    out.putpalette(im.getpalette() or [])
    return out


def _narrow(values: np.ndarray, name: str) -> np.ndarray:
    """32-bit integer masks (PIL mode ``I``, how some 16-bit files open) to uint16, when they fit."""
    lo, hi = int(values.min(initial=0)), int(values.max(initial=0))
    if lo < 0 or hi > 65535:
        raise InvalidImageError(
            f"{name} holds values from {lo} to {hi}; a mask's class indices must fit 16 bits (0..65535)."
        )
    return values.astype(np.uint16)


def _palette(im: Image.Image) -> np.ndarray:
    flat = im.getpalette("RGB") or []
    pal = np.zeros((256, 3), np.uint8)
    got = np.asarray(flat[: 256 * 3], np.uint8).reshape(-1, 3)
    pal[: len(got)] = got
    return pal


def colors_to_index(
    colors: np.ndarray, color_map: dict[tuple[int, int, int], int], fill: int
) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Map an ``(H, W, 3)`` colour mask to class indices.

    Args:
        colors: the colour mask.
        color_map: colour -> class index.
        fill: the index of pixels whose colour is not in the map (the ignore index).

    Returns:
        The uint8/uint16 index mask, and the colours found that the map does not hold.

    Example:
        >>> c = np.array([[[0, 0, 0], [255, 0, 0]], [[9, 9, 9], [255, 0, 0]]], np.uint8)
        >>> idx, unknown = colors_to_index(c, {(0, 0, 0): 0, (255, 0, 0): 1}, 255)
        >>> idx.tolist(), unknown
        ([[0, 1], [255, 1]], [(9, 9, 9)])
    """
    key = (colors[..., 0].astype(np.uint32) << 16) | (colors[..., 1].astype(np.uint32) << 8) | colors[..., 2]
    found, inverse = np.unique(key.reshape(-1), return_inverse=True)
    dtype = np.uint8 if max([fill, *color_map.values()]) < 256 else np.uint16
    lut = np.full(len(found), fill, dtype)
    unknown = []
    for k, v in enumerate(found.tolist()):
        rgb = (v >> 16, (v >> 8) & 255, v & 255)
        if rgb in color_map:
            lut[k] = color_map[rgb]
        else:
            unknown.append(rgb)
    return lut[inverse].reshape(colors.shape[:2]), unknown


def encode_mask_png(index: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """An index mask as PNG: a palette PNG when it fits 8 bits (with ``palette``'s colours),
    else a 16-bit gray PNG. The values read back unchanged through :func:`decode_mask`.

    Example:
        >>> m = np.array([[0, 3], [255, 1]], np.uint8)
        >>> decode_mask(encode_mask_png(m)).values.tolist()
        [[0, 3], [255, 1]]
        >>> decode_mask(encode_mask_png(np.array([[0, 700]], np.uint16))).values.tolist()
        [[0, 700]]
    """
    arr = np.ascontiguousarray(index)
    buf = io.BytesIO()
    if arr.dtype == np.uint8 or (arr.size and int(arr.max()) < 256 and arr.dtype.kind in "ui"):
        im = Image.frombytes("P", (arr.shape[1], arr.shape[0]), arr.astype(np.uint8).tobytes())
        im.putpalette(np.asarray(palette if palette is not None else label_palette(), np.uint8).reshape(-1).tolist())
        im.save(buf, "PNG", optimize=False)
    else:
        Image.fromarray(arr.astype(np.uint16)).save(buf, "PNG")
    return buf.getvalue()


def label_palette(n: int = 256) -> np.ndarray:
    """The Pascal VOC colour map: ``(n, 3)`` uint8, index 0 black, 255 (the ignore index) cream.

    Example:
        >>> label_palette()[[0, 1, 15]].tolist()
        [[0, 0, 0], [128, 0, 0], [192, 128, 128]]
    """
    idx = np.arange(n)
    pal = np.zeros((n, 3), np.int64)
    for shift in range(8):
        for ch in range(3):
            pal[:, ch] |= ((idx >> (3 * shift + ch)) & 1) << (7 - shift)
    return pal.astype(np.uint8)
