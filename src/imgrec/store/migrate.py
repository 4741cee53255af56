"""Schema migrations, run by ``open_store``: Alembic ``upgrade head`` on an open connection.

The migration scripts ship inside the package (``migrations/``); users need no
``alembic.ini``. A database whose revision this code does not know was written by a newer
imgrec: it is refused (:class:`~imgrec.errors.StoreVersionError`) rather than touched.

Developers add a revision by writing the next ``versions/rev_NNNN_*.py`` (``revision`` =
``"NNNN"``, ``down_revision`` = the previous one; ``script.py.mako`` is the template Alembic's
``revision`` command fills from an ini whose ``script_location`` is this folder). ``env.py``
takes its connection from imgrec, so autogenerate is run from Python, not from the CLI.

Example:
    >>> head_revision()
    '0003'
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from imgrec.errors import StoreVersionError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _script() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def head_revision() -> str:
    """The newest schema revision this code knows."""
    return str(_script().get_current_head())


def current_revisions(conn: sa.Connection) -> tuple[str, ...]:
    """The revisions stamped in the database (empty for a new one)."""
    return tuple(MigrationContext.configure(conn).get_current_heads())


def check_version(current: tuple[str, ...], where: str) -> None:
    """Refuse a database stamped with a revision this code does not know.

    Raises:
        StoreVersionError: the database is newer than this imgrec.
    """
    known = {rev.revision for rev in _script().walk_revisions()}
    unknown = [rev for rev in current if rev not in known]
    if unknown:
        from imgrec import __version__

        raise StoreVersionError(
            f"The database {where} has schema revision {', '.join(unknown)}, which this imgrec "
            f"({__version__}) does not know: it was written by a newer imgrec. Expected revision "
            f"{head_revision()} or older. Upgrade imgrec (pip install -U imgrec) to open it, "
            "or choose another database (--db / IMGREC_HOME)."
        )


def upgrade(conn: sa.Connection, where: str) -> bool:
    """Check the version, then migrate to head inside the caller's transaction.

    Returns:
        Whether any migration ran.
    """
    current = current_revisions(conn)
    check_version(current, where)
    if current == (head_revision(),):
        return False
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
    return True
