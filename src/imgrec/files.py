"""Atomic file writes: temp file in the same folder, fsync, rename. The one helper every layer uses.

A reader (or a crash) never sees half a file under its final name: the rename is atomic on
POSIX file systems and on NTFS.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a" / "x.json"
    >>> _ = write_json_atomic(p, {"ok": True}); p.read_text()
    '{\\n  "ok": true\\n}\\n'
"""

from __future__ import annotations

import json
import os
import tempfile
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
