"""Instance masks (``imgrec segment``): a table (one row per mask) or JSON (COCO RLE per mask),
overlays (``--save``) and index-mask PNGs (``--masks``: value k = the image's k-th instance)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from imgrec.cli.output import shorten_path, table, to_json, write_text
from imgrec.tasks.instance import Instances
from imgrec.types import ItemError


def emit_instances(results: list[Any], args: argparse.Namespace, console: Any) -> None:
    """Print (or write with ``--out``) the results as a table or JSON."""
    fmt = "json" if args.out and args.format == "table" else args.format
    out = render_instances(results, fmt, width=console.width)
    if args.out:
        write_text(args.out, str(out))
        console.print(f"wrote the masks of {len(results)} image(s) to {args.out}")
    elif isinstance(out, str):
        console.out(out, end="" if out.endswith("\n") else "\n", highlight=False)
    else:
        console.print(out)


def render_instances(results: list[Any], fmt: str, width: int = 80) -> Any:
    """JSON (per image: its size and every instance with its RLE) or a table (one row per mask)."""
    if fmt == "json":
        return to_json([r.to_dict() for r in results])
    rows = [row for r in results for row in _rows(r)]
    cols = ["path", "#", "label", "score", "area", "box", "detector", "error"]
    keep = [i for i, c in enumerate(cols) if c in ("path", "#", "label", "score", "area", "box")
            or any(row[i] is not None for row in rows)]  # fmt: skip
    room = max(16, width // 4)
    rows = [[shorten_path(str(r[0]), room), *r[1:]] for r in rows]
    return table(None, [cols[i] for i in keep], [[r[i] for i in keep] for r in rows], key=0, wrap=("error",))


def _rows(r: Any) -> list[list[Any]]:
    if isinstance(r, ItemError):
        return [[r.path, None, None, None, None, None, None, f"{r.code}: {r.message}"]]
    if not len(r):
        return [[r.path, 0, "(nothing)", None, None, None, None, None]]
    out = []
    for k, d in enumerate(r.instances, 1):
        box = ", ".join(f"{v:.0f}" for v in d.box)
        det = d.extra.get("detector_score")
        out.append([r.path, k, d.label, f"{d.score:.3f}", d.area, box, None if det is None else f"{det:.3f}", None])
    return out


def save_overlays(results: list[Any], items: dict[str, Any], folder: str, console: Any) -> None:
    """Write every image with its masks tinted and boxes captioned, as ``DIR/<name>.jpg``."""
    from imgrec.tasks.segment_draw import draw_instances

    written = _write_each(results, Path(folder), ".jpg", lambda r: _jpeg(draw_instances(full_image(r, items), r)))
    console.print(f"wrote {written} overlay(s) to {folder}")


def save_masks(results: list[Any], folder: str, console: Any) -> None:
    """Write every image's instances as one index PNG, ``DIR/<name>.png``: 0 = none, k = the k-th
    instance (smaller masks over larger ones where they overlap)."""
    written = _write_each(results, Path(folder), ".png", instance_png)
    console.print(f"wrote {written} mask(s) to {folder}")


def instance_png(found: Instances) -> bytes:
    """The index PNG of one image's instances (palette PNG up to 255 instances, else 16-bit)."""
    import numpy as np

    from imgrec.imaging.masks import encode_mask_png, label_palette

    w, h = found.image_size
    index = np.zeros((h, w), np.uint8 if len(found) < 255 else np.uint16)
    for k in sorted(range(len(found)), key=lambda i: -found.instances[i].area):
        index[found.instances[k].mask()] = k + 1
    return encode_mask_png(index, label_palette() if index.dtype == np.uint8 else None)


def _write_each(results: list[Any], folder: Path, suffix: str, encode: Any) -> int:
    from imgrec.files import write_bytes_atomic

    written = 0
    for r in results:
        if isinstance(r, Instances) and r.path is not None:
            write_bytes_atomic(folder / f"{_stem(r.path, written)}{suffix}", encode(r))
            written += 1
    return written


def _stem(name: str, n: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0])[:80]
    return stem or f"image-{n}"


def full_image(r: Instances, items: dict[str, Any]) -> Any:
    """The full-resolution image a result was made on (its downloaded bytes, or its file)."""
    from imgrec.imaging import decode, load_image

    item = items.get(str(r.path), str(r.path))
    return decode(item) if isinstance(item, bytes) else load_image(item)


def _jpeg(image: Any) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=90)
    return buf.getvalue()
