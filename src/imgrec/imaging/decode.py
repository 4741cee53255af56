"""The one safe decode path: bytes or a file in, RGB uint8 ``(H, W, 3)`` out.

Rules, in order: the format is sniffed from magic bytes against an allowlist (the file
name is never trusted); the byte size and the pixel count (read from the header, before
any pixel is decoded) are checked against limits; EXIF orientation is applied; every mode
is normalized to RGB uint8 (16-bit scaled, not clipped; alpha composited on white).
Source files are only ever opened for reading.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from imgrec.errors import ImageTooLargeError, InvalidImageError, MissingInputError

log = logging.getLogger(__name__)

# magic prefix -> format name (PIL's names)
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class DecodeLimits:
    """Limits every decode obeys.

    Attributes:
        max_pixels: width x height above which an image is refused (decompression bombs).
        max_bytes: encoded size above which an image is refused.
        formats: allowed formats (PIL names), checked against the sniffed magic bytes.
    """

    max_pixels: int = 64_000_000
    max_bytes: int = 64 * 1024 * 1024
    formats: tuple[str, ...] = ALLOWED_FORMATS


DEFAULT_LIMITS = DecodeLimits()


def sniff_format(head: bytes) -> str | None:
    """Return the image format named by the first bytes, or None when not recognised."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def read_bytes(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS) -> bytes:
    """Read a file for decoding, refusing missing paths and oversize files."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise MissingInputError(f"Image not found: {p}") from None
    except OSError as exc:
        raise InvalidImageError(f"Cannot read {p}: {exc.strerror or exc}", code="image_unreadable") from None
    if p.is_dir():
        raise InvalidImageError(f"Expected an image file, received a directory: {p}")
    if size > limits.max_bytes:
        raise ImageTooLargeError(f"{p.name} is {size / 1e6:.1f} MB; the limit is {limits.max_bytes / 1e6:.1f} MB.")
    try:
        return p.read_bytes()
    except OSError as exc:
        raise InvalidImageError(f"Cannot read {p}: {exc.strerror or exc}", code="image_unreadable") from None


def open_image(data: bytes, limits: DecodeLimits = DEFAULT_LIMITS, name: str = "image") -> Image.Image:
    """Open (lazily) after the format and size checks; pixels are not decoded yet."""
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(f"{name} is {len(data) / 1e6:.1f} MB; the limit is {limits.max_bytes / 1e6:.1f} MB.")
    fmt = sniff_format(data[:16])
    if fmt is None or fmt not in limits.formats:
        what = "an unrecognised format" if fmt is None else fmt
        raise InvalidImageError(
            f"{name} is {what}; expected one of {', '.join(limits.formats)} "
            "(judged by the file's content, not its name).",
            code="unsupported_media_type",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError:
        raise ImageTooLargeError(
            f"{name} has too many pixels to decode safely; the limit is {limits.max_pixels / 1e6:.1f} megapixels."
        ) from None
    except Exception as exc:  # PIL raises many types for broken headers
        raise InvalidImageError(f"{name} is not a readable {fmt} image: {exc}") from None
    w, h = im.size
    if w * h > limits.max_pixels:
        raise ImageTooLargeError(
            f"{name} is {w}x{h} = {w * h / 1e6:.1f} megapixels; the limit is {limits.max_pixels / 1e6:.1f} megapixels."
        )
    if w < 1 or h < 1:
        raise InvalidImageError(f"{name} has an empty size {w}x{h}.")
    return im


def decode(
    data: bytes,
    *,
    limits: DecodeLimits = DEFAULT_LIMITS,
    min_side: int | None = None,
    name: str = "image",
) -> np.ndarray:
    """Decode encoded image bytes to an RGB uint8 array of shape ``(H, W, 3)``.

    Args:
        data: the encoded file content.
        limits: byte, pixel and format limits.
        min_side: when set, a JPEG may be decoded at a reduced scale (1/2, 1/4, 1/8 in the
            DCT domain) as long as its shorter side stays at least this many pixels.
        name: how the image is named in error messages.

    Example:
        >>> import io; from PIL import Image
        >>> buf = io.BytesIO(); Image.new("L", (4, 3)).save(buf, "PNG")
        >>> decode(buf.getvalue()).shape
        (3, 4, 3)
    """
    return decode_sized(data, limits=limits, min_side=min_side, name=name)[0]


def decode_sized(
    data: bytes,
    *,
    limits: DecodeLimits = DEFAULT_LIMITS,
    min_side: int | None = None,
    name: str = "image",
) -> tuple[np.ndarray, tuple[int, int]]:
    """Like :func:`decode`, plus the full-resolution ``(width, height)`` after EXIF orientation.

    A JPEG decoded at reduced scale is smaller than the image; boxes and masks are mapped back
    to the full-resolution size returned here.
    """
    im = open_image(data, limits, name)
    full = im.size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if min_side and im.format == "JPEG":
                _draft(im, min_side)
            im.seek(0)
            im.load()
            stored = im.size
            im = _apply_orientation(im, name)
            arr = to_rgb_array(im)
    except (InvalidImageError, MemoryError):
        raise
    except Exception as exc:  # truncated data, bad EXIF, broken streams
        raise InvalidImageError(f"{name} could not be decoded: {exc}") from None
    turned = stored[0] != stored[1] and (arr.shape[1], arr.shape[0]) == (stored[1], stored[0])
    return arr, (full[1], full[0]) if turned else full


def _apply_orientation(im: Image.Image, name: str) -> Image.Image:
    """Apply EXIF orientation; a malformed EXIF block leaves the pixels as stored.

    In place: without an orientation to apply, ``exif_transpose`` would otherwise return a
    copy of the whole image (0.4 ms for a 640x480 photo, a fifth of its decoding).
    """
    try:
        ImageOps.exif_transpose(im, in_place=True)
    except Exception as exc:  # broken EXIF must not reject a readable image
        log.warning("%s: ignoring malformed EXIF orientation (%s)", name, exc)
    return im


def _draft(im: Image.Image, min_side: int) -> None:
    w, h = im.size
    scale = max(1, min(w, h) // max(1, min_side))
    if scale >= 2:
        im.draft("RGB", (max(1, w // scale), max(1, h // scale)))


def load_image(
    path: str | Path,
    *,
    limits: DecodeLimits = DEFAULT_LIMITS,
    min_side: int | None = None,
) -> np.ndarray:
    """Read and decode an image file to RGB uint8 ``(H, W, 3)``; the file is not modified."""
    data = read_bytes(path, limits)
    return decode(data, limits=limits, min_side=min_side, name=str(path))


def image_size(path: str | Path, limits: DecodeLimits = DEFAULT_LIMITS) -> tuple[int, int]:
    """Width and height from the header only (EXIF rotation not applied)."""
    data = read_bytes(path, limits)
    im = open_image(data, limits, str(path))
    return im.size


def to_rgb_array(im: Image.Image) -> np.ndarray:
    """Normalize any PIL mode to an RGB uint8 array."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _gray_high_depth(im)
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        mode = im.mode
    if mode in ("LA", "La", "PA"):
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "RGBa"):
        return _composite_on_white(im.convert("RGBA"))
    if mode == "CMYK":
        im = _cmyk_to_rgb(im)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im, dtype=np.uint8).copy()


def _gray_high_depth(im: Image.Image) -> np.ndarray:
    arr = np.asarray(im)
    if arr.dtype.kind == "f":
        top = float(np.nanmax(arr)) if arr.size else 1.0
        scaled = arr * (255.0 if top <= 1.0 else 255.0 / max(top, 1e-12))
        gray = np.nan_to_num(scaled).clip(0, 255).round().astype(np.uint8)
    else:
        wide = arr.astype(np.int64)
        # 16-bit (also 16-bit stored in mode "I"): scale 0..65535 to 0..255, not clip.
        top = 65535 if wide.max(initial=0) <= 65535 else int(wide.max())
        gray = (np.clip(wide, 0, top) * 255 // top).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def _composite_on_white(im: Image.Image) -> np.ndarray:
    rgba = np.asarray(im, dtype=np.float32)
    alpha = rgba[..., 3:4] / 255.0
    rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return rgb.round().astype(np.uint8)


def _cmyk_to_rgb(im: Image.Image) -> Image.Image:
    # Adobe writes inverted CMYK JPEGs; PIL already handles the APP14 marker, so the
    # plain conversion is right for the files PIL can open.
    return im.convert("RGB")
