"""``imgrec predict`` on a detection run: its options, and boxes as a table, JSON, CSV or COCO results."""

from __future__ import annotations

import argparse
from typing import Any

from imgrec.cli.output import shorten_path, table, to_csv, to_json, write_text
from imgrec.errors import UsageError
from imgrec.imaging import DecodeLimits
from imgrec.tasks.boxes import xyxy_to_xywh
from imgrec.tasks.detect import Detections
from imgrec.tasks.instance import Instances
from imgrec.types import ItemError

CLASSIFY_ONLY = ("top_k", "threshold")
DETECT_ONLY = ("conf", "iou", "max_det", "classes")


def add_detection_options(p: argparse.ArgumentParser) -> None:
    """``--conf --iou --max-det --classes --save`` (detection runs), ``--masks`` (segmentation runs)."""
    g = p.add_argument_group("detection and segmentation runs")
    g.add_argument("--conf", type=float, help="detect: least score of a box (default 0.25)")
    g.add_argument("--iou", type=float, help="detect: NMS IoU, a box overlapping a better one more goes (0.45)")
    g.add_argument("--max-det", type=int, help="detect: boxes per image at most (default 100)")
    g.add_argument("--classes", help="keep these classes only, comma-separated: person,dog")
    g.add_argument("--save", metavar="DIR", help="also write each image with its boxes / masks drawn into DIR")
    g.add_argument("--masks", metavar="DIR", help="segment: also write each mask as an index PNG into DIR")


def task_options(task: str, args: argparse.Namespace) -> dict[str, Any]:
    """The options of the run's task from the flags; a flag of another task is refused."""
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if getattr(args, "classes", None) else None
    detect = {
        "conf": args.conf,
        "iou": args.iou,
        "max_det": args.max_det,
        "classes": classes,
        "save": getattr(args, "save", None),
    }
    masks = getattr(args, "masks", None)
    if task == "detect":
        if args.top_k != 1 or args.threshold is not None or masks is not None:
            raise UsageError("--top-k, --threshold and --masks are not for detectors; a detection run takes --conf, "
                             "--iou, --max-det, --classes and --save.")  # fmt: skip
        detect.pop("save")
        return detect
    if task == "instance":
        if args.top_k != 1:
            raise UsageError("--top-k is not for instance segmentation runs; they take --conf, --iou, --max-det, "
                             "--classes, --threshold (mask probability), --save and --masks.")  # fmt: skip
        return {**{k: v for k, v in detect.items() if k != "save"}, "threshold": args.threshold}
    if task == "segment":
        given = [f"--{k.replace('_', '-')}" for k in ("conf", "iou", "max_det") if detect[k] is not None]
        if given or args.top_k != 1:
            shown = ", ".join(given + (["--top-k"] if args.top_k != 1 else []))
            raise UsageError(f"{shown}: not for segmentation runs; they take --threshold (one-channel models), "
                             "--classes, --save and --masks.")  # fmt: skip
        return {"threshold": args.threshold, "classes": classes}
    given = [f"--{k.replace('_', '-')}" for k, v in {**detect, "masks": masks}.items() if v is not None]
    if given:
        raise UsageError(f"{', '.join(given)} are for detection or segmentation runs; this run classifies "
                         "(use --top-k, --threshold).")  # fmt: skip
    return {"top_k": args.top_k, "threshold": args.threshold}


def save_annotated(
    results: list[Any], items: dict[str, Any], folder: str, console: Any, limits: DecodeLimits | None = None
) -> None:
    """Write every image that was predicted with its boxes drawn, as ``DIR/<name>.jpg`` (decoded within
    ``limits``, the prediction's own; None: the defaults)."""
    import io
    from pathlib import Path

    from PIL import Image

    from imgrec.files import write_bytes_atomic
    from imgrec.imaging import DEFAULT_LIMITS, decode, load_image
    from imgrec.tasks.detect_draw import draw_detections

    out, written, names = Path(folder), 0, OutputNames()
    for r in results:
        if not isinstance(r, Detections) or r.path is None:
            continue
        item = items.get(r.path, r.path)
        lim = limits or DEFAULT_LIMITS
        image = decode(item, limits=lim) if isinstance(item, bytes) else load_image(item, limits=lim)
        buf = io.BytesIO()
        Image.fromarray(draw_detections(image, r)).save(buf, "JPEG", quality=90)
        write_bytes_atomic(out / f"{names(r.path, written)}.jpg", buf.getvalue())
        written += 1
    console.print(f"wrote {written} annotated image(s) to {out}")


def safe_stem(name: str, n: int) -> str:
    import re

    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0])[:80]
    return stem or f"image-{n}"


class OutputNames:
    """File stems for the outputs of one command in one folder: each input's :func:`safe_stem`, made
    unique (``x``, ``x-2``, ...), so inputs of the same name (``a/x.jpg``, ``b/x.jpg``, ``x.png``) do
    not overwrite each other's output.

    Example:
        >>> names = OutputNames()
        >>> [names(p, k) for k, p in enumerate(["a/x.jpg", "b/x.jpg", "X.png", "x-2.jpg"])]
        ['x', 'x-2', 'X-3', 'x-2-2']
    """

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, name: str, n: int) -> str:
        stem = safe_stem(name, n)
        out, k = stem, 1
        while out.lower() in self.used:  # lower: case-insensitive file systems
            k += 1
            out = f"{stem}-{k}"
        self.used.add(out.lower())
        return out


def emit_detections(results: list[Any], args: argparse.Namespace, console: Any) -> None:
    """Print (or write with ``--out``) detection results in the chosen format."""
    fmt = "json" if args.out and args.format == "table" else args.format
    out = render_detections(results, fmt, width=console.width)
    if args.out:
        write_text(args.out, str(out))
        console.print(f"wrote the detections of {len(results)} image(s) to {args.out}")
    elif isinstance(out, str):
        console.out(out, end="" if out.endswith("\n") else "\n", highlight=False)
    else:
        console.print(out)


def render_detections(results: list[Any], fmt: str, width: int = 80) -> Any:
    """JSON (one object per image), CSV or a table (one row per box), or COCO results JSON."""
    if fmt == "json":
        return to_json([r.to_dict() for r in results])
    if fmt == "coco":
        return to_json(coco_results(results))
    cols = ["path", "label", "score", "x1", "y1", "x2", "y2", "error"]
    rows = [row for r in results for row in _rows(r)]
    if fmt == "csv":
        return to_csv(cols, rows)
    if all(r[-1] is None for r in rows):
        cols, rows = cols[:-1], [r[:-1] for r in rows]
    room = max(16, width - 52)
    rows = [[shorten_path(str(r[0]), room), *r[1:]] for r in rows]
    return table(None, cols, rows, key=0, wrap=("error",))


def _rows(r: Any) -> list[list[Any]]:
    if isinstance(r, ItemError):
        return [[r.path, None, None, None, None, None, None, f"{r.code}: {r.message}"]]
    if not len(r):
        return [[r.path, "(no objects)", None, None, None, None, None, None]]
    return [[r.path, d.label, round(d.score, 4), *(f"{v:.1f}" for v in d.box), None] for d in r.detections]


def coco_results(results: list[Any]) -> list[dict[str, Any]]:
    """COCO detection results: ``image`` (the input's name), ``category_id`` (the class index),
    ``category`` (its name), ``bbox`` ``[x, y, w, h]`` in pixels, ``score``; instance results add
    ``segmentation`` (the mask as a compressed RLE)."""
    out = []
    for r in results:
        if not isinstance(r, Detections | Instances):
            continue
        found: tuple[Any, ...] = r.detections if isinstance(r, Detections) else r.instances
        for d, xywh in zip(found, xyxy_to_xywh(r.boxes), strict=True):
            row = {"image": r.path, "category_id": d.class_id, "category": d.label,
                   "bbox": [round(float(v), 2) for v in xywh], "score": round(d.score, 6)}  # fmt: skip
            if isinstance(r, Instances):
                row["segmentation"] = d.to_dict()["mask"]
            out.append(row)
    return out
