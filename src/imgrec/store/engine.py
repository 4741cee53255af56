"""``open_store``: the database engine (SQLite file in WAL mode, or PostgreSQL), migrated to head.

SQLite connections get ``journal_mode=WAL`` (readers do not block the writer),
``busy_timeout`` (a writer waits for another instead of failing), ``foreign_keys=ON``,
``secure_delete=ON`` (deleted rows are overwritten with zeros, for hard deletes) and
``synchronous=FULL``. Write transactions start with ``BEGIN IMMEDIATE``: they take the write
lock first, so two writers never deadlock on a read-to-write upgrade.

Example:
    >>> import tempfile
    >>> store = open_store(tempfile.mkdtemp())
    >>> store.dialect, store.vectors
    ('sqlite', 'blob')
    >>> store.close()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event

from imgrec.errors import StoreError
from imgrec.store import migrate
from imgrec.store.blobs import BlobStore
from imgrec.store.paths import Location, resolve_location

if TYPE_CHECKING:
    from imgrec.store.collections import Collections

BUSY_TIMEOUT_S = 30.0
WRITE = "imgrec_write"


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # transactions are begun by _sqlite_on_begin
    cursor = dbapi_conn.cursor()
    for pragma in (
        f"busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}",
        "journal_mode = WAL",
        "foreign_keys = ON",
        "secure_delete = ON",
        "synchronous = FULL",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")


def _sqlite_engine(file: Path) -> sa.Engine:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"Cannot create the data directory {file.parent}: {exc.strerror or exc}") from None
    engine = sa.create_engine(
        f"sqlite:///{file}", connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _postgres_engine(url: str) -> sa.Engine:
    from imgrec.errors import require

    require("psycopg", "store")
    # An unreachable host answers nothing: fail after 10 s (the URL's own connect_timeout wins).
    args = {} if "connect_timeout" in url else {"connect_timeout": 10}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=args)


class Store:
    """An open store: the engine, the blob folder, and how embeddings are kept.

    Attributes:
        location: the URL and blob folder it was opened with.
        blobs: the content-addressed files (face crops).
        vectors: ``"blob"`` (float32 bytes, searched with numpy) or ``"pgvector"``.
    """

    def __init__(self, engine: sa.Engine, location: Location, vectors: str) -> None:
        self.engine = engine
        self.location = location
        self.blobs = BlobStore(location.blobs)
        self.vectors = vectors
        self.cache: dict[int, Any] = {}  # collection id -> search matrix (imgrec.store.search)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @property
    def where(self) -> str:
        """The database, for messages (no password)."""
        if self.location.sqlite_file is not None:
            return str(self.location.sqlite_file)
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A connection inside a read transaction."""
        with self._guard(), self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def writing(self) -> Iterator[sa.Connection]:
        """A connection inside a write transaction (committed at the end, rolled back on error)."""
        with self._guard(), self.engine.connect() as conn:
            conn = conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except sa.exc.OperationalError as exc:
            raise StoreError(f"The database {self.where} failed: {exc.orig or exc}") from exc

    @property
    def collections(self) -> Collections:
        """The face collections kept in this store."""
        from imgrec.store.collections import Collections

        return Collections(self)

    def scrub(self) -> None:
        """Make deleted rows unrecoverable from the database files (after a hard delete).

        SQLite already zeroes deleted content (``secure_delete``); the checkpoint copies those
        pages into the main file and truncates the write-ahead log, which still held the old
        pages. PostgreSQL keeps dead rows until VACUUM, so the face tables are vacuumed.
        """
        with self._guard(), self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("VACUUM faces, persons")

    def collect_garbage(self, min_age_s: float = 3600.0) -> list[str]:
        """Delete the blob files no row names (crops of enrollments killed before their commit).

        Args:
            min_age_s: spare files younger than this: they may belong to an enrollment that is
                writing its crops now and has not committed yet.

        Returns:
            The sha256 of each file deleted.
        """
        from imgrec.store.schema import Face

        with self.reading() as conn:
            stmt = sa.select(Face.crop_sha256).where(Face.crop_sha256.is_not(None)).distinct()
            used = {str(s) for s in conn.execute(stmt).scalars()}
        gone = self.blobs.orphans(used, min_age_s)
        for sha in gone:
            self.blobs.delete(sha)
        return gone

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _vector_mode(conn: sa.Connection) -> str:
    if conn.dialect.name != "postgresql":
        return "blob"
    udt = conn.execute(
        sa.text(
            "SELECT udt_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = 'faces' AND column_name = 'embedding'"
        )
    ).scalar()
    return "pgvector" if udt == "vector" else "blob"


def _migrate(engine: sa.Engine, where: str) -> str:
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":  # one migrator at a time
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7263540912)"))
            migrate.upgrade(conn, where)
            return _vector_mode(conn)


def open_store(where: str | Path | None = None, *, blobs: str | Path | None = None) -> Store:
    """Open (creating and migrating when needed) the store.

    Args:
        where: None for ``$IMGREC_DB``, else the data directory (``$IMGREC_HOME`` or
            ``~/.local/share/imgrec``); a directory, a SQLite file, or a ``postgresql://user@host/db`` URL.
        blobs: the folder for face crops (default beside the SQLite file, or
            ``<data directory>/blobs`` for PostgreSQL).

    Raises:
        StoreError: the database cannot be opened or migrated.
        StoreVersionError: it was written by a newer imgrec.
    """
    location = resolve_location(where, blobs=blobs)
    if location.sqlite_file is not None:
        engine, shown = _sqlite_engine(location.sqlite_file), str(location.sqlite_file)
    else:
        engine = _postgres_engine(location.url)
        shown = engine.url.render_as_string(hide_password=True)
    try:
        vectors = _migrate(engine, shown)
    except sa.exc.SQLAlchemyError as exc:
        engine.dispose()
        raise StoreError(
            f"Cannot open the database {shown}: {getattr(exc, 'orig', None) or exc}. Check that the "
            "file is a SQLite database you may write, or that the PostgreSQL server runs and the URL is right."
        ) from exc
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, location, vectors)
