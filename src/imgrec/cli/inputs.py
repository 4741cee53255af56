"""What ``imgrec predict`` was asked to read: files, folders, globs, http(s) URLs and ``-`` (stdin).

Each argument becomes :class:`Source` s named as the user wrote them (a path, the URL,
``<stdin>``). An input that cannot be read becomes a Source holding its error, so the others
are still predicted and the failure is reported in its row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from imgrec.errors import ImgrecError, MissingInputError, UsageError
from imgrec.imaging import IMAGE_SUFFIXES, DecodeLimits

STDIN = "-"
STDIN_NAME = "<stdin>"


@dataclass(frozen=True)
class Source:
    """One image to predict: a file path or downloaded bytes, or the error that stopped it."""

    name: str
    item: str | bytes | None = None
    error: ImgrecError | None = None


@dataclass(frozen=True)
class Fetching:
    """How URLs and stdin are read."""

    limits: DecodeLimits
    stdin: BinaryIO | None = None
    allow_private: bool = False
    timeout_s: float = 10.0


def gather(arguments: Iterable[str], how: Fetching) -> list[Source]:
    """Every image the arguments name, in order, each once."""
    out: dict[str, Source] = {}
    for arg in arguments:
        for source in _expand(arg, how):
            out.setdefault(source.name, source)
    return list(out.values())


def _expand(arg: str, how: Fetching) -> list[Source]:
    from imgrec.imaging.fetch import is_url

    if arg == STDIN:
        return [_read_stdin(how)]
    if is_url(arg):
        return [_download(arg, how)]
    from imgrec.inference import collect_images

    try:
        paths = collect_images([arg])
    except MissingInputError as exc:
        return [Source(arg, error=exc)]
    if not paths:
        suffixes = ", ".join(IMAGE_SUFFIXES)
        return [Source(arg, error=MissingInputError(f"No image in {arg} (looked for {suffixes} files)."))]
    return [Source(path, path) for path in paths]


def _read_stdin(how: Fetching) -> Source:
    from imgrec.imaging.fetch import read_stream

    if how.stdin is None or how.stdin.isatty():
        raise UsageError(
            "`-` reads one image from stdin, but stdin is a terminal; pipe an image in: "
            "imgrec predict RUN - < cat.jpg"
        )
    try:
        return Source(STDIN_NAME, read_stream(how.stdin, how.limits, STDIN_NAME))
    except ImgrecError as exc:
        return Source(STDIN_NAME, error=exc)


def _download(url: str, how: Fetching) -> Source:
    from imgrec.imaging.fetch import fetch_url

    try:
        data = fetch_url(url, limits=how.limits, timeout_s=how.timeout_s, allow_private=how.allow_private)
    except ImgrecError as exc:
        return Source(url, error=exc)
    return Source(url, data)


def failures_exit_code(results: list, sources: list[Source], verb: str = "failed") -> int:
    """The exit code of a command that processed every input it could: 0 when none failed, 66
    when the only failures are inputs that do not exist, else 65; says how many failed."""
    from imgrec.cli.output import error_console
    from imgrec.types import ItemError

    failed = [r for r in results if isinstance(r, ItemError)]
    if not failed:
        return 0
    error_console.print(f"[yellow]{len(failed)} of {len(results)} input(s) {verb}[/] (see their error rows).",
                        highlight=False)  # fmt: skip
    missing = [s for s in sources if s.error is not None and s.error.exit_code == 66]
    return 66 if len(missing) == len(failed) else 65
