"""The safe decode path: every mode to RGB uint8, EXIF, formats, limits, broken files."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgrec.errors import ImageTooLargeError, InvalidImageError, MissingInputError
from imgrec.imaging import DecodeLimits, decode, image_size, load_image, sniff_format


def _encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def test_gray_l() -> None:
    out = decode(_encode(Image.new("L", (5, 3), 77), "PNG"))
    assert out.shape == (3, 5, 3) and out.dtype == np.uint8 and np.all(out == 77)


def test_la_and_rgba_composite_on_white() -> None:
    la = decode(_encode(Image.new("LA", (2, 2), (0, 0)), "PNG"))
    assert np.all(la == 255)  # fully transparent black -> white
    rgba = decode(_encode(Image.new("RGBA", (2, 2), (255, 0, 0, 128)), "PNG"))
    assert rgba[0, 0].tolist() == [255, 127, 127]


def test_palette_with_transparency() -> None:
    im = Image.new("P", (4, 1))
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    im.putdata([0, 1, 1, 0])
    out = decode(_encode(im, "PNG", transparency=1))
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 1].tolist() == [255, 255, 255]
    opaque = decode(_encode(im, "PNG"))
    assert opaque[0, 1].tolist() == [0, 0, 255]


def test_cmyk_jpeg() -> None:
    out = decode(_encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95))
    assert out.shape == (8, 8, 3)
    r, g, b = out[4, 4].astype(int)
    assert r > 200 and g < 60 and b < 60  # no cyan, full magenta and yellow: red


def test_16bit_png_is_scaled_not_clipped() -> None:
    arr = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    im = Image.fromarray(arr)
    assert im.mode.startswith("I;16")
    out = decode(_encode(im, "PNG"))
    assert out[0, :, 0].tolist() == [0, 3, 127, 255]


def test_1bit() -> None:
    im = Image.new("1", (3, 1))
    im.putpixel((1, 0), 1)
    out = decode(_encode(im, "PNG"))
    assert out[0, :, 0].tolist() == [0, 255, 0]


def test_exif_orientation_6_is_applied() -> None:
    im = Image.new("RGB", (40, 20), "blue")
    im.paste((255, 0, 0), (0, 0, 5, 5))  # red top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = decode(_encode(im, "JPEG", exif=exif, quality=95))
    assert out.shape == (40, 20, 3)
    assert out[1, -2, 0] > 200 and out[1, 1, 0] < 60  # red is now top-right


def test_gif_first_frame() -> None:
    frames = [Image.new("RGB", (6, 6), c) for c in ("red", "blue")]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert decode(data)[3, 3].tolist() == [255, 0, 0]


@pytest.mark.parametrize("fmt", ["WEBP", "BMP", "TIFF"])
def test_other_formats(fmt: str) -> None:
    im = Image.new("RGB", (9, 7), (10, 200, 30))
    data = _encode(im, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    assert sniff_format(data[:16]) == fmt
    out = decode(data)
    assert out.shape == (7, 9, 3) and out[3, 3].tolist() == [10, 200, 30]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


@pytest.mark.parametrize("side", [10_000, 100_000])
def test_decompression_bomb_refused_from_header(side: int) -> None:
    # a valid header claiming side x side pixels and a few bytes of data: refused from the
    # header (decoding would fail differently, on the missing data)
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    with pytest.raises(ImageTooLargeError) as err:
        decode(data)
    assert err.value.code == "image_too_large"
    if side == 10_000:
        assert "100.0 megapixels" in str(err.value)


def test_byte_limit() -> None:
    data = _encode(Image.new("RGB", (64, 64)), "BMP")
    with pytest.raises(ImageTooLargeError):
        decode(data, limits=DecodeLimits(max_bytes=1000))


def test_truncated_jpeg() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = _encode(Image.fromarray(noise), "JPEG", quality=90)
    with pytest.raises(InvalidImageError) as err:
        decode(data[: len(data) // 2])
    assert err.value.code == "image_invalid"


def test_text_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "note.jpg"
    path.write_text("hello, I am not an image")
    with pytest.raises(InvalidImageError) as err:
        load_image(path)
    assert err.value.code == "unsupported_media_type"


def test_missing_path_and_directory(tmp_path: Path) -> None:
    with pytest.raises(MissingInputError):
        load_image(tmp_path / "missing.png")
    with pytest.raises(InvalidImageError):
        load_image(tmp_path)


def test_source_file_is_not_modified(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (30, 20), "green").save(path, exif=exif)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    mtime = path.stat().st_mtime_ns
    assert load_image(path).shape == (30, 20, 3)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before and path.stat().st_mtime_ns == mtime


def test_draft_decoding_of_large_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    Image.new("RGB", (1600, 1200), "white").save(path, quality=80)
    full = load_image(path)
    small = load_image(path, min_side=200)
    assert full.shape == (1200, 1600, 3)
    assert min(small.shape[:2]) >= 200 and small.shape[0] < full.shape[0]
    assert image_size(path) == (1600, 1200)
