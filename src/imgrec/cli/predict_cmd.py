"""``imgrec predict RUN inputs... --top-k 3 --format table|json|csv [--threshold 0.6]``."""

from __future__ import annotations

import argparse
from typing import Any

from imgrec.cli.output import console, table, to_csv, to_json, write_text
from imgrec.types import ItemError, Prediction


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict images, folders or glob patterns with a trained run")
    p.add_argument("run", help="run directory")
    p.add_argument("inputs", nargs="+", help="image files, folders, or quoted glob patterns like '*.png'")
    p.add_argument("--top-k", type=int, default=1)
    p.add_argument("--threshold", type=float, help="below this probability the label is 'unknown'")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--backend",
        default="auto",
        help="auto (model.onnx when exported, else the run's own), torch, classical, onnx or onnx-int8",
    )
    p.add_argument("--out", help="write the output to this file instead of the terminal")
    p.add_argument("--threads", type=int, help="CPU threads for the model math (default: one per physical core)")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from imgrec.inference import Predictor, collect_images

    predictor = Predictor.from_run(args.run, backend=args.backend, threads=args.threads)
    paths = collect_images(args.inputs)
    results = predictor.predict(paths, top_k=args.top_k, threshold=args.threshold, batch_size=args.batch_size)
    text = render(results, args.format, args.top_k)
    if args.out:
        write_text(args.out, text if isinstance(text, str) else to_json([r.to_dict() for r in results]))
        console.print(f"wrote {len(results)} prediction(s) to {args.out}")
    elif isinstance(text, str):
        console.out(text, end="" if text.endswith("\n") else "\n", highlight=False)
    else:
        console.print(text)
    return 0


def render(results: list[Prediction | ItemError], fmt: str, top_k: int) -> Any:
    """JSON text, CSV text, or a rich table."""
    if fmt == "json":
        return to_json([r.to_dict() for r in results])
    cols = ["path", "label", "score", *[f"top{k}" for k in range(2, top_k + 1)], "error"]
    rows = [_row(r, top_k) for r in results]
    if fmt == "csv":
        return to_csv(cols, rows)
    return table(None, cols, rows)


def _row(r: Prediction | ItemError, top_k: int) -> list[Any]:
    if isinstance(r, ItemError):
        return [r.path, None, None, *[None] * (top_k - 1), f"{r.code}: {r.message}"]
    rest: list[str | None] = [f"{c.label} {c.score:.3f}" for c in r.top_k[1:top_k]]
    rest += [None] * (top_k - 1 - len(rest))
    return [r.path, r.label, round(r.score, 4), *rest, None]
