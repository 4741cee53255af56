"""``imgrec predict`` on a segmentation run: masks as JSON (COCO RLE per class), a table or CSV
(the classes present with their share of the pixels), overlays (``--save``) and index-mask PNGs
(``--masks``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from imgrec.cli.detect_output import OutputNames
from imgrec.cli.output import shorten_path, table, to_csv, to_json, write_text
from imgrec.errors import UsageError
from imgrec.imaging import DecodeLimits
from imgrec.tasks.segment import Segmentation
from imgrec.types import ItemError


def shares(seg: Segmentation) -> list[tuple[str, float, int]]:
    """``(label, share of the image's pixels, pixels)`` per class present, largest first."""
    import numpy as np

    counts = np.bincount(seg.mask.reshape(-1), minlength=len(seg.classes))[: len(seg.classes)]
    total = max(1, int(seg.mask.size))
    found = [(seg.classes[c], int(counts[c]) / total, int(counts[c])) for c in np.flatnonzero(counts).tolist()]
    return sorted(found, key=lambda t: -t[1])


def emit_segmentation(results: list[Any], args: argparse.Namespace, console: Any) -> None:
    """Print (or write with ``--out``) segmentation results in the chosen format."""
    if args.format == "coco":
        raise UsageError("--format coco is for detection runs; a segmentation run answers json (COCO RLE per "
                         "class), table or csv.")  # fmt: skip
    fmt = "json" if args.out and args.format == "table" else args.format
    out = render_segmentation(results, fmt, width=console.width)
    if args.out:
        write_text(args.out, str(out))
        console.print(f"wrote the masks of {len(results)} image(s) to {args.out}")
    elif isinstance(out, str):
        console.out(out, end="" if out.endswith("\n") else "\n", highlight=False)
    else:
        console.print(out)


def render_segmentation(results: list[Any], fmt: str, width: int = 80) -> Any:
    """JSON (per image: its size and, per class present, a COCO RLE), CSV (one row per class
    present) or a table (one row per image: the classes with their pixel share)."""
    if fmt == "json":
        return to_json([r.to_dict() for r in results])
    if fmt == "csv":
        rows = [row for r in results for row in _csv_rows(r)]
        return to_csv(["path", "label", "share", "pixels", "error"], rows)
    rows = [_table_row(r) for r in results]
    cols = ["path", "size", "classes (share of pixels)", "error"]
    if all(r[-1] is None for r in rows):
        cols, rows = cols[:-1], [r[:-1] for r in rows]
    room = max(16, width // 3)
    rows = [[shorten_path(str(r[0]), room), *r[1:]] for r in rows]
    return table(None, cols, rows, key=0, wrap=("classes (share of pixels)", "error"))


def _table_row(r: Any) -> list[Any]:
    if isinstance(r, ItemError):
        return [r.path, None, None, f"{r.code}: {r.message}"]
    found = ", ".join(f"{label} {100 * share:.1f}%" for label, share, _ in shares(r))
    return [r.path, f"{r.image_size[0]}x{r.image_size[1]}", found, None]


def _csv_rows(r: Any) -> list[list[Any]]:
    if isinstance(r, ItemError):
        return [[r.path, None, None, None, f"{r.code}: {r.message}"]]
    return [[r.path, label, round(share, 6), pixels, None] for label, share, pixels in shares(r)]


def save_overlays(
    results: list[Any], items: dict[str, Any], folder: str, console: Any, limits: DecodeLimits | None = None
) -> None:
    """Write every segmented image with its classes tinted, as ``DIR/<name>.jpg`` (decoded within
    ``limits``, the prediction's own)."""
    from imgrec.tasks.segment_draw import draw_segmentation

    draw = lambda r: jpeg_bytes(draw_segmentation(full_image(r, items, limits), r))  # noqa: E731
    written = write_each(results, Segmentation, Path(folder), ".jpg", draw)
    console.print(f"wrote {written} overlay(s) to {folder}")


def save_masks(results: list[Any], folder: str, console: Any) -> None:
    """Write every mask as an index PNG (palette PNG, VOC colours; value = class index), ``DIR/<name>.png``."""
    written = write_each(results, Segmentation, Path(folder), ".png", lambda r: r.to_png())
    console.print(f"wrote {written} mask(s) to {folder}")


def write_each(results: list[Any], kind: type, folder: Path, suffix: str, encode: Any) -> int:
    """Write ``encode(r)`` for every result of type ``kind`` as ``folder/<name><suffix>`` (names made
    unique: ``x``, ``x-2``, ...); the count."""
    from imgrec.files import write_bytes_atomic

    written, names = 0, OutputNames()
    for r in results:
        path = getattr(r, "path", None) if isinstance(r, kind) else None
        if path is not None:
            write_bytes_atomic(folder / f"{names(path, written)}{suffix}", encode(r))
            written += 1
    return written


def full_image(r: Any, items: dict[str, Any], limits: DecodeLimits | None = None) -> Any:
    """The full-resolution image a result was made on (its downloaded bytes, or its file), decoded
    within ``limits`` (the prediction's: ``--max-pixels``; None: the defaults)."""
    from imgrec.imaging import DEFAULT_LIMITS, decode, load_image

    item = items.get(str(r.path), str(r.path))
    lim = limits or DEFAULT_LIMITS
    return decode(item, limits=lim) if isinstance(item, bytes) else load_image(item, limits=lim)


def jpeg_bytes(image: Any) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=90)
    return buf.getvalue()
