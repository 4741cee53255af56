"""Instance masks (``imgrec segment``): a table (one row per mask) or JSON (COCO RLE per mask),
overlays (``--save``) and index-mask PNGs (``--masks``: value k = the image's k-th instance)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from imgrec.cli.output import shorten_path, table, to_csv, to_json, write_text
from imgrec.cli.segment_output import full_image, jpeg_bytes, write_each
from imgrec.imaging import DecodeLimits
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
    """JSON (per image: its size and every instance with its RLE), COCO results JSON, CSV or a
    table (one row per mask)."""
    if fmt == "json":
        return to_json([r.to_dict() for r in results])
    if fmt == "coco":
        from imgrec.cli.detect_output import coco_results

        return to_json(coco_results(results))
    rows = [row for r in results for row in _rows(r)]
    cols = ["path", "#", "label", "score", "area", "box", "detector", "error"]
    if fmt == "csv":
        return to_csv(cols, rows)
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


def save_overlays(
    results: list[Any], items: dict[str, Any], folder: str, console: Any, limits: DecodeLimits | None = None
) -> None:
    """Write every image with its masks tinted and boxes captioned, as ``DIR/<name>.jpg``."""
    from imgrec.tasks.segment_draw import draw_instances

    draw = lambda r: jpeg_bytes(draw_instances(full_image(r, items, limits), r))  # noqa: E731
    written = write_each(results, Instances, Path(folder), ".jpg", draw)
    console.print(f"wrote {written} overlay(s) to {folder}")


def save_masks(results: list[Any], folder: str, console: Any) -> None:
    """Write every image's instances as one index PNG, ``DIR/<name>.png``: 0 = none, k = the k-th
    instance (smaller masks over larger ones where they overlap)."""
    written = write_each(results, Instances, Path(folder), ".png", Instances.to_png)
    console.print(f"wrote {written} mask(s) to {folder}")
