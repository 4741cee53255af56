"""Privacy: every detected face blurred (or pixelated) over its whole box plus a margin.

Each image is decoded once through the one safe path (EXIF orientation applied, so the output
is upright and carries no metadata: no GPS, no camera serial), its faces are found on that
array, and the result is encoded in the input's format (JPEG at quality 95, PNG, WebP
lossless; other formats as PNG) and written atomically (temp file, fsync, rename). An image
without a face is written unchanged but for that re-encoding.

Example:
    >>> output_name("photos/a/b.bmp", "photos")
    'a/b.png'
    >>> # outcomes = blur_files(["photos/"], "blurred/", pixelate=True)
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.errors import ImgrecError, OutputError
from imgrec.files import write_bytes_atomic
from imgrec.imaging import DEFAULT_LIMITS, DecodeLimits, load_image
from imgrec.imaging.privacy import DEFAULT_MARGIN, obscure
from imgrec.inference import Predictor
from imgrec.tasks.detect import Detections
from imgrec.types import ItemError

_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}


@dataclass(frozen=True)
class Blurred:
    """One image written: where from, where to, and the faces hidden in it."""

    path: str
    out: str
    faces: Detections

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "out": self.out, "faces": len(self.faces),
                "boxes": [[round(v, 1) for v in d.box] for d in self.faces.detections]}  # fmt: skip


def output_name(path: str, root: str | None) -> str:
    """The output's relative name: ``path`` relative to the folder it was found in (else its
    file name), with a suffix imgrec can write (``.png`` for formats it does not encode)."""
    p = Path(path)
    rel = p.relative_to(root) if root and p.is_relative_to(root) else Path(p.name)
    return str(rel if rel.suffix.lower() in _FORMATS else rel.with_suffix(".png"))


def encode(image: np.ndarray, suffix: str) -> bytes:
    """The image in the format of ``suffix`` (JPEG q95, PNG, lossless WebP)."""
    from PIL import Image

    fmt = _FORMATS.get(suffix.lower(), "PNG")
    buf = io.BytesIO()
    extra: dict[str, Any] = {"quality": 95} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}
    Image.fromarray(image).save(buf, fmt, **extra)
    return buf.getvalue()


def blur_image(
    predictor: Predictor, image: np.ndarray, options: dict[str, Any], *, margin: float = DEFAULT_MARGIN,
    pixelate: bool = False,
) -> tuple[np.ndarray, Detections]:  # fmt: skip
    """``image`` with its faces hidden, and the faces."""
    (faces,) = predictor.predict(image, **options)
    return obscure(image, faces.boxes, margin=margin, pixelate=pixelate), faces


def blur_files(
    items: Sequence[tuple[str, str | None]], out_dir: str | Path, predictor: Predictor, options: dict[str, Any], *,
    margin: float = DEFAULT_MARGIN, pixelate: bool = False, limits: DecodeLimits = DEFAULT_LIMITS,
) -> list[Blurred | ItemError]:  # fmt: skip
    """Blur the faces of every ``(path, root)`` into ``out_dir``; an unreadable image is an error
    row and the others go on. ``root``: the folder the path was found in (kept as subfolders)."""
    out: list[Blurred | ItemError] = []
    for path, root in items:
        try:
            image = load_image(path, limits=limits)
            hidden, faces = blur_image(predictor, image, options, margin=margin, pixelate=pixelate)
            name = output_name(path, root)
            target = write_bytes_atomic(Path(out_dir) / name, encode(hidden, Path(name).suffix), what="blurred image")
        except OutputError:
            raise  # the output folder is the problem, not this image: stop (exit 73)
        except ImgrecError as exc:
            out.append(ItemError(code=exc.code, message=str(exc), path=path))
            continue
        out.append(Blurred(path, str(target), faces))
    return out
