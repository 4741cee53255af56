"""Content-addressed blob files (face crops): ``ROOT/ab/abcdef...`` named by their sha256.

A blob is written temp → fsync → rename before the row naming it commits, so a crash leaves
at worst a file no row names (``orphans`` finds those), never a row without its file.

Example:
    >>> import tempfile
    >>> blobs = BlobStore(tempfile.mkdtemp())
    >>> sha = blobs.put(b"crop")
    >>> blobs.read(sha), blobs.exists(sha)
    (b'crop', True)
    >>> blobs.delete(sha); blobs.exists(sha)
    False
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from imgrec.errors import MissingInputError, UsageError
from imgrec.files import write_bytes_atomic

SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_hex(data: bytes) -> str:
    """The lowercase hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def check_sha256(sha: str) -> str:
    """Return ``sha`` if it is 64 lowercase hex digits, else raise UsageError."""
    if not isinstance(sha, str) or not SHA256.fullmatch(sha):
        raise UsageError(f"Expected a sha256 as 64 lowercase hex digits, received {sha!r}.")
    return sha


class BlobStore:
    """Blob files under one folder, named by content.

    Args:
        root: the folder (created on the first write).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, sha: str) -> Path:
        """Where the blob ``sha`` lives (whether or not it exists)."""
        check_sha256(sha)
        return self.root / sha[:2] / sha

    def put(self, data: bytes) -> str:
        """Store ``data`` (atomically; a no-op when the same content is there) and return its sha256."""
        sha = sha256_hex(data)
        path = self.path(sha)
        try:
            os.utime(path)  # there already: fresh again, so garbage collection spares it
        except FileNotFoundError:
            write_bytes_atomic(path, data, what=f"the blob {sha}")
        return sha

    def read(self, sha: str) -> bytes:
        """The blob's bytes; MissingInputError when it is not stored."""
        try:
            return self.path(sha).read_bytes()
        except FileNotFoundError:
            raise MissingInputError(f"No blob {sha} under {self.root}.") from None

    def exists(self, sha: str) -> bool:
        """Whether the blob is stored."""
        return self.path(sha).is_file()

    def delete(self, sha: str) -> None:
        """Remove the blob file if it is there."""
        self.path(sha).unlink(missing_ok=True)

    def all(self) -> Iterator[str]:
        """Every stored blob's sha256 (temp files of interrupted writes excluded)."""
        if not self.root.is_dir():
            return
        for path in self.root.glob("??/*"):
            if SHA256.fullmatch(path.name):
                yield path.name

    def orphans(self, referenced: set[str], min_age_s: float = 0.0) -> list[str]:
        """Stored blobs that ``referenced`` does not name (left by a crash before a commit),
        untouched for at least ``min_age_s`` seconds."""
        now = time.time()
        found = []
        for sha in self.all():
            if sha in referenced:
                continue
            try:
                if now - self.path(sha).stat().st_mtime >= min_age_s:
                    found.append(sha)
            except FileNotFoundError:
                pass
        return sorted(found)
