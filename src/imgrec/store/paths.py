"""Where the store lives: the data directory and the database URL (no database is opened here).

The data directory is ``$IMGREC_HOME`` when set, else ``~/.local/share/imgrec`` (or
``$XDG_DATA_HOME/imgrec``). The default database is ``$IMGREC_DB`` when set (any form below:
a deployment points every command and server at one PostgreSQL URL), else the data directory.
``open_store`` takes a directory (the SQLite file ``imgrec.db`` and
the ``blobs/`` folder go inside), a ``.db``/``.sqlite`` file, or a ``sqlite://`` /
``postgresql://`` URL.

Example:
    >>> import os
    >>> resolve_location("/tmp/x").url
    'sqlite:////tmp/x/imgrec.db'
    >>> resolve_location("postgresql://u@db/imgrec").url
    'postgresql+psycopg://u@db/imgrec'
    >>> resolve_location("/tmp/x").blobs == resolve_location("/tmp/x/imgrec.db").blobs
    True
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from imgrec.errors import UsageError

DB_FILE = "imgrec.db"
DB_ENV = "IMGREC_DB"
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


@dataclass(frozen=True)
class Location:
    """A database URL (SQLAlchemy form), the folder for blobs, and the SQLite file if any."""

    url: str
    blobs: Path
    sqlite_file: Path | None = None

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.url.split(":", 1)[0].split("+", 1)[0]


def data_home() -> Path:
    """The default data directory: ``$IMGREC_HOME``, else the XDG data folder + ``imgrec``."""
    if os.environ.get("IMGREC_HOME"):
        return Path(os.environ["IMGREC_HOME"]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg).expanduser() / "imgrec"


def resolve_location(where: str | Path | None = None, *, blobs: str | Path | None = None) -> Location:
    """Turn a directory, a file or a URL into a :class:`Location`.

    Args:
        where: None (``$IMGREC_DB``, else the data directory), a directory, a SQLite file, or a
            database URL.
        blobs: the folder for face crops and other blobs; by default beside the SQLite file,
            or ``<data directory>/blobs`` for a PostgreSQL URL.
    """
    text = str(where) if where is not None else os.environ.get(DB_ENV) or str(data_home())
    if text.startswith(("postgresql:", "postgres:", "postgresql+")):
        url = "postgresql+psycopg:" + text.split(":", 1)[1]
        return Location(url, Path(blobs) if blobs else data_home() / "blobs")
    if text.startswith("sqlite:"):
        return _sqlite_url(text, blobs)
    if "://" in text:
        raise UsageError(
            f"Unsupported database URL {text!r}: expected a folder, a SQLite file, "
            "sqlite:///PATH or postgresql://USER@HOST/DB."
        )
    path = Path(text).expanduser().absolute()
    file = path if path.suffix in SQLITE_SUFFIXES else path / DB_FILE
    return Location(f"sqlite:///{file}", Path(blobs) if blobs else file.parent / "blobs", file)


def _sqlite_url(url: str, blobs: str | Path | None) -> Location:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == prefix or ":memory:" in url:
        raise UsageError(
            f"Unsupported SQLite URL {url!r}: the store needs a file (sqlite:///PATH), "
            "not an in-memory database, so that its blobs and rows survive a restart."
        )
    file = Path(url[len(prefix) :].split("?", 1)[0]).absolute()
    return Location(f"sqlite:///{file}", Path(blobs) if blobs else file.parent / "blobs", file)
