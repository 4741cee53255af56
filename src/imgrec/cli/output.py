"""Console output: the only place imgrec prints."""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, OverflowMethod
from rich.table import Table

from imgrec.errors import OutputError
from imgrec.imaging import DEFAULT_LIMITS

console = Console(highlight=False, soft_wrap=True)
error_console = Console(stderr=True, highlight=False, soft_wrap=True)


def add_max_pixels(parser: argparse.ArgumentParser) -> None:
    """``--max-pixels``: the one decode pixel limit, shared by ``predict`` and ``serve``."""
    parser.add_argument(
        "--max-pixels",
        type=pixel_count,
        help=f"refuse images over this many pixels, width x height (default {DEFAULT_LIMITS.max_pixels:_})",
    )


def pixel_count(text: str) -> int:
    """``--max-pixels``' value: a whole number >= 1 (0 or -1 refused every image as 'over -0.0 megapixels')."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of pixels >= 1, e.g. 100000000; received {text!r}")
    return value


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    key: int | None = 0,
    wrap: Collection[str] = (),
) -> Table:
    """A compact rich table that stays readable at 80 columns; numbers right-aligned.

    Args:
        title: shown above the table.
        columns: header names.
        rows: one sequence of values per row (None shows as ``-``).
        key: index of the column whose values are never wrapped or cut (names, paths).
        wrap: columns that wrap (descriptions, messages) and shrink first; when given, every
            other column keeps its values on one line. Empty: every column but the key wraps.
    """
    t = Table(
        title=title, title_justify="left", header_style="bold",
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
    )  # fmt: skip
    rows = [list(r) for r in rows]
    for i, col in enumerate(columns):
        numeric = bool(rows) and all(isinstance(r[i], int | float) for r in rows if r[i] is not None)
        one_line = i == key or (bool(wrap) and col not in wrap)
        overflow: OverflowMethod = "fold" if col in wrap else "ellipsis"
        t.add_column(col, justify="right" if numeric else "left", no_wrap=one_line, overflow=overflow)
    for r in rows:
        t.add_row(*[fmt(v) for v in r])
    return t


def shorten_path(path: str, width: int) -> str:
    """``path`` in at most ``width`` characters, cut from the left so the file name survives.

    Example:
        >>> shorten_path("/data/photos/2024/summer/cat.jpg", 18)
        '…/summer/cat.jpg'
        >>> shorten_path("/data/a-very-long-file-name.jpg", 10)
        '…/a-very-long-file-name.jpg'
    """
    if len(path) <= width:
        return path
    parts = path.split("/")
    kept = parts[-1]
    for part in reversed(parts[:-1]):
        if len(part) + len(kept) + 3 > width:
            break
        kept = f"{part}/{kept}"
    return f"…/{kept}"


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)


def to_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    w.writerows(rows)
    return buf.getvalue()


def write_text(path: str | Path, text: str) -> Path:
    """Write a user-requested output file, mapping failures to exit 73."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"Cannot write {p}: {exc.strerror or exc}") from None
    return p
