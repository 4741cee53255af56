"""``imgrec predict`` on an embed run: embeddings as JSON (the vectors), CSV (one column per
value) or a table (path, embedder, dimension and the first values)."""

from __future__ import annotations

import argparse
from typing import Any

from imgrec.cli.output import shorten_path, table, to_csv, to_json, write_text
from imgrec.errors import UsageError
from imgrec.types import ItemError

SHOWN = 4  # values per vector in the table


def embed_options(args: argparse.Namespace) -> dict[str, Any]:
    """An embed run takes no prediction option: the classifier and detector flags are refused."""
    flags = {"--top-k": args.top_k != 1, "--threshold": args.threshold is not None,
             **{f"--{k.replace('_', '-')}": getattr(args, k, None) is not None
                for k in ("conf", "iou", "max_det", "classes", "save")}}  # fmt: skip
    given = [k for k, v in flags.items() if v]
    if given:
        raise UsageError(f"{', '.join(given)} do not apply to an embed run; it gives one vector per image.")
    return {}


def render_embeddings(results: list[Any], fmt: str, width: int = 80) -> Any:
    """JSON text, CSV text (``path, embedder, e0 .. e{D-1}, error``) or a rich table."""
    if fmt == "coco":
        raise UsageError("--format coco is for detection runs; this run embeds (use json or csv).")
    if fmt == "json":
        return to_json([r.to_dict() for r in results])
    dim = max((r.dim for r in results if not isinstance(r, ItemError)), default=0)
    if fmt == "csv":
        rows = [[r.path, None, *[None] * dim, f"{r.code}: {r.message}"] if isinstance(r, ItemError) else
                [r.path, r.embedder, *[f"{v:.7g}" for v in r.vector], None] for r in results]  # fmt: skip
        return to_csv(["path", "embedder", *[f"e{i}" for i in range(dim)], "error"], rows)
    room = max(16, width - 60)
    rows = [[shorten_path(str(r.path), room), None, None, None, f"{r.code}: {r.message}"] if isinstance(r, ItemError)
            else [shorten_path(str(r.path), room), r.embedder, r.dim,
                  " ".join(f"{v:+.3f}" for v in r.vector[:SHOWN]) + " ...", None] for r in results]  # fmt: skip
    cols = ["path", "embedder", "dim", "vector (unit length)", "error"]
    if all(r[-1] is None for r in rows):
        cols, rows = cols[:-1], [r[:-1] for r in rows]
    return table(None, cols, rows, key=0, wrap=("error",))


def emit_embeddings(results: list[Any], args: argparse.Namespace, console: Any) -> None:
    """Print (or with ``--out`` write, as JSON unless ``--format csv``) the embeddings."""
    if args.out:
        write_text(args.out, str(render_embeddings(results, "csv" if args.format == "csv" else "json")))
        console.print(f"wrote {len(results)} embedding(s) to {args.out}")
        return
    out = render_embeddings(results, args.format, console.width)
    if isinstance(out, str):
        console.out(out, end="" if out.endswith("\n") else "\n", highlight=False)
    else:
        console.print(out)
