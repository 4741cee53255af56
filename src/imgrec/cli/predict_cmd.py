"""``imgrec predict RUN inputs... --top-k 3 --format table|json|csv [--threshold 0.6]``.

Detection runs take ``--conf --iou --max-det --classes --save DIR``; segmentation runs
``--threshold --classes --save DIR --masks DIR`` (:mod:`imgrec.cli.segment_output`).

Inputs are files, folders, glob patterns, http(s) URLs and ``-`` (one image on stdin). Every
input that can be predicted is; the others are error rows. The exit code is 0 when all were
predicted, 66 when the only failures are inputs that do not exist, 65 otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING, Any

from imgrec.cli.detect_output import add_detection_options, emit_detections, save_annotated, task_options
from imgrec.cli.embed_output import embed_options, emit_embeddings
from imgrec.cli.inputs import Fetching, Source, failures_exit_code, gather
from imgrec.cli.output import (
    add_max_pixels,
    console,
    fmt,
    shorten_path,
    table,
    to_csv,
    to_json,
    write_text,
)
from imgrec.errors import UsageError
from imgrec.imaging import DEFAULT_LIMITS, DecodeLimits
from imgrec.types import ItemError, Prediction

if TYPE_CHECKING:
    from imgrec.inference import Predictor

EXIT_BAD_DATA, EXIT_MISSING = 65, 66
Result = Prediction | ItemError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict images, folders, glob patterns, URLs or stdin with a trained run")
    p.add_argument("run", help="run directory")
    p.add_argument(
        "inputs",
        nargs="+",
        help="image files, folders, quoted glob patterns like '*.png', http(s) URLs, or - for one image on stdin",
    )
    p.add_argument("--top-k", type=int, default=1)
    p.add_argument(
        "--threshold",
        type=float,
        help="classify: below this probability the label is 'unknown' (column top1 names the class); "
        "segment (one-channel models) and instance runs: the mask probability threshold (0.5)",
    )
    p.add_argument(
        "--format",
        choices=("table", "json", "csv", "coco"),
        default="table",
        help="table, json, csv; coco: COCO results JSON (detection and instance runs); segment: json = COCO RLE "
        "per class, table/csv = the classes present with their share of the pixels",
    )
    add_detection_options(p)
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="images per model call (default: the task's, 32 classify / 8 detect and segment)",
    )
    p.add_argument(
        "--backend",
        default="auto",
        help="auto (model.onnx when exported, else the run's own), torch, classical, onnx or onnx-int8",
    )
    p.add_argument("--out", help="write the output to this file instead of the terminal")
    p.add_argument("--threads", type=int, help="CPU threads for the model math (default: one per physical core)")
    add_max_pixels(p)
    p.add_argument(
        "--allow-private-urls",
        action="store_true",
        help="also download from loopback, private and link-local addresses (refused by default)",
    )
    p.add_argument("--url-timeout", type=float, default=10.0, help="seconds one URL may take to download (10)")
    p.set_defaults(func=cmd_predict)


def decode_limits(args: argparse.Namespace) -> DecodeLimits:
    """The decode limits of this invocation (``--max-pixels`` over the defaults)."""
    if args.max_pixels is None:
        return DEFAULT_LIMITS
    return dataclasses.replace(DEFAULT_LIMITS, max_pixels=args.max_pixels)


def cmd_predict(args: argparse.Namespace) -> int:
    from imgrec.inference import Predictor

    predictor = Predictor.from_run(args.run, backend=args.backend, threads=args.threads)
    task = predictor.task.name
    options = embed_options(args) if task == "embed" else task_options(task, args)
    predictor.options(**options)  # checks the options before any download
    limits = decode_limits(args)
    how = Fetching(limits, getattr(sys.stdin, "buffer", None), args.allow_private_urls, args.url_timeout)
    sources = gather(args.inputs, how)
    results = predict_sources(predictor, sources, args, limits, options)
    items = {s.name: s.item for s in sources if s.item is not None}
    if task == "embed":
        emit_embeddings(results, args, console)
    elif task == "detect":
        emit_detections(results, args, console)
        if args.save:
            save_annotated(results, items, args.save, console, limits)
    elif task in ("segment", "instance"):
        _emit_masks(task, results, args, items, limits)
    else:
        _emit(results, args, min(args.top_k, len(predictor.classes)))
    return _report_failures(results, sources)


def _emit_masks(
    task: str, results: list[Any], args: argparse.Namespace, items: dict[str, Any], limits: DecodeLimits
) -> None:
    """Segment and instance runs: the table or JSON, then ``--save`` overlays and ``--masks`` PNGs."""
    from imgrec.cli import instances_output, segment_output

    out: Any = segment_output if task == "segment" else instances_output
    (out.emit_segmentation if task == "segment" else out.emit_instances)(results, args, console)
    if args.save:
        out.save_overlays(results, items, args.save, console, limits)
    if args.masks:
        out.save_masks(results, args.masks, console)


def predict_sources(
    predictor: Predictor, sources: list[Source], args: argparse.Namespace, limits: DecodeLimits,
    options: dict[str, Any] | None = None,
) -> list[Any]:  # fmt: skip
    """One result per source, in order, each named as the user named its input."""
    items = [s.item for s in sources if s.item is not None and s.error is None]
    opts = options if options is not None else {"top_k": args.top_k, "threshold": args.threshold}
    preds = iter(predictor.predict(items, batch_size=args.batch_size, limits=limits, **opts))
    out: list[Result] = []
    for s in sources:
        if s.error is not None:
            out.append(ItemError(code=s.error.code, message=str(s.error), path=s.name))
        else:
            out.append(dataclasses.replace(next(preds), path=s.name))
    return out


def _emit(results: list[Result], args: argparse.Namespace, top_k: int) -> None:
    if args.format == "coco":
        raise UsageError("--format coco is for detection runs; this run classifies (use json or csv).")
    top1 = args.threshold is not None
    if args.out:
        text = render(results, "json" if args.format == "table" else args.format, top_k, top1=top1)
        write_text(args.out, str(text))
        console.print(f"wrote {len(results)} prediction(s) to {args.out}")
        return
    out = render(results, args.format, top_k, top1=top1, width=console.width)
    if isinstance(out, str):
        console.out(out, end="" if out.endswith("\n") else "\n", highlight=False)
    else:
        console.print(out)


def _report_failures(results: list[Result], sources: list[Source]) -> int:
    return failures_exit_code(results, sources, "could not be predicted")


def columns(top_k: int, top1: bool) -> list[str]:
    """``path, label, score``, the ranked classes (``top1`` first with a threshold), ``error``."""
    first = 1 if top1 else 2
    return ["path", "label", "score", *[f"top{k}" for k in range(first, top_k + 1)], "error"]


def render(results: list[Result], fmt: str, top_k: int, *, top1: bool = False, width: int = 80) -> Any:
    """JSON text, CSV text, or a rich table that fits ``width`` columns.

    Args:
        results: predictions and error rows.
        fmt: "json", "csv" or "table".
        top_k: ranked classes per row (at most the model's classes).
        top1: also name the best class in its own column (with ``--threshold``, where the
            label may be ``unknown``).
        width: the terminal's width; table paths are shortened from the left to fit.
    """
    if fmt == "json":
        return to_json([r.to_dict() for r in results])
    cols = columns(top_k, top1)
    rows = [_row(r, top_k, top1) for r in results]
    if fmt == "csv":
        return to_csv(cols, rows)
    return _table(cols, rows, width)


def _row(r: Result, top_k: int, top1: bool) -> list[Any]:
    ranked = top_k if top1 else top_k - 1
    if isinstance(r, ItemError):
        return [r.path, None, None, *[None] * ranked, f"{r.code}: {r.message}"]
    shown = r.top_k[:top_k] if top1 else r.top_k[1:top_k]
    rest: list[str | None] = [f"{c.label} {c.score:.3f}" for c in shown]
    rest += [None] * (ranked - len(rest))
    return [r.path, r.label, round(r.score, 4), *rest, None]


def _table(cols: list[str], rows: list[list[Any]], width: int) -> Any:
    if all(r[-1] is None for r in rows):  # no error: no empty column in the terminal
        cols, rows = cols[:-1], [r[:-1] for r in rows]
    room = _path_room(cols, rows, width)
    rows = [[shorten_path(str(r[0]), room), *r[1:]] for r in rows]
    ranked = [c for c in cols if c.startswith("top")]
    return table(None, cols, rows, key=0, wrap=(*ranked, "error"))


def _path_room(cols: list[str], rows: list[list[Any]], width: int) -> int:
    """Characters left for the path once the other columns (and some error text) have theirs."""
    widths = [max([len(c), *(len(fmt(r[i])) for r in rows)]) for i, c in enumerate(cols)]
    others = sum(w for w, c in zip(widths, cols, strict=True) if c not in ("path", "error"))
    error_room = 24 if "error" in cols else 0
    return max(16, width - others - error_room - 2 * (len(cols) - 1))
