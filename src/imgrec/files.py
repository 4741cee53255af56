"""Atomic file writes: temp file in the same folder, fsync, rename. The one helper every layer uses.

A reader (or a crash) never sees half a file under its final name: the rename is atomic on
POSIX file systems and on NTFS. A whole output folder is staged the same way
(:func:`staged_folder`): written into a hidden sibling, renamed into place only when complete.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a" / "x.json"
    >>> _ = write_json_atomic(p, {"ok": True}); p.read_text()
    '{\\n  "ok": true\\n}\\n'
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from imgrec.errors import OutputError


def write_bytes_atomic(path: str | Path, payload: bytes, *, what: str = "") -> Path:
    """Write ``payload`` to ``path`` atomically; an OSError becomes OutputError (exit 73).

    Args:
        path: the final file name (parent folders are created).
        payload: the bytes.
        what: how the message names the file ("the split manifest"); default its path.
    """
    path = Path(path)
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are ordinary readable files
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise OutputError(f"Cannot write {what or path}: {_why(path, exc)}") from None
    return path


def _why(path: Path, exc: OSError) -> str:
    """The reason a write failed; a file where a folder is needed is named (``out.json/x.png``)."""
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        return f"{blocker} is a file; expected a folder there"
    return str(exc.strerror or exc)


def write_json_atomic(path: str | Path, data: Any, *, what: str = "") -> Path:
    """``data`` as indented JSON (``default=str`` for paths and dates), written atomically."""
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"), what=what)


@contextlib.contextmanager
def temp_folder(parent: str | Path, prefix: str, suffix: str = "") -> Iterator[Path]:
    """A hidden temporary folder in ``parent`` (same file system: a rename out of it is atomic).

    It is removed when the block ends, whatever ends it (an error, KeyboardInterrupt).

    Args:
        parent: an existing folder.
        prefix: the start of the name (``".export-"``).
        suffix: the end of the name.
    """
    try:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    except OSError as exc:
        raise OutputError(f"Cannot write into {parent}: {exc.strerror or exc}") from None
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def staged_folder(final: str | Path) -> Iterator[Path]:
    """Build a whole output folder in a hidden sibling; it becomes ``final`` only if the block completes.

    On any failure (an error, KeyboardInterrupt) the sibling is removed and ``final`` is left as it
    was: no half-written output under its final name. ``final`` must not exist or be an empty
    folder; the caller decides what may be overwritten and checks it first.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "out"
        >>> with staged_folder(out) as tmp:
        ...     _ = (tmp / "a.txt").write_text("a")
        >>> sorted(p.name for p in out.parent.iterdir()), (out / "a.txt").read_text()
        (['out'], 'a')
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create {final}: {_why(final, exc)}") from None
    with temp_folder(final.parent, f".{final.name}.", ".tmp") as tmp:
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; outputs are ordinary readable folders
        yield tmp
        _publish_folder(tmp, final)


def _publish_folder(staged: Path, final: Path) -> None:
    """Rename ``staged`` to ``final`` (which may be an empty folder: POSIX renames over it)."""
    try:
        try:
            os.replace(staged, final)
        except OSError:
            if not final.is_dir() or any(final.iterdir()):
                raise
            final.rmdir()  # NTFS does not rename over a folder, even an empty one
            os.replace(staged, final)
    except OSError as exc:
        raise OutputError(f"Cannot write {final}: {_why(final, exc)}") from None
